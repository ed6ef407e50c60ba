"""Reliable, ordered, replayable message streams over NATS request/reply.

Each direction of each orchestrator<->node pair is a stream of numbered messages kept in the sender's store (its
outbox). The sender sends them in order, in batches, as NATS requests; the receiver applies the messages it has not
applied yet, remembers the highest number applied, and replies with it. Unanswered batches are re-sent, so delivery
is at-least-once; the receiver's number filter and idempotent handlers make the effect exactly-once. After a
reconnect or restart, the handshake tells the sender where the receiver got to, and it resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.lib.sqlstore import Transaction
from bacalhau.lib.tasks import spawn
from bacalhau.transport import envelope

log = logging.getLogger(__name__)

BATCH_SIZE = 256
# A batch's size in bytes, at most: a single bigger message goes alone, up to the limit the NATS server announces.
# Batches of this size keep a slow link's request well inside its timeout and a backlog of big jobs out of memory.
BATCH_BYTES = 1024 * 1024
# Messages applied per transaction: a big batch is applied in several, so that it never holds the store's writer for
# long and other writes (a job submitted meanwhile) get their turn between them.
APPLY_CHUNK = 16
# Committed messages kept in memory for sending, and their bytes at most; beyond that the sender reads its outbox.
MAX_CACHED = 4096
MAX_CACHED_BYTES = 64 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
SLOWEST_LINK = 1024 * 1024  # bytes/s a request is given time for, on top of REQUEST_TIMEOUT
ACK_FLUSH_INTERVAL = 2.0
STOP_TIMEOUT = 5.0
MAX_HANDLER_ATTEMPTS = 5
# Waits before the next attempt, doubling from the first to the last: after a passing trouble (no receiver yet, a
# timeout, a reconnect), and after a failure someone has to act on (logged at error level each time).
RETRY_DELAYS = (0.05, 5.0)
FAILURE_DELAYS = (1.0, 60.0)

# The peer is away or the connection is down for a while: the batch is sent again later.
_TRANSIENT = (
    NatsTimeoutError,
    NoRespondersError,
    ConnectionClosedError,
    ConnectionReconnectingError,
    ConnectionDrainingError,
    OutboundBufferLimitError,
    StaleConnectionError,
    envelope.EnvelopeError,
)

TxT = TypeVar("TxT", bound=Transaction[Any])


class Outbox(Protocol):
    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        """Up to ``limit`` messages after ``after_seq``, in order, stopping at the first that makes ``max_bytes``
        or more (so at least one, if there is one)."""
        ...

    async def acknowledge(self, peer: str, seq: int) -> None: ...


class StreamSender:
    """Sends one peer's outbox, in order, until each message is acknowledged."""

    def __init__(self, nc: NATS, subject: str, peer: str, outbox: Outbox, epoch: str) -> None:
        self._nc = nc
        self._subject = subject
        self._peer = peer
        self._outbox = outbox
        self._epoch = epoch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.acked = 0
        self._flushed = 0
        self._cached: dict[int, str] = {}
        self._cached_bytes = 0
        # Whether the outbox may hold messages the cache does not: true until a read of the store finds nothing
        # unsent, and again whenever messages are committed that the cache did not take. While false, an idle
        # sender reads nothing and sleeps until notified: an orchestrator has a sender per node, and a thousand
        # of them polling the store would cost more than the nodes' heartbeats.
        self._stored = True
        self._uncached = 0  # times committed messages went to the store only (to notice one during a read)

    @property
    def _name(self) -> str:
        return self._peer or "the orchestrator"

    def start(self, acked: int) -> None:
        """(Re)start sending after ``acked``, the last number the peer says it applied."""
        self.acked = acked
        self._flushed = min(self._flushed, acked)
        self._stored = True  # the peer may want messages again that the cache no longer holds
        if self._task is None or self._task.done():
            self._task = spawn(self._run(), f"stream-to-{self._peer or 'orchestrator'}")
        self._wake.set()

    def notify(self, committed: Sequence[tuple[int, str]] = ()) -> None:
        """New messages were committed to the outbox; ``committed`` (number, body) lets the sender send them
        without reading them back from the store (without them, the sender reads the store)."""
        size = sum(len(text) for _, text in committed)
        fits = len(self._cached) + len(committed) <= MAX_CACHED and self._cached_bytes + size <= MAX_CACHED_BYTES
        if committed and fits:
            self._cached.update(committed)
            self._cached_bytes += size
        else:
            self._stored = True
            self._uncached += 1
        self._wake.set()

    async def _next_rows(self, budget: int) -> list[tuple[int, str]]:
        """The next messages after the acknowledged one, up to a batch's count and about ``budget`` bytes: from
        memory when they are all there, else the store.

        Commits are notified in order, so the cache's keys ascend: acknowledged ones are at its front, the newest
        at its back."""
        while self._cached and next(iter(self._cached)) <= self.acked:
            self._cached_bytes -= len(self._cached.pop(next(iter(self._cached))))
        rows: list[tuple[int, str]] = []
        seq, size = self.acked + 1, 0
        while seq in self._cached and len(rows) < BATCH_SIZE and size < budget:
            rows.append((seq, self._cached[seq]))
            size += len(self._cached[seq])
            seq += 1
        if rows and (len(rows) == BATCH_SIZE or size >= budget or seq > next(reversed(self._cached))):
            return rows
        if not rows and not self._stored and not self._cached:
            return []  # nothing committed since the store was last found sent
        uncached = self._uncached
        stored = await self._outbox.outbox(self._peer, self.acked, BATCH_SIZE, budget)
        if not stored and self._uncached == uncached:
            self._stored = False
        return stored

    async def stop(self) -> None:
        """Stop sending, within ``STOP_TIMEOUT`` whatever the sender was doing, and record the acknowledged
        position."""
        task, self._task = self._task, None  # the task ends at its next turn, even if it never sees the cancel
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("stream to %s: the sender did not stop within %.0fs", self._name, STOP_TIMEOUT)
        try:
            await self._flush_ack()
        except Exception as exc:  # the store is away, or no longer ours to write: the peer says where it is at its
            # next handshake, and messages it has are never applied twice
            log.info("stream to %s: could not record its acknowledged position at stop: %s", self._name, exc)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        """Send until :meth:`stop`. Nothing else ends the loop: not a failure (logged, then retried after a wait),
        nor a cancel that a library swallowed (``asyncio.wait_for``, which nats-py's request uses, returns the
        result when the cancel arrives with it on Python 3.11): the loop ends as soon as it is no longer this
        sender's task."""
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        troubles = 0  # consecutive attempts that failed
        last_flush = loop.time()
        while self._task is me:
            self._wake.clear()
            try:
                sent = await self._send_next()
                # The acknowledged position is recorded at most every ACK_FLUSH_INTERVAL (and at stop): a write per
                # delivered batch would be a store write per message when a thousand nodes each get one at a time.
                if loop.time() - last_flush >= ACK_FLUSH_INTERVAL:
                    last_flush = loop.time()
                    await self._flush_ack()
                if not sent:
                    with contextlib.suppress(TimeoutError):
                        # Idle with everything sent and recorded: nothing to do until notified or restarted.
                        due = max(0.0, last_flush + ACK_FLUSH_INTERVAL - loop.time())
                        async with asyncio.timeout(None if self._idle else due):
                            await self._wake.wait()
                troubles = 0
                continue
            except _TRANSIENT as exc:
                delay = _delay(RETRY_DELAYS, troubles)
                log.debug("stream to %s: %s; retrying in %.2fs", self._name, type(exc).__name__, delay)
            except _Refused as exc:
                delay = 1.0
                log.warning("stream to %s refused: %s", self._name, exc)
            except _TooBig as exc:
                delay = _delay(FAILURE_DELAYS, troubles)
                log.error("stream to %s: %s; retrying in %.0fs", self._name, exc, delay)
            except Exception:
                delay = _delay(FAILURE_DELAYS, troubles)
                log.exception("stream to %s failed; retrying in %.0fs", self._name, delay)
            troubles += 1
            await asyncio.sleep(delay)

    @property
    def _idle(self) -> bool:
        return not self._stored and not self._cached and self._flushed >= self.acked

    async def _send_next(self) -> bool:
        """Send the next batch and take in the peer's acknowledgement; False when there is nothing to send."""
        max_payload = self._nc.max_payload
        budget = min(BATCH_BYTES, max_payload)
        rows = await self._next_rows(budget)
        if not rows:
            return False
        request = batch_request(self._epoch, rows, budget)
        if len(request) > max_payload:
            raise _TooBig(
                f"message {rows[0][0]} is {len(request)} bytes with its envelope, more than the NATS server accepts "
                f"(max_payload {max_payload}); it and every message after it wait until max_payload is raised in "
                "that server's configuration"
            )
        timeout = REQUEST_TIMEOUT + len(request) / SLOWEST_LINK
        answer = envelope.decode((await self._nc.request(self._subject, request, timeout=timeout)).data)
        if answer.get("Error"):
            raise _Refused(str(answer["Error"]))
        self.acked = max(self.acked, int(answer.get("Ack", 0)))
        return True

    async def _flush_ack(self) -> None:
        """Record the acknowledged position, which lets the store drop delivered messages."""
        if self.acked > self._flushed:
            acked = self.acked
            await self._outbox.acknowledge(self._peer, acked)
            self._flushed = acked


