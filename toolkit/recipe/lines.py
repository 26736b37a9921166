"""Line numbers of keys in TOML text: ``tomllib`` gives values but no positions.

:func:`key_lines` scans a document that ``tomllib`` already accepted and maps each key
path to the line that writes it: ``("run", "workers") -> 12``. Elements of arrays,
``[[task]]`` tables included, are numbered: ``("task", 1, "params", "samples")``.
It is a best effort for messages; anything it cannot follow is left out.
"""

from __future__ import annotations

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.out: dict[tuple, int] = {}
        self.tables: dict[tuple, int] = {}  # [[array]] path (without indices) -> last index

    # -- characters --------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i < len(self.s):
                if self.s[self.i] == "\n":
                    self.line += 1
                self.i += 1

    def skip_space(self, newlines: bool) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                return

    # -- pieces ------------------------------------------------------------
    def string(self) -> str:
        quote = self.peek()
        triple = self.s.startswith(quote * 3, self.i)
        self.advance(3 if triple else 1)
        out = []
        while self.i < len(self.s):
            if triple and self.s.startswith(quote * 3, self.i):
                self.advance(3)
                while self.peek() == quote:  # up to two quotes may end the content
                    out.append(quote)
                    self.advance()
                return "".join(out)
            c = self.peek()
            if not triple and c == quote:
                self.advance()
                return "".join(out)
            if quote == '"' and c == "\\":
                nxt = self.peek(1)
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                    self.advance(2)
                    continue
                if nxt in "uU":
                    width = 4 if nxt == "u" else 8
                    try:
                        out.append(chr(int(self.s[self.i + 2 : self.i + 2 + width], 16)))
                    except ValueError:
                        pass
                    self.advance(2 + width)
                    continue
                self.advance(2)  # a line-ending backslash in a multi-line string
                continue
            out.append(c)
            self.advance()
        return "".join(out)

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_space(False)
            c = self.peek()
            if c in "\"'":
                parts.append(self.string())
            else:
                start = self.i
                while self.peek() in _BARE and self.peek():
                    self.advance()
                if self.i == start:
                    raise ValueError("expected a key")
                parts.append(self.s[start : self.i])
            self.skip_space(False)
            if self.peek() != ".":
                return parts
            self.advance()

    def value(self, path: tuple) -> None:
        self.skip_space(False)
        c = self.peek()
        if c in "\"'":
            self.string()
        elif c == "{":
            self.advance()
            while True:
                self.skip_space(True)
                if self.peek() == "}":
                    self.advance()
                    return
                line = self.line
                key = tuple(self.key())
                self.out.setdefault((*path, *key), line)
                self.skip_space(False)
                if self.peek() != "=":
                    raise ValueError("expected =")
                self.advance()
                self.value((*path, *key))
                self.skip_space(True)
                if self.peek() == ",":
                    self.advance()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_space(True)
                if self.peek() == "]":
                    self.advance()
                    return
                if not self.peek():
                    raise ValueError("unterminated array")
                self.out.setdefault((*path, index), self.line)
                self.value((*path, index))
                index += 1
                self.skip_space(True)
                if self.peek() == ",":
                    self.advance()
        else:
            while self.peek() and self.peek() not in ",]}\n#":
                self.advance()

    def header(self) -> tuple:
        array = self.s.startswith("[[", self.i)
        self.advance(2 if array else 1)
        parts = self.key()
        self.advance(2 if array else 1)
        path: list = []
        for n, part in enumerate(parts):
            path.append(part)
            plain = tuple(p for p in path if not isinstance(p, int))
            if array and n == len(parts) - 1:
                index = self.tables.get(plain, -1) + 1
                self.tables[plain] = index
                # a new element: forget the arrays nested in the previous one
                for nested in [t for t in self.tables if len(t) > len(plain) and t[: len(plain)] == plain]:
                    del self.tables[nested]
                path.append(index)
            elif plain in self.tables:
                path.append(self.tables[plain])
        return tuple(path)

    def document(self) -> dict[tuple, int]:
        table: tuple = ()
        while True:
            self.skip_space(True)
            if self.i >= len(self.s):
                return self.out
            line = self.line
            if self.peek() == "[":
                table = self.header()
                self.out.setdefault(table, line)
                continue
            key = (*table, *self.key())
            self.out.setdefault(key, line)
            self.skip_space(False)
            if self.peek() != "=":
                raise ValueError("expected =")
            self.advance()
            self.value(key)


def key_lines(text: str) -> dict[tuple, int]:
    """``{key path: line}`` for a TOML document; partial if the text confuses the scanner."""
    scanner = _Scanner(text)
    try:
        return scanner.document()
    except (ValueError, IndexError, RecursionError):
        return scanner.out
