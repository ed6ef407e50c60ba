"""Reliable streams over a real NATS server: in order, once each, resumed after reconnects, duplicates ignored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from bacalhau.lib.sqlite import Database
from bacalhau.lib.sqlstore import Transaction
from bacalhau.transport import envelope, stream
from bacalhau.transport.natsserver import MAX_PAYLOAD, EmbeddedNatsServer
from bacalhau.transport.stream import APPLY_CHUNK, BATCH_BYTES, STOP_TIMEOUT, StreamReceiver, StreamSender
from tests.conftest import eventually


class MemoryOutbox:
    """The sender's store, kept in memory for the test."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []
        self.acked = 0

    def add(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.rows.append((len(self.rows) + 1, json.dumps(body)))

    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        rows, size = [], 0
        for row in [row for row in self.rows if row[0] > after_seq][:limit]:
            rows.append(row)
            size += len(row[1])
            if size >= max_bytes:
                break
        return rows

    async def acknowledge(self, peer: str, seq: int) -> None:
        self.acked = max(self.acked, seq)


@dataclass
class NoEffects:
    pass


APPLIED_SCHEMA = """
CREATE TABLE IF NOT EXISTS handled (n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS position (peer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""


class Applied:
    """The receiver's side, in a real SQLite file: what it applied, and its persisted position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path, [APPLIED_SCHEMA], durable=False)
        self.epoch = "epoch-1"
        self.fail_once: set[int] = set()

    async def transact(self, fn: Callable[[Transaction[NoEffects]], int]) -> int:
        return await self.db.write(lambda conn: fn(Transaction(conn, NoEffects())))

    def handle(self, tx: Transaction[NoEffects], peer: str, body: dict[str, Any]) -> None:
        number = int(body["n"])
        tx.conn.execute("INSERT INTO handled (n) VALUES (?)", (number,))
        if number in self.fail_once:  # after a write, which must be undone with the failed message
            self.fail_once.discard(number)
            raise RuntimeError("transient failure")

    async def load(self, peer: str) -> tuple[int, str]:
        return await self.db.read(lambda conn: (self._position(conn, peer), self.epoch))

    @staticmethod
    def _position(conn: sqlite3.Connection, peer: str) -> int:
        row = conn.execute("SELECT seq FROM position WHERE peer = ?", (peer,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def record(tx: Transaction[NoEffects], peer: str, seq: int) -> None:
        tx.conn.execute("INSERT OR REPLACE INTO position (peer, seq) VALUES (?, ?)", (peer, seq))

    @property
    def handled(self) -> list[int]:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return [int(row[0]) for row in conn.execute("SELECT n FROM handled ORDER BY rowid")]


@pytest.fixture
async def applied(tmp_path: Path) -> AsyncIterator[Applied]:
    receiver_side = Applied(tmp_path / "applied.db")
    await receiver_side.db.open()
    yield receiver_side
    receiver_side.db.close()


@contextlib.asynccontextmanager
async def nats_server(
    config_dir: Path, *, port: int = 0, max_payload: int = MAX_PAYLOAD
) -> AsyncIterator[tuple[EmbeddedNatsServer, NATS]]:
    """A real nats-server and a client of it that reconnects quickly if the server goes away."""
    server = EmbeddedNatsServer("127.0.0.1", port, config_dir, max_payload=max_payload)
    await server.start()
    client = await nats.connect(server.client_url, reconnect_time_wait=0.1, max_reconnect_attempts=-1)
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


@pytest.fixture
async def nats_client(tmp_path: Path) -> AsyncIterator[NATS]:
    async with nats_server(tmp_path) as (_, client):
        yield client


async def serve_receiver(
    client: NATS, applied: Applied, subject: str = "stream.test", batches: list[tuple[int, int]] | None = None
) -> StreamReceiver:
    """A receiver on ``subject``; each batch it gets is noted in ``batches`` as (messages, bytes)."""
    receiver = StreamReceiver(applied.transact, applied.handle, applied.load, applied.record)

    async def on_batch(msg: Any) -> None:
        if batches is not None:
            batches.append((len(envelope.decode(msg.data)["Messages"]), len(msg.data)))
        await receiver.on_request("peer", msg)

    await client.subscribe(subject, cb=on_batch)
    return receiver


async def test_messages_arrive_in_order_exactly_once(nats_client: NATS, applied: Applied) -> None:
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    outbox.add(*({"n": i} for i in range(1, 301)))
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: len(applied.handled) == 300)
    outbox.add({"n": 301})
    sender.notify()
    await eventually(lambda: applied.handled[-1:] == [301])
    # The receiver applies a batch before its answer reaches the sender: wait for the answer, then stop, which
    # records the acknowledged position (a stop between the two would leave 301 to be sent again: at least once).
    await eventually(lambda: sender.acked == 301)
    await sender.stop()
    assert applied.handled == list(range(1, 302))
    assert outbox.acked == 301


async def test_a_sender_waits_for_a_receiver_and_resends(nats_client: NATS, applied: Applied) -> None:
    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2})
    sender = StreamSender(nats_client, "stream.late", "peer", outbox, "epoch-1")
    sender.start(0)  # no receiver yet: the sender keeps retrying (backing off), losing nothing
    await serve_receiver(nats_client, applied, "stream.late")
    await eventually(lambda: applied.handled == [1, 2])
    await sender.stop()


