"""The orchestrator's end of the NATS protocol: control requests from nodes, and both message streams per node."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError

from bacalhau.lib.links import LinkSigner
from bacalhau.lib.tasks import spawn
from bacalhau.orchestrator.compute_handler import ComputeMessageHandler
from bacalhau.orchestrator.nodes import NodeManager
from bacalhau.orchestrator.store import CommitEffects, JobStore, Tx
from bacalhau.transport import envelope, messages, subjects
from bacalhau.transport.stream import StreamReceiver, StreamSender

log = logging.getLogger(__name__)


class ComputeEndpoint:
    def __init__(
        self, nc: NATS, store: JobStore, nodes: NodeManager, handler: ComputeMessageHandler, links: LinkSigner
    ) -> None:
        """``links``: gives each node that joins the key its results and logs links are signed with."""
        self._nc = nc
        self._links = links
        self._store = store
        self._nodes = nodes
        self._handler = handler
        self._senders: dict[str, StreamSender] = {}
        self._subscriptions: list[Subscription] = []
        self._receiver: StreamReceiver[Tx] = StreamReceiver(
            functools.partial(store.transact, background=True), handler.handle, self._load_applied, self._record_applied
        )

    async def start(self) -> None:
        self._subscriptions = [
            await self._nc.subscribe(subjects.CONTROL_ALL, cb=self._on_control),
            await self._nc.subscribe(subjects.TO_ORCHESTRATOR_ALL, cb=self._on_messages),
        ]

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        await asyncio.gather(*(sender.stop() for sender in self._senders.values()))
        self._senders.clear()

    def senders(self) -> dict[str, tuple[int, bool]]:
        """Each node's stream as its sender knows it now: the last message the node acknowledged, and whether the
        sender runs (the store's acknowledged position is written only now and then)."""
        return {node_id: (sender.acked, sender.running) for node_id, sender in self._senders.items()}

    # ---- outbound (told by the orchestrator, which owns the listeners: an endpoint lasts one term of leadership)
    def on_commit(self, effects: CommitEffects) -> None:
        by_node: dict[str, list[tuple[int, str]]] = {}
        for node_id, seq, body in effects.outbox:
            by_node.setdefault(node_id, []).append((seq, body))
        for node_id, committed in by_node.items():
            sender = self._senders.get(node_id)
            if sender is not None:
                sender.notify(committed)

    def send_queued(self, node_ids: list[str] | None) -> None:
        """Another orchestrator queued messages for these nodes (for None, perhaps any): read and send them."""
        for node_id in self._senders if node_ids is None else node_ids:
            sender = self._senders.get(node_id)
            if sender is not None:
                sender.notify()

    def on_node_left(self, node_id: str) -> None:
        sender = self._senders.pop(node_id, None)
        if sender is not None:
            spawn(sender.stop(), f"stop-stream-to-{node_id}")

    # ---- inbound stream
    async def _on_messages(self, msg: Msg) -> None:
        node_id = subjects.node_of(msg.subject)
        if not self._nodes.has_session(node_id):
            await _reply(msg, {"Ack": 0, "Error": "handshake required"})
            return
        await self._receiver.on_request(node_id, msg)

    async def _load_applied(self, node_id: str) -> tuple[int, str]:
        stream = await self._store.stream(node_id)
        return stream.applied_seq, stream.peer_epoch

    @staticmethod
    def _record_applied(tx: Tx, node_id: str, seq: int) -> None:
        stream = tx.stream(node_id)
        stream.applied_seq = max(stream.applied_seq, seq)
        tx.save_stream(stream)

    # ---- control plane
    async def _on_control(self, msg: Msg) -> None:
        try:
            request = envelope.decode(msg.data)
            kind, payload = request.get("Type"), request.get("Payload") or {}
            if kind == "Handshake":
                reply: dict[str, Any] = await self._handshake(messages.HandshakeRequest.model_validate(payload))
            elif kind == "Heartbeat":
                reply = self._heartbeat(messages.HeartbeatRequest.model_validate(payload))
            elif kind == "UpdateNodeInfo":
                update = messages.UpdateNodeInfoRequest.model_validate(payload)
                await self._nodes.update_info(update.node_info)
                reply = messages.ControlReply().to_wire()
            elif kind == "Shutdown":
                notice = messages.ShutdownNotice.model_validate(payload)
                await self._nodes.disconnect(notice.node_id, "node shut down")
                reply = messages.ControlReply().to_wire()
            else:
                reply = messages.ControlReply(ok=False, error=f"unknown request {kind!r}").to_wire()
        except Exception as exc:
            log.exception("control request failed")
            reply = messages.ControlReply(ok=False, error=str(exc)).to_wire()
        await _reply(msg, reply)

    async def _handshake(self, request: messages.HandshakeRequest) -> dict[str, Any]:
        node_id = request.node_info.node_id
        accepted, reason = await self._nodes.handshake(request.node_info)
        if not accepted:
            log.warning("refused handshake from node %s: %s", node_id, reason)
            return messages.HandshakeResponse(accepted=False, reason=reason).to_wire()

        def reset_if_new_epoch(tx: Tx) -> int:
            stream = tx.stream(node_id)
            if stream.peer_epoch != request.epoch:
                stream.applied_seq = 0
                stream.peer_epoch = request.epoch
                tx.save_stream(stream)
            return stream.applied_seq

        applied = await self._store.transact(reset_if_new_epoch)
        self._receiver.reset(node_id, applied, request.epoch)
        resume_after = request.last_orchestrator_seq_num if request.orchestrator_epoch == self._store.epoch else 0
        sender = self._senders.get(node_id)
        if sender is None:
            sender = StreamSender(self._nc, subjects.to_compute(node_id), node_id, self._store, self._store.epoch)
            self._senders[node_id] = sender
        sender.start(resume_after)
        log.info("node %s connected (resuming its stream after message %d)", node_id, resume_after)
        return messages.HandshakeResponse(
            accepted=True,
            orchestrator_epoch=self._store.epoch,
            last_compute_seq_num=applied,
            link_key=self._links.handshake_key(node_id),
        ).to_wire()

    def _heartbeat(self, request: messages.HeartbeatRequest) -> dict[str, Any]:
        alive = self._nodes.heartbeat(
            request.node_id,
            request.available_capacity,
            request.queue_used_capacity,
            request.running_executions,
            request.enqueued_executions,
        )
        applied = self._receiver.applied(request.node_id)
        return messages.HeartbeatResponse(handshake_required=not alive, last_compute_seq_num=applied).to_wire()


async def _reply(msg: Msg, body: dict[str, Any]) -> None:
    if not msg.reply:
        return
    with contextlib.suppress(ConnectionClosedError):
        await msg.respond(envelope.encode(body))
