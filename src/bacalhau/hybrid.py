"""The compute half of a hybrid node, run in a child process forked before the node's event loop starts.

Why a process: an orchestrator and a compute node in one interpreter share one interpreter lock, and under load each
mostly waits for the other (a hybrid node completed about 175 noop jobs/s where the same two halves in two processes
complete 280). Forking before anything has started (no threads, no event loop, no sockets) is safe, and the child
shares the memory of the code already imported.

The two ends talk over a socket pair, one JSON object per line:

- parent to child: ``{"start": {"node_id": ..., "orchestrators": [...]}}``, later ``{"stop": true}``;
- child to parent: ``{"ready": true}`` once connected to the orchestrator, or ``{"error": ..., "hint": ...}``.

The parent alone decides when the child stops: signals sent to the whole process group (Ctrl-C in a terminal, a
service manager's SIGTERM) are left to the parent, which stops the compute half before the orchestrator. If the
parent dies, its end of the socket closes and the child stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

import uvloop

from bacalhau.compute.node import ComputeNode
from bacalhau.errors import BacalhauError, Unavailable
from bacalhau.lib import tracing
from bacalhau.lib.tasks import spawn

log = logging.getLogger(__name__)

BuildCompute = Callable[[str, list[str]], ComputeNode]
"""Builds the compute node from the node's ID and the orchestrator URLs it connects to."""

UNREACHABLE = "the compute side of this hybrid node could not reach its orchestrator"


def describe_exit(code: int) -> str:
    """An exit code as ``os.waitstatus_to_exitcode`` gives it (negative: killed by that signal), in words."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Link:
    """The parent's end of the socket once in use: where to write, the child's one reply, and its exit code."""

    writer: asyncio.StreamWriter
    reply: asyncio.Future[dict[str, Any] | None]
    exited: asyncio.Task[int]


class ComputeProcess:
    """The parent's handle on the forked compute process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._link: _Link | None = None
        self._stopping = False
        self._exit_told = False  # the exit was already reported (by start or failure): stop need not

    @classmethod
    def fork(cls, build: BuildCompute, connect_timeout: float) -> ComputeProcess:
        """Fork the child, which waits for ``start``. Call it before any thread or event loop exists."""
        parent_end, child_end = socket.socketpair()
        gc.freeze()  # objects made so far are shared with the child: keep the collector from touching (copying) them
        pid = os.fork()
        if pid == 0:
            parent_end.close()
            _child_main(child_end, build, connect_timeout)
        child_end.close()
        return cls(pid, parent_end)

    async def start(self, node_id: str, orchestrators: list[str], timeout: float) -> None:
        """Start the compute node in the child and wait until it has connected to the orchestrator."""
        link = await self._connect()
        link.writer.write(_line({"start": {"node_id": node_id, "orchestrators": orchestrators}}))
        try:
            reply = await asyncio.wait_for(asyncio.shield(link.reply), timeout)
        except TimeoutError:
            raise Unavailable(UNREACHABLE) from None
        if reply is None:
            code = await link.exited
            self._exit_told = True
            raise BacalhauError(
                f"the compute process of this hybrid node exited before it was ready ({describe_exit(code)})"
            )
        if "error" in reply:
            raise BacalhauError(str(reply["error"]), hint=str(reply.get("hint", "")))

    async def failure(self) -> str:
        """Wait until the child exits without having been asked to; what happened, in words."""
        link = await self._connect()
        code = await asyncio.shield(link.exited)
        if self._stopping:
            await asyncio.Future()  # an exit that was asked for is not a failure: wait forever
        self._exit_told = True
        return f"the compute process of this hybrid node stopped unexpectedly ({describe_exit(code)})"

    async def stop(self, timeout: float) -> None:
        """Ask the child to stop its compute node and exit; kill it if it has not within ``timeout`` seconds."""
        self._stopping = True
        link = await self._connect()
        with contextlib.suppress(ConnectionError):
            link.writer.write(_line({"stop": True}))
            await link.writer.drain()
        try:
            code = await asyncio.wait_for(asyncio.shield(link.exited), timeout)
        except TimeoutError:
            log.warning("the compute process did not stop within %.0f s; killing it", timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            code = await link.exited
        link.writer.close()
        if code != 0 and not self._exit_told:
            log.warning("the compute process ended badly as it stopped (%s)", describe_exit(code))

    async def _connect(self) -> _Link:
        if self._link is None:
            reader, writer = await asyncio.open_unix_connection(sock=self._sock)
            reply: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
            self._link = _Link(writer, reply, spawn(self._follow(reader, reply), "compute-process"))
        return self._link

    async def _follow(self, reader: asyncio.StreamReader, reply: asyncio.Future[dict[str, Any] | None]) -> int:
        """Deliver the child's one reply, then wait for its end of the socket to close and collect its exit code."""
        try:
            line = await reader.readline()
            reply.set_result(json.loads(line) if line else None)
            await reader.read()  # nothing more is sent: this returns when the child has exited
        except ConnectionError:  # its end closed with our "stop" unread (a failed start; reset or broken pipe, by
            # timing): it exited all the same
            if not reply.done():
                reply.set_result(None)
        _, status = await asyncio.to_thread(os.waitpid, self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The parent handles the process group's signals (a Python handler, unlike SIG_IGN, is not inherited by the
    programs the compute node may start)."""


def _child_main(sock: socket.socket, build: BuildCompute, connect_timeout: float) -> NoReturn:
    signal.signal(signal.SIGINT, _ignore)
    signal.signal(signal.SIGTERM, _ignore)
    code = 1
    try:
        tracing.setup()  # this process's own exporter: the parent's threads did not survive the fork
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve_compute(sock, build, connect_timeout))
        code = 0
    except BaseException:
        log.exception("the compute process failed")
    finally:
        tracing.shutdown()  # os._exit runs no exit handlers: export what is left now
        logging.shutdown()
        os._exit(code)  # never run the parent's exit handlers (they would release its data dir lock)


async def _serve_compute(sock: socket.socket, build: BuildCompute, connect_timeout: float) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    line = await reader.readline()
    message = json.loads(line) if line else {}
    if "start" not in message:
        return  # the parent stopped (or failed to start) before starting us: "stop", or its end closed
    start = message["start"]
    compute: ComputeNode | None = None
    try:
        compute = build(start["node_id"], list(start["orchestrators"]))
        await compute.start()
        if not await compute.connection.wait_connected(connect_timeout):
            raise Unavailable(UNREACHABLE)
        gc.freeze()
        writer.write(_line({"ready": True}))
        await reader.readline()  # "stop", or the parent's end closing
    except BacalhauError as exc:
        writer.write(_line({"error": exc.message, "hint": exc.hint}))
    except ValueError as exc:  # a setting that parsed as a string but means nothing (a duration, a size)
        writer.write(_line({"error": f"invalid configuration: {exc}"}))
    finally:
        if compute is not None:
            await compute.stop()
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