async def test_replayed_and_duplicated_batches_change_nothing_twice(nats_client: NATS, applied: Applied) -> None:
    await serve_receiver(nats_client, applied)
    batch = envelope.encode(
        {"Epoch": "epoch-1", "Messages": [{"Seq": 1, "Message": {"n": 1}}, {"Seq": 2, "Message": {"n": 2}}]}
    )
    for _ in range(3):
        reply = await nats_client.request("stream.test", batch, timeout=5)
        assert envelope.decode(reply.data) == {"Ack": 2}
    assert applied.handled == [1, 2]

    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2}, {"n": 3})
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)  # a replay from the start, as after a restart that lost the acknowledged position
    await eventually(lambda: applied.handled == [1, 2, 3])
    await sender.stop()


async def test_a_failing_handler_is_retried_before_the_stream_moves_on(nats_client: NATS, applied: Applied) -> None:
    applied.fail_once = {2}
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2}, {"n": 3})
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: applied.handled == [1, 2, 3])
    await sender.stop()


async def test_batches_from_another_epoch_are_refused(nats_client: NATS, applied: Applied) -> None:
    applied.epoch = "current"
    await serve_receiver(nats_client, applied)
    stale = envelope.encode({"Epoch": "old", "Messages": [{"Seq": 1, "Message": {"n": 1}}]})
    reply = envelope.decode((await nats_client.request("stream.test", stale, timeout=5)).data)
    assert reply["Ack"] == 0 and "handshake required" in reply["Error"]
    assert applied.handled == []


def test_envelopes_detect_corruption() -> None:
    raw = bytearray(envelope.encode({"Type": "x"}))
    raw[-2] ^= 0xFF
    with pytest.raises(envelope.EnvelopeError, match="checksum"):
        envelope.decode(bytes(raw))


async def test_committed_messages_are_sent_from_memory(nats_client: NATS, applied: Applied) -> None:
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()  # left empty: what arrives can only have come from what notify was given
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    sender.notify([(1, json.dumps({"n": 1})), (2, json.dumps({"n": 2}))])
    await eventually(lambda: applied.handled == [1, 2])
    await sender.stop()


async def test_a_gap_in_memory_is_filled_from_the_store(nats_client: NATS, applied: Applied) -> None:
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2}, {"n": 3})  # e.g. written before a restart: the sender never saw them committed
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    outbox.add({"n": 4})
    sender.notify([outbox.rows[-1]])
    await eventually(lambda: applied.handled == [1, 2, 3, 4])
    await sender.stop()


