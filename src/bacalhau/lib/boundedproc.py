"""Run a program that someone else wrote (a compute node owner's admission probe, a GPU vendor's tool) with bounds:
a time limit, a cap on what is kept of its output, and no leftovers.

The program runs in a session of its own, so that when its time is up, or it must go, whatever it started goes with
it (a killed shell would otherwise leave its children holding the pipe open). Only one of its output streams is read;
the other goes nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

CHUNK = 64 * 1024
LEFTOVER_WAIT = 5.0  # seconds to read what a killed session left in the pipe, so that the pipe closes


class ProcessTimeout(Exception):
    """The program (or something it left holding its output) did not finish in time; the whole session was killed."""


@dataclass(frozen=True)
class Finished:
    code: int  # the exit code (negative: the signal that ended it)
    output: bytes  # the first ``max_bytes`` of the stream read
    overflowed: bool  # it printed more than that


async def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    max_bytes: int,
    read: Literal["stdout", "stderr"] = "stdout",
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    stop_on_overflow: bool = False,
) -> Finished:
    """Run ``argv`` (never through a shell of ours) and read one of its streams.

    ``stdin`` is written to the program (it need not read it all); without it the program reads nothing. Past
    ``max_bytes``, the rest of the output is read and dropped, or with ``stop_on_overflow`` the program is killed at
    once (a tool that prints without end). Raises :class:`ProcessTimeout`, or ``OSError`` if it cannot start."""
    pipe, nowhere = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=pipe if stdin is not None else nowhere,
        stdout=pipe if read == "stdout" else nowhere,
        stderr=pipe if read == "stderr" else nowhere,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    stream = process.stdout if read == "stdout" else process.stderr
    assert stream is not None

    async def feed() -> None:
        if stdin is None or process.stdin is None:
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # it need not read it all
            process.stdin.write(stdin)
            await process.stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.close()

    async def collect() -> tuple[bytes, bool]:
        kept = bytearray()
        overflowed = False
        while chunk := await stream.read(CHUNK):
            room = max_bytes - len(kept)
            if len(chunk) > room:
                overflowed = True
                if stop_on_overflow:
                    return bytes(kept + chunk[:room]), True
            kept += chunk[: max(room, 0)]
        return bytes(kept), overflowed

    async def finish() -> tuple[bytes, bool]:
        _, (output, overflowed) = await asyncio.gather(feed(), collect())
        if not (overflowed and stop_on_overflow):
            await process.wait()
        return output, overflowed

    timed_out = False
    try:
        output, overflowed = await asyncio.wait_for(finish(), timeout)
    except TimeoutError:
        timed_out = True
        raise ProcessTimeout(f"{argv[0]} did not finish within {timeout:g}s") from None
    finally:
        if timed_out or process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            # What is left in the pipe is read before waiting: asyncio's wait() returns only once the pipes have
            # closed too, and a pipe whose reader stopped reading (its buffer full) never sees its end otherwise.
            with contextlib.suppress(Exception):
                if process.stdin is not None:
                    process.stdin.close()
                await asyncio.wait_for(stream.read(), LEFTOVER_WAIT)
            await process.wait()
    assert process.returncode is not None
    return Finished(process.returncode, output, overflowed)