class _TooBig(Exception):
    """A message that cannot fit in a NATS message even alone (on a server configured with a smaller limit)."""


class _Refused(Exception):
    """The receiver answered with an error (e.g. it needs a new handshake first)."""


def batch_request(epoch: str, rows: Sequence[tuple[int, str]], budget: int) -> bytes:
    """The request carrying the first of ``rows`` and as many after it as fit in ``budget`` bytes."""
    head = b'{"Epoch":' + json.dumps(epoch).encode() + b',"Messages":['
    tail = b"]}"
    items: list[bytes] = []
    size = envelope.HEADER_SIZE + len(head) + len(tail)
    for seq, text in rows:
        item = b'{"Seq":%d,"Message":%b}' % (seq, text.encode())
        size += len(item) + (1 if items else 0)
        if items and size > budget:
            break
        items.append(item)
    return envelope.encode(head + b",".join(items) + tail)


def _delay(bounds: tuple[float, float], attempt: int) -> float:
    first, last = bounds
    return min(first * (1 << min(attempt, 16)), last)


class StreamReceiver(Generic[TxT]):
    """Applies a peer's messages once each, in order, and answers with the highest number applied.

    A batch is applied in transactions of up to ``APPLY_CHUNK`` messages, each together with the new position, so a
    burst of messages costs a commit per chunk. Each message is a part of its transaction: one that fails is undone
    alone and retried with the next batch (skipped after ``MAX_HANDLER_ATTEMPTS``), and the messages before it still
    count as applied.
    """

    def __init__(
        self,
        transact: Callable[[Callable[[TxT], int]], Awaitable[int]],
        handle: Callable[[TxT, str, dict[str, Any]], None],
        load_applied: Callable[[str], Awaitable[tuple[int, str]]],
        record_applied: Callable[[TxT, str, int], None],
    ) -> None:
        """``load_applied`` reads a peer's (position, epoch) from the store; ``record_applied`` writes the position
        inside the batch's transaction."""
        self._transact = transact
        self._handle = handle
        self._load_applied = load_applied
        self._record_applied = record_applied
        self._positions: dict[str, tuple[int, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[tuple[str, int], int] = {}

    def reset(self, peer: str, applied: int, epoch: str) -> None:
        """The position agreed in a handshake (already stored): where the next batch must follow on from."""
        self._positions[peer] = (applied, epoch)

    def applied(self, peer: str) -> int:
        """The last message number applied from ``peer`` (0 before its first handshake or batch)."""
        return self._positions.get(peer, (0, ""))[0]

    async def on_request(self, peer: str, msg: Msg) -> None:
        try:
            batch = envelope.decode(msg.data)
        except (envelope.EnvelopeError, ValueError) as exc:
            log.warning("dropping malformed batch from %s: %s", peer, exc)
            return
        lock = self._locks.setdefault(peer, asyncio.Lock())
        async with lock:
            answer = await self._apply(peer, batch)
        with contextlib.suppress(ConnectionClosedError):
            await msg.respond(envelope.encode(answer))

    async def _apply(self, peer: str, batch: dict[str, Any]) -> dict[str, Any]:
        position = self._positions.get(peer)
        if position is None:
            position = self._positions[peer] = await self._load_applied(peer)
        applied, expected_epoch = position
        if expected_epoch and batch.get("Epoch") != expected_epoch:
            return {"Ack": 0, "Error": "handshake required: stream epoch changed"}
        fresh = [(int(item.get("Seq", 0)), item.get("Message") or {}) for item in batch.get("Messages", [])]
        fresh = [(seq, message) for seq, message in fresh if seq > applied]
        for first in range(0, len(fresh), APPLY_CHUNK):
            chunk = fresh[first : first + APPLY_CHUNK]
            applied = await self._transact(
                functools.partial(self._apply_in, peer=peer, applied=applied, messages=chunk)
            )
            if self._positions.get(peer) is not position:  # a handshake reset the stream meanwhile
                break
            position = self._positions[peer] = (applied, expected_epoch)
            if applied < chunk[-1][0]:  # a message failed: the rest waits for the next attempt, in order
                break
        return {"Ack": applied}

    def _apply_in(self, tx: TxT, peer: str, applied: int, messages: list[tuple[int, dict[str, Any]]]) -> int:
        start = applied
        for seq, message in messages:
            try:
                with tx.part():
                    self._handle(tx, peer, message)
            except Exception as exc:
                attempts = self._failures.get((peer, seq), 0) + 1
                self._failures[(peer, seq)] = attempts
                sender = peer or "the orchestrator"
                reason = f"{type(exc).__name__}: {exc}"
                if attempts < MAX_HANDLER_ATTEMPTS:
                    log.exception(
                        "message %d from %s failed (attempt %d: %s); will retry", seq, sender, attempts, reason
                    )
                    break
                log.exception("message %d from %s failed %d times (%s); skipping it", seq, sender, attempts, reason)
            self._failures.pop((peer, seq), None)
            applied = seq
        if applied > start:
            self._record_applied(tx, peer, applied)
        return applied
