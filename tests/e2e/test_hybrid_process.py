"""A hybrid node runs its compute half in a child process: it stops with the node, and its death stops the node."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import psutil
import pytest

from tests.conftest import ServeProcess, wait_until
from tests.helpers import submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


def compute_process(node: ServeProcess) -> psutil.Process:
    assert node.process is not None
    [child] = [p for p in psutil.Process(node.process.pid).children() if p.name() != "nats-server"]
    return child


def gone(process: psutil.Process) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return check


def test_a_signal_to_the_node_alone_stops_both_halves_cleanly(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    child = compute_process(hybrid)
    job_id = submit(hybrid.url, wasm_job(wasm("hello"), "split"))
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"
    assert hybrid.process is not None
    os.kill(hybrid.process.pid, signal.SIGTERM)  # not the process group: the node must stop its child itself
    assert hybrid.process.wait(30) == 0
    wait_until(gone(child), 10, "the compute process to exit")
    assert "stopped unexpectedly" not in hybrid.log()


def test_a_dead_compute_process_stops_the_node_with_a_clear_error(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    compute_process(hybrid).kill()
    assert hybrid.process is not None
    assert hybrid.process.wait(30) == 1
    log = hybrid.log()
    assert "the compute process of this hybrid node stopped unexpectedly (killed by SIGKILL)" in log
    assert "start it again" in log and "Traceback" not in log

    hybrid.start()
    job_id = submit(hybrid.url, wasm_job(wasm("hello"), "again"))
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"


def test_the_compute_process_ends_when_the_node_is_killed(hybrid: ServeProcess) -> None:
    child = compute_process(hybrid)
    assert hybrid.process is not None
    os.kill(hybrid.process.pid, signal.SIGKILL)
    hybrid.process.wait(10)
    wait_until(gone(child), 30, "the orphaned compute process to exit")
