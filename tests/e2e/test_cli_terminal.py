"""``wasm run`` in a real terminal (a pty): live progress with a spinner, the final hints, and Ctrl-C that stops
waiting without stopping the job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.helpers import get_job
from tests.terminal import Terminal

pytestmark = pytest.mark.e2e


@pytest.fixture
def terminal(hybrid: ServeProcess) -> Iterator[Callable[..., Terminal]]:
    """Open commands on terminals; any still running when the test ends is killed."""
    opened: list[Terminal] = []

    def open_(*args: str) -> Terminal:
        opened.append(Terminal(hybrid, *args))
        return opened[-1]

    yield open_
    for each in opened:
        if each.process.poll() is None:
            each.process.kill()
            each.process.wait(10)


def test_progress_is_live_with_a_spinner_and_ends_with_the_hints(
    terminal: Callable[..., Terminal], wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    module = tmp_path / "sleep.wasm"
    module.write_bytes(wasm("sleep"))
    tty = terminal("wasm", "run", str(module), "--", "1500")
    tty.wait_for("Job successfully submitted. Job ID: j-")
    tty.wait_for(" TIME          EXEC. ID    TOPIC               EVENT")
    tty.wait_for("Running")
    assert "Completed successfully" not in tty.screen, "events are shown as they happen, not at the end"
    tty.wait_for("\r\x1b[K ")  # the spinner draws on the line below the events while the job runs
    assert tty.finish() == 0
    screen = tty.screen
    assert "Submission          Job submitted" in screen
    assert "Execution           Completed successfully" in screen
    job_id = screen.split("Job ID: ")[1].split()[0]
    for hint in (f"bacalhau job describe {job_id}", f"bacalhau job executions {job_id}", f"bacalhau job get {job_id}"):
        assert hint in screen
    assert screen.rstrip().endswith(f"bacalhau job get {job_id}"), "the spinner is erased at the end"


def test_ctrl_c_stops_waiting_but_not_the_job(
    hybrid: ServeProcess, terminal: Callable[..., Terminal], wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    module = tmp_path / "sleep.wasm"
    module.write_bytes(wasm("sleep"))
    tty = terminal("wasm", "run", str(module), "--", "60000")
    tty.wait_for("Running")
    tty.interrupt()
    assert tty.finish() == 0
    assert "Warning: Progress tracking canceled. The job is still running." in tty.screen
    job_id = tty.screen.split("Job ID: ")[1].split()[0]
    assert f"To stop it: bacalhau job stop {job_id}" in tty.screen
    assert "Traceback" not in tty.screen
    assert get_job(hybrid.url, job_id)["Job"]["State"]["StateType"] == "Running"
    hybrid.cli("job", "stop", job_id)
    wait_until(lambda: get_job(hybrid.url, job_id)["Job"]["State"]["StateType"] == "Stopped", 30, "the job to stop")


def test_piped_output_has_no_spinner(hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path) -> None:
    module = tmp_path / "sleep.wasm"
    module.write_bytes(wasm("sleep"))
    result = hybrid.cli("wasm", "run", str(module), "--", "600")
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    assert "Completed successfully" in result.stdout
