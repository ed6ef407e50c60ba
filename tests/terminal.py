"""Commands on a pseudo-terminal, as a user runs them (for what only a terminal shows: spinners, prompts, echo)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time

from tests.conftest import ServeProcess


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