class CountingOutbox(MemoryOutbox):
    """Counts the sender's reads of its store."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        self.reads += 1
        return await super().outbox(peer, after_seq, limit, max_bytes)


async def test_an_idle_sender_reads_its_store_only_when_told(
    nats_client: NATS, applied: Applied, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An orchestrator has a sender per node: with a thousand nodes, idle senders polling the store would cost more
    than the nodes' heartbeats. Once the store is found sent, only a commit the cache did not take sends it back."""
    monkeypatch.setattr(stream, "ACK_FLUSH_INTERVAL", 0.02)  # without the fix, an idle sender read every 20 ms
    await serve_receiver(nats_client, applied)
    outbox = CountingOutbox()
    outbox.add({"n": 1})  # e.g. committed before a restart
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: applied.handled == [1] and outbox.acked == 1)
    await eventually(lambda: outbox.reads >= 2)  # the first read found 1, a later one found nothing after it
    reads = outbox.reads
    outbox.add({"n": 2})
    sender.notify([outbox.rows[-1]])  # committed and cached: sent from memory
    await eventually(lambda: applied.handled == [1, 2] and outbox.acked == 2)
    await asyncio.sleep(0.3)  # the absence of a poll: fifteen flush intervals
    assert outbox.reads == reads
    outbox.add({"n": 3})
    sender.notify()  # committed, not given: read from the store
    await eventually(lambda: applied.handled == [1, 2, 3])
    assert outbox.reads > reads
    await sender.stop()


async def test_a_big_batch_is_applied_in_chunks_and_a_failure_stops_it_in_order(
    nats_client: NATS, applied: Applied
) -> None:
    commits: list[int] = []
    transact = applied.transact

    async def counting(fn: Callable[[Transaction[NoEffects]], int]) -> int:
        commits.append(await transact(fn))
        return commits[-1]

    applied.transact = counting  # type: ignore[method-assign]
    applied.fail_once = {APPLY_CHUNK + 5}
    await serve_receiver(nats_client, applied)
    count = 3 * APPLY_CHUNK
    batch = {"Epoch": "epoch-1", "Messages": [{"Seq": n, "Message": {"n": n}} for n in range(1, count + 1)]}
    reply = await nats_client.request("stream.test", envelope.encode(batch), timeout=5)
    # the first chunk commits; the second stops before the failed message, which the third must not overtake
    assert envelope.decode(reply.data) == {"Ack": APPLY_CHUNK + 4}
    assert commits == [APPLY_CHUNK, APPLY_CHUNK + 4]
    reply = await nats_client.request("stream.test", envelope.encode(batch), timeout=5)
    assert envelope.decode(reply.data) == {"Ack": count}
    assert applied.handled == list(range(1, count + 1))


def padded(n: int, size: int) -> dict[str, Any]:
    """Message ``n``, about ``size`` bytes long as JSON."""
    return {"n": n, "pad": "x" * size}


async def test_a_message_bigger_than_a_batch_goes_alone(nats_client: NATS, applied: Applied) -> None:
    batches: list[tuple[int, int]] = []
    await serve_receiver(nats_client, applied, batches=batches)
    outbox = MemoryOutbox()
    outbox.add(*(padded(n, 1000) for n in (1, 2, 3)), padded(4, BATCH_BYTES + 500_000), *({"n": n} for n in (5, 6)))
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: len(applied.handled) == 6)
    await sender.stop()
    assert applied.handled == [1, 2, 3, 4, 5, 6]
    assert [count for count, _ in batches] == [3, 1, 2]


