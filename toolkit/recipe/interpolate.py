"""``${...}`` references in recipe values: vars, env, secret, recipe, and matrix in params.

A string that is exactly one reference takes the referenced value, type and all
(``"${vars.samples}"`` is the integer); otherwise references are rendered into the
string. ``$${`` is a literal ``${``. There is no expression language: a reference is a
dotted name, and ``${env.NAME:-default}`` is the only extra syntax.

``${secret.NAME}`` reads the environment like ``${env.NAME}``; the resolver remembers
each secret value it read (and which values each var carries), so that the recipe can
mask them wherever it writes or prints a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from toolkit.recipe import limits

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

NAMESPACES = ("vars", "env", "secret", "recipe", "matrix")
RECIPE_REFS = ("name", "description", "dir")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class InterpolationError(ValueError):
    """A bad reference; the message is meant for the user."""


class NodeError(InterpolationError):
    """A var (or recipe.name) that cannot be resolved: reported once, where it is written."""


class Ref:
    """One parsed ``${...}``: its namespace, dotted path and ``:-`` default."""

    __slots__ = ("default", "kind", "path", "text")

    def __init__(self, kind: str, path: tuple[str, ...], default: str | None, text: str) -> None:
        self.kind = kind
        self.path = path
        self.default = default
        self.text = text

    def __repr__(self) -> str:
        return f"Ref({self.text!r})"

    def __reduce__(self):
        return (Ref, (self.kind, self.path, self.default, self.text))


Part = str | Ref


def has_reference(text: str) -> bool:
    return "${" in text


def parse(text: str) -> list[Part]:
    """Split a string into literal parts and references; raise InterpolationError."""
    parts: list[Part] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:j])
        if text.startswith("$${", j):
            literal.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = text.find("}", j + 2)
            if end < 0:
                raise InterpolationError(f"unterminated reference in {text!r}: a '${{' without its '}}'")
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(_parse_ref(text[j + 2 : end].strip()))
            i = end + 1
        else:
            literal.append("$")
            i = j + 1
    if literal and "".join(literal):
        parts.append("".join(literal))
    return parts


def _parse_ref(body: str) -> Ref:
    text = "${" + body + "}"
    default = None
    if ":-" in body:
        body, default = body.split(":-", 1)
    kind, _, rest = body.partition(".")
    if kind not in NAMESPACES:
        from toolkit.recipe.problems import did_you_mean

        raise InterpolationError(
            f"unknown reference {text}: use ${{vars.NAME}}, ${{env.NAME}}, ${{secret.NAME}},"
            f" ${{recipe.name}} or ${{matrix.NAME}}{did_you_mean(kind, NAMESPACES)};"
            " write $${ for a literal '${'"
        )
    path = tuple(rest.split(".")) if rest else ()
    if not path or not all(_NAME.fullmatch(p) for p in path):
        raise InterpolationError(f"bad reference {text}: expected {kind}.NAME")
    if default is not None and kind not in ("env", "secret"):
        raise InterpolationError(
            f"bad reference {text}: only ${{env.NAME:-default}} and ${{secret.NAME:-default}} take a default"
        )
    if kind in ("env", "secret", "matrix") and len(path) != 1:
        raise InterpolationError(f"bad reference {text}: expected {kind}.NAME")
    if kind == "recipe" and (len(path) != 1 or path[0] not in RECIPE_REFS):
        raise InterpolationError(
            f"bad reference {text}: only ${{recipe.name}}, ${{recipe.description}} and ${{recipe.dir}}"
        )
    return Ref(kind, path, default, text)


def escape(text: str) -> str:
    """The recipe spelling of a literal string: ``${`` written as ``$${``."""
    return text.replace("${", "$${") if "${" in text else text


def escape_all(value: Any) -> Any:
    """A resolved value in recipe spelling: every literal ``${`` as ``$${``."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: escape_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_all(v) for v in value]
    return value


def render(value: Any) -> str:
    """A value as it appears inside a longer string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


class Resolver:
    """Resolves references against ``[vars]``, the environment and ``[recipe]``.

    ``vars`` may reference each other (cycles are errors). ``report(path, problem)`` is
    called for each problem; the failed value is left as written. Every secret value
    read is appended to :attr:`secrets_read` (also when a var that holds one is used),
    so a caller can tell which secrets a value carries by the list's growth.
    """

    def __init__(
        self,
        variables: Mapping[str, Any],
        recipe_table: Mapping[str, Any],
        environ: Mapping[str, str],
        report: Callable[[tuple, str], None],
        *,
        recipe_dir: str | None = None,
    ) -> None:
        #: ``${recipe.dir}``: the absolute directory of the recipe file
        self.recipe_dir = recipe_dir
        self.raw_vars = variables
        self.recipe_table = recipe_table
        self.environ = environ
        self.report = report
        self.secrets_read: list[str] = []
        self._done: dict[tuple, Any] = {}
        self._active: list[tuple] = []
        self._failed: dict[tuple, str] = {}
        self._reported: set[str] = set()
        self._carries: dict[tuple, tuple[str, ...]] = {}  # var -> the secrets in its value
        self._costs: dict[int, int] = {}  # id(resolved table or array) -> its copy cost
        self._spent = 0
        self._too_deep: str | None = None

    def _report(self, path: tuple, exc: InterpolationError) -> None:
        message = str(exc)
        if isinstance(exc, NodeError) and not self._active:
            if message in self._reported:
                return  # the var itself is reported; once is enough
            self._reported.add(message)
        self.report(path, message)

    def resolve_vars(self) -> dict[str, Any]:
        """The ``[vars]`` table, resolved; a var with a problem is reported and kept as written."""
        out = {}
        for key, raw in self.raw_vars.items():
            try:
                out[key] = self._node(("vars", key), raw)
            except InterpolationError as exc:
                self._report(("vars", key), exc)
                out[key] = raw
        return out

    # -- whole values ------------------------------------------------------
    def resolve(
        self,
        value: Any,
        path: tuple,
        *,
        templates: list[tuple] | None = None,
        quote: Callable[[str], str] | None = None,
    ) -> Any:
        """Resolve every string inside ``value``; ``path`` names it in messages.

        With ``templates`` (task params), ``${matrix.NAME}`` is allowed: strings that keep
        one are left in recipe spelling and their paths appended to ``templates``.
        With ``quote`` (a string ``value`` only), every value filled in is passed through
        it, even one that is the whole string (a shell command line's values).
        """
        if isinstance(value, str):
            return self._string(value, path, templates, quote)
        if isinstance(value, dict):
            return {k: self.resolve(v, (*path, k), templates=templates) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, (*path, i), templates=templates) for i, v in enumerate(value)]
        return value

    def _string(
        self, text: str, path: tuple, templates: list[tuple] | None, quote: Callable[[str], str] | None = None
    ) -> Any:
        if "$" not in text:
            return text
        try:
            parts = parse(text)
        except InterpolationError as exc:
            self._report(path, exc)
            return text
        if not any(isinstance(p, Ref) for p in parts):
            return "".join(parts)  # type: ignore[arg-type]
        keeps_matrix = any(isinstance(p, Ref) and p.kind == "matrix" for p in parts)
        if keeps_matrix and templates is None:
            self.report(path, "${matrix.NAME} is only available in task params")
            return text
        try:
            if len(parts) == 1 and not keeps_matrix and quote is None:
                value = self.value_of(parts[0], path)  # type: ignore[arg-type]
                if isinstance(value, list | dict):
                    # shared, not copied: a var used twice is one object (values are never
                    # changed after reading); what it costs written out is counted
                    self._spend(self._cost(value), parts[0])  # type: ignore[arg-type]
                return value
            out = []
            length = 0
            for part in parts:
                if isinstance(part, str):
                    piece = escape(part) if keeps_matrix else part
                elif part.kind == "matrix":
                    piece = part.text
                else:
                    rendered = render(self.value_of(part, path))
                    if quote is not None:
                        rendered = quote(rendered)
                    piece = escape(rendered) if keeps_matrix else rendered
                length += len(piece)
                if length > limits.MAX_STRING:
                    raise InterpolationError(
                        f"{text[:60]!r} expands to more than {limits.show_bytes(limits.MAX_STRING)}"
                        " of text (vars that repeat each other grow without bound)"
                    )
                out.append(piece)
            self._spend(length, None)
        except InterpolationError as exc:
            self._report(path, exc)
            return text
        if keeps_matrix:
            assert templates is not None
            templates.append(path)
        return "".join(out)

    def _cost(self, value: list | dict) -> int:
        cost = self._costs.get(id(value))
        if cost is None:
            cost = self._costs[id(value)] = limits.measure(value)[0]
        return cost

    def _spend(self, cost: int, ref: Ref | None) -> None:
        """Count what interpolation produces; past the budget, stop with an error."""
        self._spent += cost
        if self._spent > limits.MAX_EXPANSION:
            what = f"{ref.text}: " if ref is not None else ""
            raise InterpolationError(
                f"{what}the recipe's references expand to more than"
                f" {limits.show_bytes(limits.MAX_EXPANSION)} (vars that repeat each other grow"
                " without bound)"
            )

    # -- one reference -----------------------------------------------------
    def value_of(self, ref: Ref, where: tuple) -> Any:
        if ref.kind in ("env", "secret"):
            return self._environment(ref)
        if ref.kind == "recipe":
            if ref.path[0] == "dir" and self.recipe_dir is not None:
                return self.recipe_dir
            key = ("recipe", ref.path[0])
            if ref.path[0] not in self.recipe_table:
                if ref.path[0] == "description":
                    return ""
                raise InterpolationError(f"{ref.text}: recipe.{ref.path[0]} is not set")
            return self._node(key, self.recipe_table[ref.path[0]])
        return self._var(ref)

    def _environment(self, ref: Ref) -> str:
        name = ref.path[0]
        value = self.environ.get(name)
        if value is None or (value == "" and ref.default is not None):
            if ref.default is None:
                raise InterpolationError(
                    f"environment variable {name} is not set (give a default: ${{{ref.kind}.{name}:-VALUE}})"
                )
            value = ref.default
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InterpolationError(
                f"{ref.text}: environment variable {name} is not valid UTF-8 text"
            ) from None
        if ref.kind == "secret" and value:
            self.secrets_read.append(value)
        return value

    def _var(self, ref: Ref) -> Any:
        node: Any = self.raw_vars
        walked: tuple = ("vars",)
        for i, name in enumerate(ref.path):
            if isinstance(node, dict) and name in node:
                node = node[name]
                walked = (*walked, name)
                continue
            if isinstance(node, str) and "$" in node:
                # a var that is itself a reference to a table: resolve it, then go on
                resolved = self._node(walked, node)
                return _walk(resolved, ref.path[i:], ref, walked)
            from toolkit.recipe.problems import did_you_mean

            known = list(node) if isinstance(node, dict) else []
            prefix = ".".join(walked)
            if not isinstance(node, dict):
                raise InterpolationError(f"{ref.text}: {prefix} is not a table")
            raise InterpolationError(f"{ref.text}: no {prefix}.{name}{did_you_mean(name, known)}")
        return self._node(walked, node)

    def _node(self, key: tuple, raw: Any) -> Any:
        if key in self._done:
            self.secrets_read.extend(self._carries.get(key, ()))
            return self._done[key]
        if key in self._failed:
            raise NodeError(self._failed[key])
        if key in self._active:
            chain = [".".join(k) for k in self._active[self._active.index(key) :]] + [".".join(key)]
            raise NodeError(f"reference cycle: {' -> '.join(chain)}")
        if len(self._active) >= limits.MAX_REFERENCE_DEPTH:
            if self._too_deep is None:  # said once: the rest of a long chain fails alike
                chain = [".".join(k) for k in self._active[:2]]
                self._too_deep = (
                    f"references nest more than {limits.MAX_REFERENCE_DEPTH} deep"
                    f" ({' -> '.join(chain)} -> ... -> {'.'.join(key)})"
                )
            raise NodeError(self._too_deep)
        self._active.append(key)
        problems: list[str] = []

        def report(path: tuple, problem: str) -> None:
            problems.append(problem)

        saved, self.report = self.report, report
        before = len(self.secrets_read)
        try:
            value = self.resolve(raw, key)
        finally:
            self.report = saved
            self._active.pop()
        if not problems and isinstance(value, list | dict):
            cost, depth = limits.measure(value)
            self._costs[id(value)] = cost
            if depth > limits.MAX_NESTING:
                problems.append(f"its value nests more than {limits.MAX_NESTING} tables and arrays deep")
        if problems:
            self._failed[key] = problems[0]
            raise NodeError(problems[0])
        if len(self.secrets_read) > before:
            self._carries[key] = tuple(dict.fromkeys(self.secrets_read[before:]))
        self._done[key] = value
        return value


def _walk(value: Any, path: tuple[str, ...], ref: Ref, walked: tuple) -> Any:
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise InterpolationError(f"{ref.text}: no {'.'.join(walked)}.{name}")
        value = value[name]
        walked = (*walked, name)
    return value
