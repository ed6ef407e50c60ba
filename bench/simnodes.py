"""Simulated compute nodes: many lightweight nodes in one process, speaking the real protocol over real NATS.

    python -m bench.simnodes --orchestrator nats://127.0.0.1:4222 --count 1000 [--heartbeat 15] [--prefix sim]

Each node handshakes, heartbeats (at ``--heartbeat`` seconds, the original's default 15 s, each node at its own
phase) and keeps both ordered message streams with the orchestrator, using the protocol's own code
(``transport.stream``'s sender and receiver, ``transport.messages``, ``transport.envelope``). What a node does not
have is a store, engines or a runner: its streams live in memory, it accepts every bid and reports every execution
completed at once, whatever the job asks for, so that a thousand of them cost the machine little and the
orchestrator's side is what a measurement sees. All nodes share one NATS connection and one subscription.

It prints ``ready N`` once N nodes are connected, then runs until SIGTERM or SIGINT, when each node says it shuts
down (the orchestrator marks it disconnected) and the process prints ``completed N`` (executions run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.lib.sqlstore import Transaction
from bacalhau.lib.tasks import spawn
from bacalhau.models.base import WireModel
from bacalhau.models.node import ComputeNodeInfo, NodeInfo, NodeType
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionStateType
from bacalhau.models.timefmt import now_ns
from bacalhau.transport import envelope, messages, subjects
from bacalhau.transport.stream import StreamReceiver, StreamSender
from bacalhau.version import build_info

log = logging.getLogger("bench.simnodes")

# What a node of this machine offers by default (2 cores, 80% of them), so that capacity binds as on a real node.
CAPACITY = Resources(cpu=1.6, memory=16 * 2**30, disk=100 * 10**9)
ENGINES = ["docker", "noop", "wasm"]
PUBLISHERS = ["local", "noop", "s3"]
SOURCES = ["inline", "ipfs", "local", "s3", "urlDownload"]
REQUEST_TIMEOUT = 10.0
MISSED_HEARTBEATS_BEFORE_RECONNECT = 3
HANDSHAKES_AT_ONCE = 50
SHUTDOWN_TIMEOUT = 10.0


@dataclass
class SimEffects:
    """What a committed transaction means: reports to send (node, number, body) and executions to run."""

    outbox: list[tuple[str, int, str]] = field(default_factory=list)
    to_run: list[tuple[str, str]] = field(default_factory=list)  # (node, execution)


class SimTx(Transaction[SimEffects]):
    """A transaction over the nodes' memory. Its connection is an empty in-memory SQLite one, there only so that the
    stream receiver's per-message savepoints work as in a real store."""

    def __init__(self, conn: sqlite3.Connection, nodes: dict[str, SimNode]) -> None:
        super().__init__(conn, SimEffects())
        self.nodes = nodes

    def report(self, node: SimNode, message: WireModel) -> None:
        node.last_seq += 1
        text = envelope.message_text(messages.wrap(message))
        node.outbox[node.last_seq] = text
        self.effects.outbox.append((node.node_id, node.last_seq, text))


@dataclass
class SimNode:
    node_id: str
    epoch: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: int = field(default_factory=now_ns)
    outbox: dict[int, str] = field(default_factory=dict)  # unacknowledged reports by number
    last_seq: int = 0
    applied: int = 0  # the last orchestrator message applied
    orchestrator_epoch: str = ""
    executions: dict[str, tuple[ExecutionStateType, str]] = field(default_factory=dict)  # state and job ID
    sender: StreamSender | None = None

    def info(self) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            node_type=NodeType.COMPUTE.value,
            labels={"simulated": "true"},
            supported_protocols=["ncl/v1"],
            compute_node_info=ComputeNodeInfo(
                execution_engines=ENGINES,
                publishers=PUBLISHERS,
                storage_sources=SOURCES,
                max_capacity=CAPACITY,
                available_capacity=CAPACITY,
                max_job_requirements=CAPACITY,
                address="127.0.0.1",
            ),
            bacalhau_version=build_info(),
        )


