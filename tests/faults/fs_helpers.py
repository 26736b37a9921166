"""Real file systems for the fault tests: a small tmpfs (full after a few KiB), a
read-only one; where mounting is not allowed (not root, not Linux), the closest real
thing: ``ulimit -f`` for a full disk, a directory without write permission."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _mount(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or not Path("/proc/mounts").exists():
        return False
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False
    )
    return res.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "64k") -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path``; yields False (and mounts nothing) where it cannot."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _mount(path, f"size={size},mode=0755")
    try:
        yield mounted
    finally:
        if mounted:
            _umount(path)


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[str]:
    """A directory nothing can be created in: a read-only tmpfs, or (not root) mode 0555.
    Yields how it was made."""
    path.mkdir(parents=True, exist_ok=True)
    if _mount(path, "ro,size=16k"):
        try:
            yield "read-only tmpfs"
        finally:
            _umount(path)
    elif os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield "mode 0555"
        finally:
            path.chmod(0o755)
    else:
        import pytest

        pytest.skip("root without mount: no way to make a directory read-only")


def file_size_limit(limit: int):
    """A ``preexec_fn`` that sets ``ulimit -f`` (bytes) in the child."""

    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit
