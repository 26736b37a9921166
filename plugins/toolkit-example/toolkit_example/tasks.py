"""The example's task. Workers import this module by name: keep its imports light."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.plugin import TaskContext


def power(base: int, exp: int = 2, ctx: TaskContext | None = None) -> int:
    """base ** exp, noted in the instance's log."""
    value: int = base**exp
    if ctx is not None:
        ctx.logger.info("%s: %d ** %d = %d (attempt %d)", ctx.instance, base, exp, value, ctx.attempt)
    return value
