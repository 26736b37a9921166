import textwrap
from pathlib import Path

import pytest

TASK = '\n[[task]]\nname = "t"\nuses = "some.task"\n'


@pytest.fixture
def write_recipe(tmp_path):
    """``write_recipe(name, schedule_toml, body=TASK, folder=tmp_path) -> Path``."""

    def write(name: str, schedule: str, body: str = TASK, folder: Path | None = None) -> Path:
        folder = folder or tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.toml"
        text = f'[recipe]\nname = "{name}"\n\n[schedule]\n{textwrap.dedent(schedule).strip()}\n'
        path.write_text(text + textwrap.dedent(body))
        return path

    return write
