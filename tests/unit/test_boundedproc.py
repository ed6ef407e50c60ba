"""Programs run with bounds (lib/boundedproc.py): what is kept of their output, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from bacalhau.lib.boundedproc import ProcessTimeout, run_bounded


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "program"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_output_past_the_cap_is_dropped_and_the_program_runs_to_its_end(tmp_path: Path) -> None:
    program = script(tmp_path, "head -c 300000 /dev/zero >&2; cat >/dev/null; echo done >&2; exit 3\n")
    finished = asyncio.run(run_bounded([program], timeout=10, max_bytes=1000, read="stderr", stdin=b"x" * 500_000))
    assert (finished.code, len(finished.output), finished.overflowed) == (3, 1000, True)


def test_a_program_that_prints_without_end_is_stopped_at_the_cap(tmp_path: Path) -> None:
    program = script(tmp_path, "exec cat /dev/zero\n")
    started = time.monotonic()
    finished = asyncio.run(run_bounded([program], timeout=30, max_bytes=4096, stop_on_overflow=True))
    assert (finished.output, finished.overflowed) == (b"\0" * 4096, True)
    assert finished.code < 0 and time.monotonic() - started < 10


def test_a_timeout_kills_what_the_program_started_too(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    program = script(tmp_path, f"sleep 300 & echo $! > {marker}; wait\n")
    with pytest.raises(ProcessTimeout, match=r"did not finish within 0\.5s"):
        asyncio.run(run_bounded([program], timeout=0.5, max_bytes=100))
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    pytest.fail(f"the program's child {child} outlived the timeout")


def test_a_program_that_cannot_start_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        asyncio.run(run_bounded([str(tmp_path / "missing")], timeout=5, max_bytes=100))


def test_a_program_stopped_at_the_cap_is_never_waited_for_forever() -> None:
    """asyncio's wait() returns only once the pipes have closed as well: the pipe of a program stopped at the cap
    must be read to its end first, or, whenever its reader had paused on a full buffer, the wait never returns (a
    hang that struck about one run in a hundred)."""

    async def many() -> None:
        for _ in range(200):
            argv = ["/bin/sh", "-c", "exec cat /dev/zero"]
            finished = await asyncio.wait_for(run_bounded(argv, timeout=10, max_bytes=1000, stop_on_overflow=True), 10)
            assert finished.overflowed

    asyncio.run(many())
