"""The built-in executors pass the conformance suite under every start method."""

from __future__ import annotations

import multiprocessing

import pytest

from toolkit.conformance import ExecutorConformance

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()]


@pytest.mark.parametrize("start_method", METHODS, indirect=True)
class TestPool(ExecutorConformance):
    executor = "pool"

    @pytest.fixture(autouse=True)
    def start_method(self, request):
        self.start_method = request.param


@pytest.mark.parametrize("start_method", METHODS, indirect=True)
class TestProcess(ExecutorConformance):
    executor = "process"

    @pytest.fixture(autouse=True)
    def start_method(self, request):
        self.start_method = request.param
