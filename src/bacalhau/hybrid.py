"""The compute half of a hybrid node, run in a child process forked before the node's event loop starts.

Why a process: an orchestrator and a compute node in one interpreter share one interpreter lock, and under load each
mostly waits for the other (a hybrid node completed about 175 noop jobs/s where the same two halves in two processes
complete 280). Forking before anything has started (no threads, no event loop, no sockets) is safe, and the child
shares the memory of the code already imported.

The two ends talk over a socket pair, one JSON object per line:

- parent to child: ``{"start": {"node_id": ..., "orchestrators": [...]}}``, later ``{"stop": true}``;
- child to parent: ``{"ready": true}`` once connected to the orchestrator, or ``{"error": ..., "hint": ...}``;
- once ready, the parent may ask ``{"ask": "metrics" | "debug", "id": N}``, and the child answers
  ``{"id": N, "answer": ...}``: its Prometheus exposition text, or its part of ``/agent/debug``.

Why the compute half's metrics travel this way: a scrape of the node's ``/metrics`` asks the child for its own
exposition (rendered from its own registry, read from its live state) and appends it to the parent's, whose metric
names differ (``bacalhau_compute_...``). prometheus_client's multiprocess mode was the other way: it is switched on
for the whole process by an environment variable, keeps every value in memory-mapped files that must be cleaned up
after each dead process, and has no room for the collectors that read live state at scrape time, which most of ours
are; it would also reach every node of a devstack sharing the process. The socket is already there, the answer is
as fresh as the scrape, and a child that is slow or gone only leaves its part out (the scrape waits a few seconds
at most).

The parent alone decides when the child stops: signals sent to the whole process group (Ctrl-C in a terminal, a
service manager's SIGTERM) are left to the parent, which stops the compute half before the orchestrator. If the
parent dies, its end of the socket closes and the child stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

import uvloop

from bacalhau.compute.node import ComputeNode
from bacalhau.errors import BacalhauError, Unavailable
from bacalhau.lib import tracing
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.lib.tasks import spawn
from bacalhau.logs import recent_errors

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


MAX_LINE = 16 * 1024 * 1024  # bytes of one line on the socket (a metrics answer is a few kB)
ASK_TIMEOUT = 3.0  # seconds the parent waits for an answer to a question


@dataclass
class _Link:
    """The parent's end of the socket once in use: where to write, the child's one reply, its exit code, and the
    questions asked and not yet answered."""

    writer: asyncio.StreamWriter
    reply: asyncio.Future[dict[str, Any] | None]
    exited: asyncio.Task[int]
    asked: dict[int, asyncio.Future[Any]] = field(default_factory=dict)


class ComputeProcess:
    """The parent's handle on the forked compute process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._link: _Link | None = None
        self._stopping = False
        self._exit_told = False  # the exit was already reported (by start or failure): stop need not
        self._ready = False
        self._questions = itertools.count(1)

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
        self._ready = True

    async def ask(self, question: str, timeout: float = ASK_TIMEOUT) -> Any:
        """The running child's answer to ``question`` ("metrics" or "debug"); an :class:`Unavailable` error when it
        is not running or does not answer within ``timeout`` seconds."""
        link = self._link
        if link is None or not self._ready or self._stopping or link.exited.done():
            raise Unavailable("the compute process of this hybrid node is not running")
        number = next(self._questions)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        link.asked[number] = answer
        try:
            link.writer.write(_line({"ask": question, "id": number}))
            return await asyncio.wait_for(answer, timeout)
        except (TimeoutError, ConnectionError):
            raise Unavailable(f"the compute process of this hybrid node did not answer ({question})") from None
        finally:
            link.asked.pop(number, None)

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
            reader, writer = await asyncio.open_unix_connection(sock=self._sock, limit=MAX_LINE)
            reply: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
            asked: dict[int, asyncio.Future[Any]] = {}
            self._link = _Link(writer, reply, spawn(self._follow(reader, reply, asked), "compute-process"), asked)
        return self._link

    async def _follow(
        self,
        reader: asyncio.StreamReader,
        reply: asyncio.Future[dict[str, Any] | None],
        asked: dict[int, asyncio.Future[Any]],
    ) -> int:
        """Deliver the child's reply to "start", then its answers to questions, until its end of the socket closes
        (it exited); then collect its exit code."""
        try:
            line = await reader.readline()
            reply.set_result(json.loads(line) if line else None)
            while line := await reader.readline():
                message = json.loads(line)
                answer = asked.get(message.get("id", 0)) if isinstance(message, dict) else None
                if answer is not None and not answer.done():
                    answer.set_result(message.get("answer"))
        except (ConnectionError, ValueError):  # its end closed with our "stop" unread (a failed start; reset or
            # broken pipe, by timing), or a line beyond MAX_LINE: it exited, or will, all the same
            if not reply.done():
                reply.set_result(None)
            with contextlib.suppress(ConnectionError):
                await reader.read()
        for answer in asked.values():  # questions the child will never answer
            if not answer.done():
                answer.set_exception(ConnectionError("the compute process exited"))
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
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_LINE)
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
        metrics = NodeMetrics()
        compute.register_metrics(metrics)
        gc.freeze()
        writer.write(_line({"ready": True}))
        await _answer_questions(reader, writer, compute, metrics)  # until "stop", or the parent's end closing
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


async def _answer_questions(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, compute: ComputeNode, metrics: NodeMetrics
) -> None:
    """Answer the parent's questions until it says "stop" (or its end closes)."""
    while line := await reader.readline():
        message = json.loads(line)
        question = message.get("ask")
        if question is None:
            return  # "stop"
        answer: Any = None
        try:
            if question == "metrics":
                answer = (await metrics.exposition()).decode()
            elif question == "debug":
                answer = {**await compute.debug_info(), "RecentErrors": recent_errors().records()}
        except Exception:
            log.exception("the compute process could not answer %r", question)
        writer.write(_line({"id": message.get("id"), "answer": answer}))
