"""How big a recipe may be: it is small text, so anything huge is a mistake or an attack.

Each limit ends reading with one clear error naming the file and the key, instead of a
read that never ends, exhausted memory, an exponential merge or a ``RecursionError``.
They sit far above any recipe written by hand or generated for a real sweep: 100,000
``[[task]]`` tables fit in ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

#: bytes of one recipe file (``/dev/zero`` is refused, not read forever)
MAX_FILE_BYTES = 64 * 2**20
#: files a recipe may include in all (each read once, however often it is included)
MAX_INCLUDED_FILES = 1000
#: ``a.toml`` includes ``b.toml`` includes ...: this many levels
MAX_INCLUDE_DEPTH = 32
#: tables and arrays nested in tables and arrays (every walk over a value recurses)
MAX_NESTING = 64
#: a var referencing a var referencing a var ...: this many levels
MAX_REFERENCE_DEPTH = 64
#: characters of one interpolated string
MAX_STRING = 2**20
#: bytes (roughly: a character, or 8 per copied element) that interpolation may produce
#: in all (vars that double themselves forty times would otherwise ask for a terabyte)
MAX_EXPANSION = 16 * 2**20
#: characters of a recipe's or task's name: it names directories and files
MAX_NAME = 100
#: instances of a recipe: far more than can ever run, but sums and indices of them stay
#: machine integers (``range = [0, 9_000_000_000_000_000_000]`` twice would overflow)
MAX_INSTANCES = 10**15


def nesting(value: object, limit: int = MAX_NESTING) -> int:
    """How deeply ``value``'s tables and arrays nest, level by level (no recursion);
    stops counting once past ``limit``."""
    containers = (dict, list, tuple)  # (a tuple: isinstance of a union is twice as slow)
    level = [value] if isinstance(value, containers) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return depth
        deeper: list = []
        add = deeper.append
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:  # type: ignore[attr-defined]
                if isinstance(child, containers):
                    add(child)
        level = deeper
    return depth


def measure(value: object) -> tuple[int, int]:
    """``(cost, depth)`` of a table or array: roughly the bytes of its tree written out
    (8 per element; strings are shared, not counted) and how deeply it nests.

    Interpolation shares sub-values (a var used twice is the same object twice), so the
    tree may be exponentially larger than the objects: each object is measured once,
    without recursion, and the tree's figures are summed from its parts.
    """
    containers = (dict, list, tuple)
    memo: dict[int, tuple[int, int]] = {}
    stack: list[tuple[object, bool]] = [(value, False)]
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in memo:
            continue
        items = list(node.values()) if isinstance(node, dict) else node  # type: ignore[attr-defined]
        kids = [c for c in items if isinstance(c, containers)]
        if not ready:
            stack.append((node, True))
            stack.extend((c, False) for c in kids if id(c) not in memo)
            continue
        cost, depth = 8 * len(items), 0
        for c in kids:
            c_cost, c_depth = memo[id(c)]
            cost += c_cost
            depth = max(depth, c_depth)
        memo[key] = (cost, depth + 1)
    return memo[id(value)] if isinstance(value, containers) else (0, 0)


def matrix_size(matrix: dict) -> int:
    """The number of combinations of a validated matrix's list and range axes (other
    kinds of axes count as one), without building them: ``len(range)`` overflows."""
    size = 1
    for key, axis in matrix.items():
        if key in ("include", "exclude"):
            continue
        if isinstance(axis, list):
            size *= len(axis)
        elif isinstance(axis, dict) and isinstance(axis.get("range"), list):
            start, stop, *rest = axis["range"]
            step = rest[0] if rest else 1
            size *= max(0, (stop - start + step - (1 if step > 0 else -1)) // step)
    include = matrix.get("include")
    return size + (len(include) if isinstance(include, list) else 0)


def show_bytes(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 1024} KiB" if n >= 1024 else f"{n} bytes"
