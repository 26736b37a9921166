"""Sessions: lint, tests (3.11-3.13; 3.11 under coverage), plugins (and their typing), browser, coverage; bench
on demand.

`nox` runs the default sessions; `nox -s bench` runs the performance suite.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "tests", "plugins", "browser", "coverage"]

PYTHONS = ["3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = PYPROJECT["dependency-groups"]["test"]
LINT_DEPS = PYPROJECT["dependency-groups"]["lint"]
COVERAGE_FLOOR = "85"
COVERED = PYTHONS[0]  # the Python whose test run is measured


def _pyenv_pythons() -> None:
    """Let pyenv's shims find every installed 3.11-3.13, not only the global one."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    if "PYENV_VERSION" in os.environ or not shutil.which("pyenv"):
        return
    found = []
    for minor in PYTHONS:
        versions = sorted(glob.glob(os.path.join(root, "versions", f"{minor}.*")))
        if versions:
            found.append(os.path.basename(versions[-1]))
    if found:
        os.environ["PYENV_VERSION"] = ":".join(found)


_pyenv_pythons()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The core's tests against the installed package; under coverage on the first
    Python only: coverage.py's tracer makes a run 1.7-2.4x slower (2 cores: 100 s
    against 165-238 s), and the suite must stay under 15 minutes."""
    session.install(".", *TEST_DEPS)
    # the tests wait on real processes, signals and clocks more than they compute: one
    # pytest worker more than cores keeps both cores busy (5.8 min -> 3.2 min on 2 cores)
    workers = str((os.cpu_count() or 1) + 1)
    pytest = ["pytest", "--numprocesses", workers, *session.posargs]
    if session.python != COVERED:
        session.run(*pytest)
        return
    session.run(
        "coverage",
        "run",
        "-m",
        *pytest,
        env={"COVERAGE_FILE": str(Path(f".coverage.{session.python}").resolve())},
    )


@nox.session(python="3.11")
def plugins(session: nox.Session) -> None:
    """The first-party plugins (plugins/*) and what `toolkit init --plugin NAME` writes,
    installed together in one environment, as a user would have them: each one's tests,
    and mypy --strict on the example and the generated plugins against the installed
    toolkit (py.typed: its public API is typed)."""
    folders = [pyproject.parent for pyproject in sorted(Path("plugins").glob("*/pyproject.toml"))]
    generated = Path(session.create_tmp()).resolve() / "toolkit-generated"
    shutil.rmtree(generated, ignore_errors=True)
    # two installs, not one per plugin: each pip run costs a resolve, and the second finds
    # toolkit (which the plugins require) already there
    session.install(".", *TEST_DEPS, *PYPROJECT["dependency-groups"]["typing"])
    session.run("toolkit", "init", "--plugin", "generated", str(generated))
    session.install(*map(str, folders), f"{generated}[test]")
    for folder in [*folders, generated]:
        if (folder / "tests").is_dir():
            session.run("pytest", str(folder / "tests"), *session.posargs)
    for folder in (Path("plugins/toolkit-example").resolve(), generated):
        with session.chdir(folder):  # so that mypy reads toolkit as installed
            session.run("mypy", "--strict", folder.name.replace("-", "_"), "tests")
    with session.chdir("tests/typecheck"):  # no Any where the docs promise a type
        session.run("mypy", "--strict", "public_api.py")


@nox.session(python="3.11")
def browser(session: nox.Session) -> None:
    """The report and toolkit ui in headless Chromium (Debian's), driven by Selenium;
    screenshots in artifacts/screenshots/."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")) and shutil.which("apt-get"):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-q", external=True, env=env, success_codes=[0, 100])
        session.run(
            "apt-get", "install", "-y", "-q", "chromium", "chromium-driver",
            external=True, env=env, success_codes=[0, 100],
        )  # fmt: skip
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        session.skip(
            "SKIPPED: no browser. chromium and chromium-driver are not installed and apt-get could not"
            " install them: the report and ui browser tests did not run"
        )
    session.install(".", *TEST_DEPS, "selenium")
    shots = Path("artifacts/screenshots").resolve()
    session.run(
        "pytest",
        "tests/browser",
        *session.posargs,
        env={"TOOLKIT_BROWSER_TESTS": "1", "TOOLKIT_SCREENSHOTS": str(shots)},
    )
    session.log(f"screenshots in {shots}")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff: lint and format check."""
    session.install(*LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def coverage(session: nox.Session) -> None:
    """Combine the tests' coverage data and fail under the floor."""
    session.install("coverage[toml]")
    if not glob.glob(".coverage.*"):
        session.skip("no coverage data: run the tests sessions first")
    session.run("coverage", "combine")
    session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}")
    session.run("coverage", "erase")


@nox.session(python="3.11", default=False)
def bench(session: nox.Session) -> None:
    """The performance suite against the raw baselines (not part of CI)."""
    # toolkit-dask for case 8; no other plugin, whose start-up case 7 would count
    session.install(".", "-r", "benchmarks/requirements.txt", "./plugins/toolkit-dask")
    if not shutil.which("parallel"):
        session.log("GNU parallel is missing; trying apt-get")
        session.run("apt-get", "update", "-q", external=True, success_codes=[0, 100])
        session.run("apt-get", "install", "-y", "-q", "parallel", external=True, success_codes=[0, 100])
    session.run("python", "benchmarks/run.py", *session.posargs)