class SimulatedNodes:
    """``count`` nodes named ``{prefix}-{index}``, connected to the orchestrator at ``url``."""

    def __init__(self, url: str, count: int, *, heartbeat: float = 15.0, prefix: str = "sim") -> None:
        self._url = url
        self._heartbeat = heartbeat
        width = len(str(max(count - 1, 0)))
        self._nodes = {f"{prefix}-{i:0{width}d}": SimNode(f"{prefix}-{i:0{width}d}") for i in range(count)}
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._receiver: StreamReceiver[SimTx] = StreamReceiver(
            self._transact, self._handle, self._load_applied, self._record_applied
        )
        self._nc: NATS | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.completed = 0
        self.heartbeats = 0

    # ---- lifecycle
    async def start(self) -> None:
        """Connect every node (a wave of handshakes at a time) and start their heartbeats."""
        self._nc = nc = await nats.connect(servers=[self._url], name="bacalhau-simnodes", max_reconnect_attempts=-1)
        await nc.subscribe(subjects.to_compute("*"), cb=self._on_stream_batch)
        gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)

        async def join(node: SimNode) -> None:
            node.sender = StreamSender(nc, subjects.to_orchestrator(node.node_id), node.node_id, self, node.epoch)
            async with gate:
                await self._join(node, retry=0.5)

        await asyncio.gather(*(join(node) for node in self._nodes.values()))
        self._tasks = [spawn(self._heartbeats(node), f"heartbeat-{node.node_id}") for node in self._nodes.values()]

    async def stop(self) -> None:
        """Each node tells the orchestrator it shuts down, then the connection closes."""
        for task in self._tasks:
            task.cancel()
        nodes = list(self._nodes.values())
        await asyncio.gather(*(n.sender.stop() for n in nodes if n.sender is not None), return_exceptions=True)
        gate = asyncio.Semaphore(HANDSHAKES_AT_ONCE)

        async def leave(node: SimNode) -> None:
            async with gate:
                with contextlib.suppress(NatsTimeoutError, NoRespondersError, ConnectionClosedError):
                    await self._request(node, "Shutdown", messages.ShutdownNotice(node_id=node.node_id).to_wire(), 2)

        if self._nc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(leave(n) for n in nodes)), SHUTDOWN_TIMEOUT)
            await self._nc.close()
        self._conn.close()

    # ---- control plane, as compute/connection.py does it
    async def _request(
        self, node: SimNode, kind: str, payload: dict[str, Any], timeout: float = REQUEST_TIMEOUT
    ) -> dict[str, Any]:
        assert self._nc is not None
        body = envelope.encode({"Type": kind, "Payload": payload})
        reply = await self._nc.request(subjects.control(node.node_id), body, timeout=timeout)
        return envelope.decode(reply.data)

    async def _handshake(self, node: SimNode) -> bool:
        request = messages.HandshakeRequest(
            node_info=node.info(),
            start_time=node.started,
            epoch=node.epoch,
            orchestrator_epoch=node.orchestrator_epoch,
            last_orchestrator_seq_num=node.applied,
        )
        try:
            reply = messages.HandshakeResponse.model_validate(await self._request(node, "Handshake", request.to_wire()))
        except (NatsTimeoutError, NoRespondersError, ConnectionClosedError, envelope.EnvelopeError) as exc:
            log.debug("handshake of %s failed: %s", node.node_id, type(exc).__name__)
            return False
        if not reply.accepted:
            log.error("the orchestrator refused %s: %s", node.node_id, reply.reason)
            return False
        if reply.orchestrator_epoch != node.orchestrator_epoch:
            node.orchestrator_epoch, node.applied = reply.orchestrator_epoch, 0
        self._receiver.reset(node.node_id, node.applied, reply.orchestrator_epoch)
        assert node.sender is not None
        node.sender.start(reply.last_compute_seq_num)
        return True

    async def _join(self, node: SimNode, retry: float) -> None:
        """Handshake until the orchestrator accepts the node."""
        while True:
            if await self._handshake(node):
                return
            await asyncio.sleep(retry)

    async def _heartbeats(self, node: SimNode) -> None:
        """Every interval, from a random phase (a fleet's nodes started at different times); a new handshake when
        the orchestrator asks for one or stops answering."""
        await asyncio.sleep(random.uniform(0, self._heartbeat))
        missed = 0
        timeout = min(REQUEST_TIMEOUT, max(1.0, 2 * self._heartbeat))
        while True:
            request = messages.HeartbeatRequest(
                node_id=node.node_id,
                available_capacity=CAPACITY,
                last_orchestrator_seq_num=node.applied,
            )
            try:
                reply = messages.HeartbeatResponse.model_validate(
                    await self._request(node, "Heartbeat", request.to_wire(), timeout)
                )
                self.heartbeats += 1
                missed = 0
                lost = reply.handshake_required
            except (NatsTimeoutError, NoRespondersError, ConnectionClosedError, envelope.EnvelopeError):
                missed += 1
                lost = missed >= MISSED_HEARTBEATS_BEFORE_RECONNECT
            if lost:
                await self._join(node, retry=1.0)
                missed = 0
            await asyncio.sleep(self._heartbeat)

    # ---- the outbox the stream senders read (transport.stream.Outbox)
    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        node = self._nodes[peer]
        rows: list[tuple[int, str]] = []
        size = 0
        seq = after_seq + 1
        while seq in node.outbox and len(rows) < limit and (not rows or size < max_bytes):
            rows.append((seq, node.outbox[seq]))
            size += len(node.outbox[seq])
            seq += 1
        return rows

    async def acknowledge(self, peer: str, seq: int) -> None:
        node = self._nodes[peer]
        for number in [n for n in node.outbox if n <= seq]:
            del node.outbox[number]

    # ---- the orchestrator's messages
    async def _on_stream_batch(self, msg: Msg) -> None:
        node_id = subjects.node_of(msg.subject)
        if node_id in self._nodes:  # another process's node otherwise: it answers for itself
            await self._receiver.on_request(node_id, msg)

    async def _transact(self, fn: Callable[[SimTx], int]) -> int:
        tx = SimTx(self._conn, self._nodes)
        result = fn(tx)
        self._after_commit(tx.effects)
        return result

    def _after_commit(self, effects: SimEffects) -> None:
        by_node: dict[str, list[tuple[int, str]]] = {}
        for node_id, seq, text in effects.outbox:
            by_node.setdefault(node_id, []).append((seq, text))
        for node_id, committed in by_node.items():
            sender = self._nodes[node_id].sender
            if sender is not None:
                sender.notify(committed)
        if effects.to_run:
            asyncio.get_running_loop().call_soon(self._run, effects.to_run)

    def _run(self, executions: list[tuple[str, str]]) -> None:
        """Noop work: each execution reports running, then completed, as a real node's runner does (one
        transaction each)."""
        for step in (ExecutionStateType.RUNNING, ExecutionStateType.COMPLETED):
            tx = SimTx(self._conn, self._nodes)
            for node_id, execution_id in executions:
                node = self._nodes[node_id]
                state, job_id = node.executions.get(execution_id, (ExecutionStateType.CANCELLED, ""))
                if state not in (ExecutionStateType.BID_ACCEPTED, ExecutionStateType.RUNNING):
                    continue
                node.executions[execution_id] = (step, job_id)
                if step == ExecutionStateType.RUNNING:
                    tx.report(node, messages.ExecutionProgress(execution_id=execution_id, job_id=job_id, state=step))
                else:
                    self.completed += 1
                    tx.report(node, messages.RunResult(execution_id=execution_id, job_id=job_id))
            self._after_commit(tx.effects)

    def _handle(self, tx: SimTx, peer: str, body: dict[str, Any]) -> None:
        """As compute/handler.py: bids, bid decisions and cancellations, idempotent by execution ID."""
        node = tx.nodes[peer]
        message = messages.unwrap(body)
        if isinstance(message, messages.AskForBid):
            execution = message.execution
            if execution.id in node.executions:
                return
            if message.wait_for_approval:
                node.executions[execution.id] = (ExecutionStateType.ASK_FOR_BID_ACCEPTED, execution.job_id)
                tx.report(node, messages.BidResult(execution_id=execution.id, job_id=execution.job_id, accepted=True))
            else:
                node.executions[execution.id] = (ExecutionStateType.BID_ACCEPTED, execution.job_id)
                tx.effects.to_run.append((peer, execution.id))
        elif isinstance(message, messages.BidAccepted):
            state, job_id = node.executions.get(message.execution_id, (ExecutionStateType.CANCELLED, ""))
            if state == ExecutionStateType.ASK_FOR_BID_ACCEPTED:
                node.executions[message.execution_id] = (ExecutionStateType.BID_ACCEPTED, job_id)
                tx.effects.to_run.append((peer, message.execution_id))
        elif isinstance(message, messages.BidRejected | messages.CancelExecution):
            state, job_id = node.executions.get(message.execution_id, (ExecutionStateType.CANCELLED, ""))
            if state not in (ExecutionStateType.COMPLETED, ExecutionStateType.CANCELLED):
                node.executions[message.execution_id] = (ExecutionStateType.CANCELLED, job_id)

    async def _load_applied(self, peer: str) -> tuple[int, str]:
        node = self._nodes[peer]
        return node.applied, node.orchestrator_epoch

    @staticmethod
    def _record_applied(tx: SimTx, peer: str, seq: int) -> None:
        tx.nodes[peer].applied = seq