async def test_batches_fit_the_limit_the_server_announces(tmp_path: Path, applied: Applied) -> None:
    async with nats_server(tmp_path, max_payload=64 * 1024) as (_, client):
        batches: list[tuple[int, int]] = []
        await serve_receiver(client, applied, batches=batches)
        outbox = MemoryOutbox()
        outbox.add(*(padded(n, 10_000) for n in range(1, 31)), padded(31, 60_000))
        sender = StreamSender(client, "stream.test", "peer", outbox, "epoch-1")
        sender.start(0)
        await eventually(lambda: len(applied.handled) == 31)
        await sender.stop()
    assert applied.handled == list(range(1, 32))
    assert len(batches) > 5 and all(size <= 64 * 1024 for _, size in batches)


async def test_a_message_too_big_for_the_server_is_reported_and_sent_once_the_server_takes_it(
    tmp_path: Path, applied: Applied, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "bacalhau.transport.stream")
    async with nats_server(tmp_path / "small", max_payload=32 * 1024) as (small, client):
        await serve_receiver(client, applied)
        outbox = MemoryOutbox()
        outbox.add({"n": 1}, padded(2, 40_000), {"n": 3})
        sender = StreamSender(client, "stream.test", "peer", outbox, "epoch-1")
        sender.start(0)
        await eventually(lambda: "max_payload 32768" in caplog.text)
        assert applied.handled == [1] and sender.running
        assert "raised in that server's configuration" in caplog.text
        await small.stop()  # the same port, now with room for it: the client reconnects and learns the new limit
        async with nats_server(tmp_path / "big", port=small.port):
            await eventually(lambda: applied.handled == [1, 2, 3], timeout=10)
            await sender.stop()


class FlakyOutbox(MemoryOutbox):
    """An outbox whose first acknowledgement fails, as a store write can."""

    async def acknowledge(self, peer: str, seq: int) -> None:
        if not self.acked:
            self.acked = -1
            raise RuntimeError("disk I/O error")
        await super().acknowledge(peer, seq)


async def test_an_unexpected_failure_is_logged_and_the_sender_carries_on(
    nats_client: NATS, applied: Applied, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "bacalhau.transport.stream")
    await serve_receiver(nats_client, applied)
    outbox = FlakyOutbox()
    outbox.add({"n": 1}, {"n": 2})
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: outbox.acked == 2)
    assert sender.running
    outbox.add({"n": 3})
    sender.notify()
    await eventually(lambda: applied.handled == [1, 2, 3])
    await sender.stop()
    [failure] = caplog.records
    assert failure.exc_info is not None and "disk I/O error" in caplog.text


class SwallowingOutbox(MemoryOutbox):
    """An outbox whose first read returns its rows although the sender was cancelled meanwhile, as
    ``asyncio.wait_for`` (in nats-py's request) does on Python 3.11 when the result and the cancel arrive together."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()

    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        if not self.reading.is_set():
            self.reading.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)
        return await super().outbox(peer, after_seq, limit, max_bytes)


async def test_stop_ends_the_sender_even_when_its_cancel_is_swallowed(nats_client: NATS) -> None:
    outbox = SwallowingOutbox()
    outbox.add({"n": 1})
    sender = StreamSender(nats_client, "stream.nobody", "peer", outbox, "epoch-1")
    sender.start(0)
    await outbox.reading.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(sender.stop(), STOP_TIMEOUT + 5)
    assert loop.time() - started < STOP_TIMEOUT
    assert not sender.running
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "stream-to-peer"]


async def test_the_acknowledged_position_is_recorded_at_most_every_flush_interval(
    nats_client: NATS, applied: Applied, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store write per delivered batch would be one per message when many nodes each get one at a time: the
    position is recorded every ACK_FLUSH_INTERVAL, and at stop."""
    monkeypatch.setattr(stream, "ACK_FLUSH_INTERVAL", 60.0)
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    for n in (1, 2, 3):
        outbox.add({"n": n})
        sender.notify([outbox.rows[-1]])
        await eventually(lambda n=n: sender.acked == n)
    await asyncio.sleep(0.2)  # the absence of a write: a sender used to record each batch's right after it
    assert outbox.acked == 0
    await sender.stop()
    assert outbox.acked == 3
