"""Fixtures of the fault tests (helpers: faults_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faults_helpers import TASKS


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder with the fault tasks beside the recipes the test writes."""
    (tmp_path / "faults_tasks.py").write_text(TASKS)
    return tmp_path
