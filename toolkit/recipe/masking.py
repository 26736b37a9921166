"""Masking secrets: every value read through ``${secret.NAME}`` is shown as ``***``.

Masking is by value, as CI systems mask their secrets in logs: wherever toolkit writes
or prints text that may hold a secret (the manifest, records' params, ``plan``, error
messages, captured logs), each secret value in it becomes ``***``. Workers import this
module, so it imports nothing.
"""

from __future__ import annotations

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

MASK = "***"


def ordered(values: Any) -> tuple[str, ...]:
    """Secret values to mask, longest first (a secret that contains another is masked
    whole), without duplicates or empty strings."""
    return tuple(sorted({v for v in values if v}, key=lambda v: (-len(v), v)))


def mask_text(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret value in it replaced by ``***``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_repr(text: str, secrets: tuple[str, ...]) -> str:
    """A ``repr`` with the secrets masked, also where repr escaped them."""
    return mask_text(text, ordered([*secrets, *(repr(s)[1:-1] for s in secrets)]))


def mask(value: Any, secrets: tuple[str, ...]) -> Any:
    """A copy of ``value`` (tables, arrays, strings) with the secrets masked; ``value``
    itself when it holds none of them."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, secrets) for v in value]
    return value
