import os

import pytest

pytest_plugins = ["toolkit.testing"]

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(HERE)


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch):
    """Tests see only the plugins they ask for, not whatever this venv has installed."""
    monkeypatch.setenv("TOOLKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("TOOLKIT_PLUGINS", raising=False)
