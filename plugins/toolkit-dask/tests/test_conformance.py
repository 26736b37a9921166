"""The dask executor passes the executor conformance suite on a real cluster."""

from __future__ import annotations

import pytest

from toolkit.conformance import ExecutorConformance


class TestDaskCluster(ExecutorConformance):
    """Against the session's ``dask scheduler`` and two ``dask worker`` processes."""

    executor = "dask"

    @pytest.fixture(autouse=True)
    def _address(self, cluster):
        self.options = {"address": cluster.address}
