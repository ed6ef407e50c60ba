"""Reliable streams over a real NATS server: in order, once each, resumed after reconnects, duplicates ignored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS

from bacalhau.transport import envelope
from bacalhau.transport.natsserver import EmbeddedNatsServer
from bacalhau.transport.stream import StreamReceiver, StreamSender


class MemoryOutbox:
    """The sender's store, kept in memory for the test."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []
        self.acked = 0

    def add(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.rows.append((len(self.rows) + 1, json.dumps(body)))

    async def outbox(self, peer: str, after_seq: int, limit: int) -> list[tuple[int, str]]:
        return [row for row in self.rows if row[0] > after_seq][:limit]

    async def acknowledge(self, peer: str, seq: int) -> None:
        self.acked = max(self.acked, seq)


class Applied:
    """The receiver's side: what it applied, and its persisted position."""

    def __init__(self, epoch: str = "epoch-1") -> None:
        self.handled: list[int] = []
        self.position = 0
        self.epoch = epoch
        self.fail_once: set[int] = set()

    async def handle(self, peer: str, body: dict[str, Any]) -> None:
        number = int(body["n"])
        if number in self.fail_once:
            self.fail_once.discard(number)
            raise RuntimeError("transient failure")
        self.handled.append(number)

    async def load(self, peer: str) -> tuple[int, str]:
        return self.position, self.epoch

    async def save(self, peer: str, seq: int) -> None:
        self.position = seq


@pytest.fixture
async def nats_client() -> AsyncIterator[NATS]:
    server = EmbeddedNatsServer("127.0.0.1", 0)
    await server.start()
    client = await nats.connect(server.client_url)
    yield client
    await client.close()
    await server.stop()


async def serve_receiver(client: NATS, applied: Applied, subject: str = "stream.test") -> StreamReceiver:
    receiver = StreamReceiver(applied.handle, applied.load, applied.save)

    async def on_batch(msg: Any) -> None:
        await receiver.on_request("peer", msg)

    await client.subscribe(subject, cb=on_batch)
    return receiver


async def eventually(condition: Any, timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds, failing at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for _ in iter(int, 1):
        if condition():
            return
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


async def test_messages_arrive_in_order_exactly_once(nats_client: NATS) -> None:
    applied = Applied()
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    outbox.add(*({"n": i} for i in range(1, 301)))
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: len(applied.handled) == 300)
    outbox.add({"n": 301})
    sender.notify()
    await eventually(lambda: applied.handled[-1:] == [301])
    await sender.stop()
    assert applied.handled == list(range(1, 302))
    assert outbox.acked == 301


async def test_a_sender_waits_for_a_receiver_and_resends(nats_client: NATS) -> None:
    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2})
    sender = StreamSender(nats_client, "stream.late", "peer", outbox, "epoch-1")
    sender.start(0)  # no receiver yet: the sender keeps retrying (backing off), losing nothing
    applied = Applied()
    await serve_receiver(nats_client, applied, "stream.late")
    await eventually(lambda: applied.handled == [1, 2])
    await sender.stop()


async def test_replayed_and_duplicated_batches_change_nothing_twice(nats_client: NATS) -> None:
    applied = Applied()
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


async def test_a_failing_handler_is_retried_before_the_stream_moves_on(nats_client: NATS) -> None:
    applied = Applied()
    applied.fail_once = {2}
    await serve_receiver(nats_client, applied)
    outbox = MemoryOutbox()
    outbox.add({"n": 1}, {"n": 2}, {"n": 3})
    sender = StreamSender(nats_client, "stream.test", "peer", outbox, "epoch-1")
    sender.start(0)
    await eventually(lambda: applied.handled == [1, 2, 3])
    await sender.stop()


async def test_batches_from_another_epoch_are_refused(nats_client: NATS) -> None:
    applied = Applied(epoch="current")
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
