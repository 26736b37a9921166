"""Calling hooks: every hook goes through pluggy's caller, and a failure names the plugin.

pluggy calls the implementations of a hook with the arguments each declares, in its
order (``tryfirst``/``trylast``, ``wrapper=True`` around the rest); an exception stops
the call and comes out of it as it was raised. :func:`call_hook` turns it into a
:class:`~toolkit.errors.PluginError` naming the plugin whose implementation raised it,
found in the exception's traceback (the innermost frame of an implementation of that
hook), so nothing of pluggy's call is replaced or reimplemented here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from toolkit.errors import PluginError

if TYPE_CHECKING:
    from types import CodeType, TracebackType

    import pluggy

__all__ = ["call_hook", "call_leaving_out", "call_plugin", "culprit", "implementers"]


def _code_of(function: Any) -> CodeType | None:
    function = getattr(function, "__func__", function)  # a bound method's function
    try:
        function = inspect.unwrap(function)
    except ValueError:  # pragma: no cover - a cycle of __wrapped__
        pass
    return getattr(function, "__code__", None)


def impl_codes(pm: pluggy.PluginManager, hook_name: str) -> dict[CodeType, str]:
    """The code objects of the implementations of ``hook_name``, by plugin name."""
    codes: dict[CodeType, str] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        code = _code_of(impl.function)
        if code is not None:
            codes.setdefault(code, impl.plugin_name)
    return codes


def _impl_modules(pm: pluggy.PluginManager, hook_name: str) -> dict[str, str]:
    """Module names of the implementations (for implementations without code of their own)."""
    modules: dict[str, str] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        module = getattr(impl.function, "__module__", None) or type(impl.plugin).__module__
        modules.setdefault(module, impl.plugin_name)
    return modules


def _frames(tb: TracebackType | None) -> Iterator[Any]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def culprit(pm: pluggy.PluginManager, hook_name: str, exc: BaseException) -> str | None:
    """The plugin whose implementation of ``hook_name`` raised ``exc``: the innermost
    frame of the traceback that runs one (an exception thrown into a wrapper and left
    to go on keeps the frames of the implementation that raised it, innermost)."""
    frames = list(_frames(exc.__traceback__))
    codes = impl_codes(pm, hook_name)
    for frame in reversed(frames):
        name = codes.get(frame.f_code)
        if name is not None:
            return name
    modules = _impl_modules(pm, hook_name)
    for frame in reversed(frames):
        name = modules.get(frame.f_globals.get("__name__", ""))
        if name is not None:
            return name
    return None


def call_hook(pm: pluggy.PluginManager, hook_name: str, /, **kwargs: Any) -> Any:
    """``pm.hook.<hook_name>(**kwargs)``; an implementation that raises an ``Exception``
    makes it a :class:`PluginError` naming the plugin (``KeyboardInterrupt`` and
    ``SystemExit`` pass as they are)."""
    try:
        return getattr(pm.hook, hook_name)(**kwargs)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(culprit(pm, hook_name, exc), hook_name, exc) from exc


def implementers(pm: pluggy.PluginManager, hook_name: str) -> list[str]:
    """The plugins that implement ``hook_name``, in pluggy's call order (wrappers
    first, then ``tryfirst`` ones, ..., ``trylast`` ones last)."""
    seen: dict[str, None] = {}
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        seen.setdefault(impl.plugin_name, None)
    return list(seen)


def call_plugin(pm: pluggy.PluginManager, hook_name: str, plugin: str, /, **kwargs: Any) -> Any:
    """Call ``hook_name`` of one plugin through pluggy's caller, with that plugin's
    implementations only (its wrapper, if any, around its own). For hooks whose answer
    passes from one plugin to the next (``toolkit_configure``) or whose decider is
    named (``toolkit_choose_executor``): call :func:`implementers` in turn."""
    others = [pm.get_plugin(n) for n in implementers(pm, hook_name) if n != plugin]
    caller = pm.subset_hook_caller(hook_name, remove_plugins=[p for p in others if p is not None])
    try:
        return caller(**kwargs)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(plugin, hook_name, exc) from exc


def call_leaving_out(
    pm: pluggy.PluginManager,
    hook_name: str,
    /,
    call: Callable[[Any], Mapping[str, BaseException] | None],
    failed: Callable[[str, BaseException], None],
) -> None:
    """For the hooks whose failures leave the rest working (registration,
    ``toolkit_add_commands``): ``call(caller)`` calls the hook through ``caller`` (pluggy's,
    or a subset of it) and may return ``{plugin: exception}`` for plugins it refuses (a
    name clash). A plugin whose implementation raises, or that is refused, is reported to
    ``failed`` and left out, and ``call`` runs again without it (from a clean state: it
    starts over). An exception no plugin can be blamed for is a :class:`PluginError`."""
    left_out: list[object] = []
    while True:
        caller = pm.subset_hook_caller(hook_name, left_out) if left_out else getattr(pm.hook, hook_name)
        try:
            refused = call(caller)
        except Exception as exc:
            name = culprit(pm, hook_name, exc)
            plugin = pm.get_plugin(name) if name is not None else None
            if plugin is None or plugin in left_out:
                raise PluginError(name, hook_name, exc) from exc
            left_out.append(plugin)
            failed(name, exc)  # type: ignore[arg-type]
            continue
        if not refused:
            return
        for name, exc in refused.items():
            left_out.append(pm.get_plugin(name) or name)
            failed(name, exc)
