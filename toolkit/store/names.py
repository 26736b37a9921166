"""File names the run directory gives to instances (their logs, their scratch folders).

An instance id is anything a recipe's params make of it (``/``, spaces, quotes, non-ASCII
text, a thousand characters), and file systems differ in what they take: some fold case
(macOS, Windows), some normalise Unicode, all stop at 255 bytes. So an id that is plain
(lower-case ASCII letters, digits and ``._=,+@[]-``, at most :data:`PLAIN_MAX`
characters, not starting with ``.`` or ``-``) is its own name, and any other id is a
readable prefix (the plain characters kept, the others as ``_``) followed by ``~`` and a
hash of the whole id: ``Fit[lr=0.1]`` -> ``_it[lr=0.1]~3f2a...``. The ``~``, never in a
plain name, keeps the two kinds apart, so names are unique (up to a 64-bit hash) and at
most ``PLAIN_MAX + 17`` ASCII characters long on every file system.

A leaf module: worker processes import it (through :mod:`toolkit.context`), so it
imports nothing at import time.
"""

from __future__ import annotations

#: the run's report, in a run directory
REPORT = "report.html"
#: the folder of the instances' log files, in a run directory
LOGS = "logs"
#: the folder of the instances' scratch directories, in a run directory
SCRATCH = "scratch"
#: the longest id used as a name as it is (and the longest prefix of a hashed one)
PLAIN_MAX = 150
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._=,+@[]-")


def safe_name(instance_id: str) -> str:
    """A file name for ``instance_id``: safe, unique and short on every file system."""
    if (
        len(instance_id) <= PLAIN_MAX
        and instance_id[:1] not in ("", ".", "-")
        and _PLAIN.issuperset(instance_id)
    ):
        return instance_id
    try:
        from _blake2 import blake2b  # what hashlib.blake2b is, without hashlib (and OpenSSL)
    except ImportError:  # pragma: no cover
        from hashlib import blake2b

    plain = _PLAIN
    prefix = "".join(c if c in plain else "_" for c in instance_id[:PLAIN_MAX])
    if prefix[:1] in (".", "-"):  # not a hidden file, not an option
        prefix = "_" + prefix[1:]
    digest = blake2b(instance_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{prefix}~{digest}"


def log_name(instance_id: str) -> str:
    """The name of an instance's log file in the run's ``logs/`` folder."""
    return f"{safe_name(instance_id)}.log"
