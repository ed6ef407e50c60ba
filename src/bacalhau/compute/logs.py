"""Execution logs on a compute node: where they are, how long they are kept, and streaming them to the orchestrator.

An execution writes ``stdout`` and ``stderr`` into its results directory while it runs; when it ends, those two files
move to ``logs/<execution>/`` and are kept for the retention period, so that logs stay available after the run
(for WebAssembly executions too, which the original cannot stream).

Streaming goes over NATS: the orchestrator asks on this node's log subject, giving a subject of its own; the node
then sends chunks of lines there as requests, each acknowledged before the next, which gives backpressure, and stops
as soon as nobody acknowledges (the client went away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.lib.links import LinkVerifier, Purpose
from bacalhau.lib.paths import child
from bacalhau.lib.tasks import spawn
from bacalhau.models.spec import STDERR_FILE, STDOUT_FILE
from bacalhau.transport import envelope

log = logging.getLogger(__name__)

STDOUT, STDERR = 1, 2
CHUNK_BYTES = 64 * 1024
# The longest line kept whole: longer output without a newline is streamed in pieces of about this size, so that what
# a job prints cannot make its node hold unbounded memory (nor build a message too big to send).
MAX_LINE_BYTES = 64 * 1024
POLL_INTERVAL = 0.1
KEEPALIVE_INTERVAL = 10.0
ACK_TIMEOUT = 30.0


class LogStore:
    def __init__(self, executions_dir: Path, logs_dir: Path, retention: float) -> None:
        self.executions_dir = executions_dir
        self.logs_dir = logs_dir
        self.retention = retention

    def files(self, execution_id: str) -> tuple[Path, Path] | None:
        """The stdout and stderr files of an execution, live or kept; None when this node has neither folder. A file
        that does not exist is output not written (yet)."""
        kept, live = child(self.logs_dir, execution_id), child(self.executions_dir, execution_id) / "results"
        for folder in (kept, live):  # kept first: it is made before the live folder goes
            if folder.is_dir():
                return folder / STDOUT_FILE, folder / STDERR_FILE
        return None

    def kept(self, execution_id: str) -> tuple[Path, Path]:
        """Where an execution's output files are kept, whether or not it wrote any."""
        folder = child(self.logs_dir, execution_id)
        return folder / STDOUT_FILE, folder / STDERR_FILE

    def keep(self, execution_id: str, results_dir: Path) -> None:
        """Move an ended execution's output files where they are kept for the retention period."""
        outputs = (results_dir / STDOUT_FILE, results_dir / STDERR_FILE)
        for source, kept in zip(outputs, self.kept(execution_id), strict=True):
            if source.exists():
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), kept)

    def prune(self) -> int:
        """Delete kept logs older than the retention period; returns how many executions' logs went."""
        if not self.logs_dir.exists():
            return 0
        cutoff = time.time() - self.retention
        removed = 0
        for folder in self.logs_dir.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed


class _Tail:
    """One output file read incrementally, as whole lines (the file may not exist yet)."""

    def __init__(self, kind: int, path: Path, from_end: bool) -> None:
        self.kind = kind
        self.path = path
        self.from_end = from_end
        self.handle: IO[bytes] | None = None
        self.partial = b""

    def lines(self, *, final: bool = False) -> list[tuple[int, str]]:
        if self.handle is None:
            if not self.path.exists():
                return []
            self.handle = self.path.open("rb")
            if self.from_end:
                self.handle.seek(0, 2)
        out: list[tuple[int, str]] = []
        while True:
            data = self.handle.read(CHUNK_BYTES)
            if data:
                *complete, self.partial = (self.partial + data).split(b"\n")
                out += [(self.kind, line.decode(errors="replace") + "\n") for line in complete]
                if len(self.partial) >= MAX_LINE_BYTES:  # a program that never ends a line: send it in pieces
                    out.append((self.kind, self.partial.decode(errors="replace")))
                    self.partial = b""
            if not data or not final:
                break
        if final and self.partial:
            out.append((self.kind, self.partial.decode(errors="replace")))
            self.partial = b""
        return out

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