# ---- a simulator in its own process, for the bench


class SimProcess:
    """``python -m bench.simnodes`` as a child process, so that its CPU is not the measuring process's."""

    def __init__(self, url: str, count: int, log_file: Path, *, heartbeat: float = 15.0, prefix: str = "sim") -> None:
        """``log_file``: the simulator's log (its warnings and errors)."""
        self.count = count
        self.log_file = log_file
        command = [sys.executable, "-m", "bench.simnodes", "--orchestrator", url, "--count", str(count)]
        command += ["--heartbeat", str(heartbeat), "--prefix", prefix]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))}
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, start_new_session=True
            )
        self.completed = 0

    def wait_ready(self, timeout: float = 300.0) -> SimProcess:
        line = _read_line(self.process, timeout, self.log_file)
        if line.strip() != f"ready {self.count}":
            self.stop()
            raise RuntimeError(f"simulated nodes did not start: {line!r}")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM: the nodes say they shut down; the number of executions they ran is kept in ``completed``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                out, _ = self.process.communicate(timeout=SHUTDOWN_TIMEOUT + 20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                out, _ = self.process.communicate()
            for line in out.splitlines():
                if line.startswith("completed "):
                    self.completed = int(line.split()[1])


_ROOT = str(Path(__file__).resolve().parent.parent)


def _read_line(process: subprocess.Popen[str], timeout: float, log_file: Path) -> str:
    """The process's next line of output, or an error with its stderr if it exits or the deadline passes."""
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([stdout], [], [], 0.1)[0]:
            line = stdout.readline()
            if line:
                return line
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"simulated nodes exited with {process.returncode}: {tail}")
    raise RuntimeError(f"simulated nodes not ready within {timeout:.0f}s")


async def _main(args: argparse.Namespace) -> None:
    sim = SimulatedNodes(args.orchestrator, args.count, heartbeat=args.heartbeat, prefix=args.prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    await sim.start()
    log.info("%d nodes connected in %.1fs", args.count, time.perf_counter() - started)
    print(f"ready {args.count}", flush=True)
    await stop.wait()
    await sim.stop()
    print(f"completed {sim.completed}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simnodes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orchestrator", required=True, help="the orchestrator's NATS URL")
    parser.add_argument("--count", type=int, default=1000, help="how many nodes")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="seconds between a node's heartbeats")
    parser.add_argument("--prefix", default="sim", help="node IDs are PREFIX-INDEX")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("bench.simnodes").setLevel(logging.INFO)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
