"""``wasm run`` in a real terminal (a pty): live progress with a spinner, the final hints, and Ctrl-C that stops
waiting without stopping the job."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, wait_until
from tests.helpers import get_job

pytestmark = pytest.mark.e2e


def _take_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty (so Ctrl-C becomes SIGINT)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A command on a pseudo-terminal, as a user would run it; everything it writes is kept in ``screen``."""

    def __init__(self, node: ServeProcess, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = node.env() | {"BACALHAU_API_PORT": str(node.port), "TERM": "xterm", "COLUMNS": "160"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bacalhau", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=node.data_dir.parent, preexec_fn=_take_terminal,
        )  # fmt: skip
        os.close(slave)
        self.screen = ""

    def read(self, timeout: float = 0.1) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.screen += os.read(self.master, 65536).decode(errors="replace")
            except OSError:  # the other side closed: the command ended
                pass

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"{text!r} did not appear; the screen holds:\n{self.screen}"
            self.read()

    def finish(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"the command did not end; the screen holds:\n{self.screen}"
            self.read()
        self.read(0)
        os.close(self.master)
        return self.process.returncode

    def interrupt(self) -> None:
        """Ctrl-C, as typed: the terminal turns it into SIGINT for the command."""
        os.write(self.master, b"\x03")


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
