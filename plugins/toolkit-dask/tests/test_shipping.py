"""What travels to workers: plugin files with their neighbours, and the version check."""

from __future__ import annotations

from pathlib import Path

from toolkit_dask import shipping
from toolkit_dask.versions import distribution_of, mismatches

from toolkit.execution.api import WorkerSetup


def _payload(tmp_path: Path) -> shipping.Payload:
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "tasks.py").write_text("import helper\n")
    (recipe_dir / "helper.py").write_text("X = 1\n")
    (recipe_dir / "notes.txt").write_text("not python")
    setup = WorkerSetup(
        files=(str(recipe_dir / "tasks.py"),), tasks_blob=b"blob", run_dir=str(tmp_path / "run")
    )
    return shipping.build_payload(setup, "20260101-000000-abcd")


def test_plugin_files_travel_with_their_python_neighbours(tmp_path):
    payload = _payload(tmp_path)
    assert sorted(Path(s.path).name for s in payload.sources) == ["helper.py", "tasks.py"]
    assert payload.key.startswith("20260101-000000-abcd-")


def test_unchanged_files_are_used_in_place(tmp_path):
    payload = _payload(tmp_path)
    where = shipping.place_sources(payload, tmp_path / "worker")
    assert all(here == there for there, here in where.items())
    assert not (tmp_path / "worker").exists()


def test_changed_or_missing_files_are_written_out_together(tmp_path, monkeypatch):
    payload = _payload(tmp_path)
    (tmp_path / "recipe" / "helper.py").write_text("X = 2\n")  # not what the client sent
    where = shipping.place_sources(payload, tmp_path / "worker")
    placed = {Path(p).name: Path(p) for p in where.values()}
    assert placed["tasks.py"].parent == placed["helper.py"].parent  # neighbours stay neighbours
    assert placed["helper.py"].read_text() == "X = 1\n"
    assert str(tmp_path / "worker") in str(placed["tasks.py"])

    monkeypatch.setenv(shipping.ENV_NO_SHARED_FS, "1")
    (tmp_path / "recipe" / "helper.py").write_text("X = 1\n")
    where = shipping.place_sources(payload, tmp_path / "other-worker")
    assert all(str(tmp_path / "other-worker") in here for here in where.values())


def test_the_run_directory_is_shared_only_when_it_is_visible(tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert not shipping.shares_run_dir(str(run))
    run.mkdir()
    (run / "manifest.toml").write_text('run_id = "x"\n')
    assert shipping.shares_run_dir(str(run))
    monkeypatch.setenv(shipping.ENV_NO_SHARED_FS, "1")
    assert not shipping.shares_run_dir(str(run))


def test_version_mismatches_name_the_place_and_both_versions():
    versions = {
        "client": {"packages": {"toolkit": "0.1.0", "toolkit-dask": "0.1.0", "mytasks": "1.3"}},
        "scheduler": {"packages": {"toolkit": "0.1.0", "toolkit-dask": None, "mytasks": None}},
        "workers": {
            "tcp://w1:1": {"packages": {"toolkit": "0.1.0", "toolkit-dask": "0.1.0", "mytasks": "1.3"}},
            "tcp://w2:2": {"packages": {"toolkit": "0.1.0", "toolkit-dask": "0.1.0", "mytasks": "1.2"}},
        },
    }
    assert mismatches(versions, ["toolkit", "toolkit-dask", "mytasks"]) == [
        "scheduler: toolkit-dask is not installed (here: 0.1.0)",
        "worker tcp://w2:2: mytasks 1.2 (here: 1.3)",
    ]


def test_task_modules_map_to_their_distributions():
    assert distribution_of("toolkit.conformance") == "toolkit"
    assert distribution_of("toolkit_dask.remote") == "toolkit-dask"
    assert distribution_of("no_such_module_anywhere") is None
