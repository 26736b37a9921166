"""A full disk and the file size limit, for real: a small tmpfs (where this process may
mount one) and ``ulimit -f``. One line naming the cause, exit 2, a manifest that says
``failed`` with the reason, whole lines only in results.jsonl, and ``--resume`` finishes
once there is room again."""

from __future__ import annotations

import subprocess

import pytest
from faults_helpers import manifest, marks, only_run, recipe_text, run_toolkit, strict_records
from fs_helpers import file_size_limit, small_tmpfs

N = 2000  # records of about 300 bytes: far more than the 64 KiB the tests allow


#: under ``ulimit -f`` a child cannot save the suite's coverage data, and coverage.py
#: prints its own traceback at exit (in words that differ between Pythons): the children
#: of these tests run unmeasured, so that what they print is toolkit's alone
UNMEASURED = {"COVERAGE_PROCESS_CONFIG": "", "COVERAGE_PROCESS_START": ""}


def check_failed_cleanly(res, run, cause: str) -> list[dict]:
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("toolkit: error: cannot write ") and cause in last, err
    meta = manifest(run)
    assert meta["status"] == "failed"
    assert cause in meta["reason"]
    records = strict_records(run / "results.jsonl")  # whole lines only
    assert len(records) < N
    assert not (run / ".reserve").exists()
    return records


def test_disk_full_mid_run_then_resume(folder):
    (folder / "r.toml").write_text(recipe_text("r", marks(N), out="disk"))
    with small_tmpfs(folder / "disk", "64k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (test_file_size_limit covers the class)")
        res = run_toolkit(folder, "run", "r.toml", "-q")
        run = only_run(folder / "disk", "r")
        before = check_failed_cleanly(res, run, "no space left on device")
        # room again: the same file system, grown
        subprocess.run(["mount", "-o", "remount,size=2m", str(folder / "disk")], check=True)
        res = run_toolkit(folder, "run", "r.toml", "--resume", "-q")
        assert res.returncode == 0, res.stderr
        after = strict_records(run / "results.jsonl")
        assert after[: len(before)] == before
        assert sorted(r["value"] for r in after) == list(range(N))
        assert manifest(run)["status"] == "succeeded"


def test_disk_full_before_the_run_leaves_nothing(folder):
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side"), out="disk"))
    with small_tmpfs(folder / "disk", "16k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here")
        (folder / "disk" / "r").mkdir()
        filler = folder / "disk" / "filler"
        with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"x" * 4096)
        res = run_toolkit(folder, "run", "r.toml")
        err = res.stderr.decode()
        assert res.returncode == 2, err
        assert "Traceback" not in err and "no space left on device" in err
        assert sorted(p.name for p in (folder / "disk" / "r").iterdir()) == []
        assert not (folder / "side").exists()


def test_file_size_limit(folder):
    """``ulimit -f``: the kernel refuses to grow a file past the limit (EFBIG)."""
    (folder / "r.toml").write_text(recipe_text("r", marks(N)))
    res = run_toolkit(folder, "run", "r.toml", "-q", preexec_fn=file_size_limit(64 * 1024), env=UNMEASURED)
    run = only_run(folder / "out", "r")
    before = check_failed_cleanly(res, run, "file too large")
    res = run_toolkit(folder, "run", "r.toml", "--resume", "-q")
    assert res.returncode == 0, res.stderr
    after = strict_records(run / "results.jsonl")
    assert after[: len(before)] == before
    assert sorted(r["value"] for r in after) == list(range(N))


def test_room_for_the_first_manifest_but_not_the_last_runs_nothing(folder):
    """A disk with room for the first manifest but not for the space set aside to write
    the last one (a 12 KiB tmpfs), and a file size limit below what the last manifest may
    need: nothing runs and no run directory is left (the manifest stayed ``running``)."""
    (folder / "r.toml").write_text(recipe_text("r", marks(3, log="side"), out="disk"))
    with small_tmpfs(folder / "disk", "12k") as mounted:
        if mounted:
            res = run_toolkit(folder, "run", "r.toml")
            err = res.stderr.decode()
            assert res.returncode == 2 and "Traceback" not in err, err
            assert err.count("\n") == 1 and "no space left on device" in err, err
            assert [p.name for p in (folder / "disk" / "r").iterdir()] == []
    res = run_toolkit(
        folder, "run", "r.toml", "--output", "small", preexec_fn=file_size_limit(2000), env=UNMEASURED
    )
    err = res.stderr.decode()
    assert res.returncode == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and "manifest.toml: file too large" in err, err
    assert [p.name for p in (folder / "small" / "r").iterdir()] == []
    assert not (folder / "side").exists()


def test_a_sink_on_a_full_disk_is_the_disk_not_its_plugin(tmp_path):
    """A second sink's file that cannot grow is a StorageError naming the file (exit 2),
    not 'plugin failed in sink': the plugin did nothing wrong."""
    from toolkit.errors import StorageError
    from toolkit.store.sinks import Collector

    class FullSink:
        path = "/dev/full"

        def __init__(self):
            self.file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed below

        def write(self, batch):
            self.file.write(batch.jsonl)

        def close(self, status):
            self.file.close()

    class Kept:
        def __init__(self):
            self.lines = []

        def write(self, batch):
            self.lines.append(batch.jsonl)

        def close(self, status):
            pass

    kept = Kept()
    collector = Collector([kept, FullSink()], names=["jsonl", "full"], plugins=[None, "someone"])
    with pytest.raises(StorageError, match=r"^cannot write /dev/full: no space left on device"):
        collector.write(b'{"a": 1}\n', 1)
    assert kept.lines == [b'{"a": 1}\n']  # the primary sink had it first
    collector.close("failed")