async def read_lines(
    stdout: Path, stderr: Path, *, follow: bool, tail: bool, finished: Callable[[], Awaitable[bool]]
) -> AsyncIterator[list[tuple[int, str]]]:
    """Batches of (stream, line) from both files; with ``follow``, until the execution ends and all is read.

    An empty batch is a keepalive, yielded after a quiet spell so that the reader knows the stream is alive.
    """
    readers = [_Tail(STDOUT, stdout, tail), _Tail(STDERR, stderr, tail)]
    quiet_since = time.monotonic()
    try:
        while True:
            batch = [line for reader in readers for line in reader.lines()]
            if batch:
                quiet_since = time.monotonic()
                yield batch
                continue
            if not follow or await finished():
                rest = [line for reader in readers for line in reader.lines(final=True)]
                if rest:
                    yield rest
                return
            if time.monotonic() - quiet_since > KEEPALIVE_INTERVAL:
                quiet_since = time.monotonic()
                yield []
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        for reader in readers:
            reader.close()


class LogServer:
    """Answers the orchestrator's log requests for this node, each signed by the orchestrator for the user it let
    in (``links``): whoever can reach NATS is not thereby allowed to read every execution's output.

    ``is_finished`` says whether an execution has ended (or is unknown); ``is_known`` whether it ran here at all, so
    that an execution that wrote nothing (and so has no files) gets empty logs rather than an error.
    """

    def __init__(
        self,
        nc_getter: Callable[[], NATS | None],
        store: LogStore,
        is_finished: Callable[[str], Awaitable[bool]],
        is_known: Callable[[str], Awaitable[bool]],
        links: LinkVerifier,
    ) -> None:
        self._nc = nc_getter
        self._store = store
        self._is_finished = is_finished
        self._is_known = is_known
        self._links = links
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_request(self, msg: Msg) -> None:
        try:
            request = envelope.decode(msg.data)
        except envelope.EnvelopeError:
            return
        execution_id = str(request.get("ExecutionID", ""))
        expires, signature = str(request.get("Expires", "")), str(request.get("Signature", ""))
        refused = self._links.check(execution_id, Purpose.LOGS, expires, signature, "a NATS client")
        if refused:
            await _respond(msg, {"Error": f"log request refused: {refused}"})
            return
        files = self._store.files(execution_id)
        if files is None and await self._is_known(execution_id):
            files = self._store.kept(execution_id)
        if files is None:
            await _respond(msg, {"Error": f"no logs found for execution {execution_id} on this node"})
            return
        await _respond(msg, {"OK": True})
        task = spawn(self._stream(request, files), f"logs-{execution_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stream(self, request: dict[str, Any], files: tuple[Path, Path]) -> None:
        nc = self._nc()
        if nc is None:
            return
        execution_id = str(request["ExecutionID"])
        subject = str(request["Subject"])

        async def finished() -> bool:
            return await self._is_finished(execution_id)

        try:
            lines = read_lines(
                *files, follow=bool(request.get("Follow")), tail=bool(request.get("Tail")), finished=finished
            )
            async for batch in lines:
                chunk = {"Lines": [{"Type": kind, "Line": text} for kind, text in batch]}
                reply = await nc.request(subject, envelope.encode(chunk), timeout=ACK_TIMEOUT)
                if not envelope.decode(reply.data).get("Continue"):
                    return
            await nc.request(subject, envelope.encode({"Lines": [], "End": True}), timeout=ACK_TIMEOUT)
        except (NoRespondersError, NatsTimeoutError, ConnectionClosedError, envelope.EnvelopeError):
            log.debug("log stream for %s ended: the reader went away", execution_id)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _respond(msg: Msg, body: dict[str, Any]) -> None:
    if msg.reply:
        with contextlib.suppress(ConnectionClosedError):
            await msg.respond(envelope.encode(body))
