"""The compute node's connection to its orchestrator: NATS, handshake, heartbeats and both message streams.

The node keeps working while disconnected: its reports wait in its outbox and are sent, in order, once a new
handshake tells it where the orchestrator got to.

``Compute.Orchestrators`` may name several servers of a cluster of orchestrators (``Orchestrator.Cluster``), and the
servers tell the client of the others (nats-py's discovered servers): when the server it is on goes, the client
reconnects to another, its subscriptions carried over, and the node handshakes again at once, since the orchestrator
that now answers may be another one, which must tell it where to resume its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError

from bacalhau.compute.store import ComputeEffects, ComputeTx, ExecutionStore
from bacalhau.lib.tasks import spawn
from bacalhau.models.node import NodeInfo
from bacalhau.models.timefmt import now_ns
from bacalhau.transport import envelope, messages, subjects
from bacalhau.transport.stream import StreamReceiver, StreamSender
from bacalhau.transport.tls import ClientTls

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
MISSED_HEARTBEATS_BEFORE_RECONNECT = 3


@dataclass
class ConnectionConfig:
    orchestrators: list[str]
    heartbeat_interval: float = 15.0
    token: str = ""
    tls: ClientTls = field(default_factory=ClientTls)


class OrchestratorConnection:
    def __init__(
        self,
        config: ConnectionConfig,
        store: ExecutionStore,
        node_info: Callable[[], NodeInfo],
        heartbeat: Callable[[], messages.HeartbeatRequest],
        handle: Callable[[ComputeTx, str, dict[str, Any]], None],
        on_link_key: Callable[[str], None],
        services: dict[str, Callable[[Msg], Awaitable[None]]] | None = None,
    ) -> None:
        """``on_link_key``: takes the key of each accepted handshake's reply, which links to this node's results and
        logs are checked with. ``services``: more subjects this node answers on (e.g. log requests), by subject."""
        self._config = config
        self._on_link_key = on_link_key
        self._services = services or {}
        self._store = store
        self._node_info = node_info
        self._heartbeat_request = heartbeat
        self._receiver: StreamReceiver[ComputeTx] = StreamReceiver(
            store.transact, handle, self._load_applied, lambda tx, _peer, seq: store.record_applied(tx, seq)
        )
        self._nc: NATS | None = None
        self._sender: StreamSender | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._reconnected = asyncio.Event()  # set by nats-py's reconnection: handshake again
        self._started = now_ns()
        self._last_refusal = -1e9
        store.on_commit(self._on_commit)

    def _on_commit(self, effects: ComputeEffects) -> None:
        if effects.outbox and self._sender is not None:
            self._sender.notify(effects.outbox)

    @property
    def node_id(self) -> str:
        return self._node_info().node_id

    @property
    def nats(self) -> NATS | None:
        return self._nc

    def stream_position(self) -> dict[str, Any]:
        """The stream to the orchestrator as its sender knows it (for ``/agent/debug``)."""
        sender = self._sender
        return {"Acked": sender.acked if sender else 0, "Sending": bool(sender and sender.running)}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self._connected.is_set()

    def start(self) -> None:
        self._task = spawn(self._run(), "orchestrator-connection")

    async def stop(self) -> None:
        if self._nc is not None and self._connected.is_set():
            with contextlib.suppress(Exception):
                notice = messages.ShutdownNotice(node_id=self.node_id)
                await self._request("Shutdown", notice.to_wire(), timeout=2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            await self._sender.stop()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _run(self) -> None:
        self._nc = await self._connect()
        node_id = self.node_id
        await self._nc.subscribe(subjects.to_compute(node_id), cb=self._on_stream_batch)
        for subject, callback in self._services.items():
            await self._nc.subscribe(subject, cb=callback)
        self._sender = StreamSender(self._nc, subjects.to_orchestrator(node_id), "", self._store, self._store.epoch)
        backoff = 0.2
        while True:
            if not await self._handshake():
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.2
            await self._heartbeat_until_lost()
            self._connected.clear()

    async def _on_reconnected(self) -> None:
        nc = self._nc
        where = _without_credentials(nc.connected_url.geturl()) if nc is not None and nc.connected_url else "?"
        log.info("reconnected to NATS at %s; handshaking with the orchestrator again", where)
        self._reconnected.set()

    async def _on_nats_error(self, error: Exception) -> None:
        refusal = self._refusal(error)
        if refusal is None:
            log.debug("NATS: %s", error)
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_refusal > 30:
            self._last_refusal = now
            log.error("%s; retrying (%s)", refusal, self._orchestrators)

    def _refusal(self, error: Exception) -> str | None:
        """What a connection error means when it is the orchestrator refusing this node, and what to set; None for
        anything else (an orchestrator not there yet, a connection lost)."""
        if "authorization" in str(error).lower():
            return (
                f"the orchestrator refused this node ({error}): set Compute.Auth.Token to the orchestrator's "
                "Orchestrator.Auth.Token"
            )
        if isinstance(error, ssl.SSLCertVerificationError):
            return (
                f"the orchestrator's TLS certificate is not trusted ({error.verify_message}): set Compute.TLS.CACert "
                "to the CA that signed it, and connect by a name the certificate was made for"
            )
        if isinstance(error, ssl.SSLError) and "ALERT" in (error.reason or ""):
            return (
                f"the orchestrator refused this node's TLS connection ({error.reason}): if it requires client "
                "certificates, set Compute.TLS.ClientCert and Compute.TLS.ClientKey to one signed by its CA"
            )
        if isinstance(error, ssl.SSLError) and self._config.tls.first:
            return (
                f"the orchestrator does not offer TLS ({error.reason}), which this node requires "
                "(Compute.TLS.RequireTLS)"
            )
        if isinstance(error, ConnectionResetError) and self._config.tls.context and not self._config.tls.certificate:
            return (
                f"the orchestrator closed the connection as it was set up ({error}): if it requires client "
                "certificates (Orchestrator.TLS.RequireClientCert), set Compute.TLS.ClientCert and ClientKey"
            )
        return None

    @property
    def _orchestrators(self) -> str:
        """The orchestrators' URLs for a log line, without a token written into one (``nats://<token>@host``)."""
        return ", ".join(_without_credentials(url) for url in self._config.orchestrators)

    async def _on_stream_batch(self, msg: Msg) -> None:
        await self._receiver.on_request("", msg)

    async def _connect(self) -> NATS:
        backoff = 0.2
        while True:
            try:
                return await nats.connect(
                    servers=self._config.orchestrators,
                    token=self._config.token or None,
                    name=f"bacalhau-compute-{self.node_id}",
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    connect_timeout=3,
                    error_cb=self._on_nats_error,
                    reconnected_cb=self._on_reconnected,
                    **self._config.tls.options(),
                )
            except (NatsError, OSError, TimeoutError) as exc:
                if self._refusal(exc) is not None:
                    await self._on_nats_error(exc)
                else:
                    log.warning("cannot reach orchestrator at %s (%s); retrying", self._orchestrators, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _handshake(self) -> bool:
        self._reconnected.clear()  # this handshake goes over the connection as it is now
        applied, orchestrator_epoch = await self._store.applied()
        request = messages.HandshakeRequest(
            node_info=self._node_info(),
            start_time=self._started,
            epoch=self._store.epoch,
            orchestrator_epoch=orchestrator_epoch,
            last_orchestrator_seq_num=applied,
        )
        try:
            reply = messages.HandshakeResponse.model_validate(await self._request("Handshake", request.to_wire()))
        except (NatsTimeoutError, NoRespondersError, ConnectionClosedError, envelope.EnvelopeError) as exc:
            log.debug("handshake failed: %s", type(exc).__name__)
            return False
        if not reply.accepted:
            log.error("the orchestrator refused this node: %s", reply.reason)
            return False
        self._on_link_key(reply.link_key)
        if reply.orchestrator_epoch != orchestrator_epoch:
            await self._store.set_orchestrator_epoch(reply.orchestrator_epoch)
            applied = 0
        self._receiver.reset("", applied, reply.orchestrator_epoch)
        assert self._sender is not None
        self._sender.start(reply.last_compute_seq_num)
        self._connected.set()
        log.info("connected to the orchestrator as node %s", self.node_id)
        return True

    async def _heartbeat_until_lost(self) -> None:
        missed = 0
        interval = self._config.heartbeat_interval
        timeout = min(REQUEST_TIMEOUT, max(1.0, 2 * interval))
        while missed < MISSED_HEARTBEATS_BEFORE_RECONNECT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconnected.wait(), interval)
            if self._reconnected.is_set():
                return
            try:
                reply = messages.HeartbeatResponse.model_validate(
                    await self._request("Heartbeat", self._heartbeat_request().to_wire(), timeout=timeout)
                )
            except (NatsTimeoutError, NoRespondersError, ConnectionClosedError, envelope.EnvelopeError):
                missed += 1
                continue
            if reply.handshake_required:
                log.info("the orchestrator asked for a new handshake")
                return
            missed = 0
        log.warning("lost the orchestrator after %d missed heartbeats; reconnecting", missed)

    async def _request(self, kind: str, payload: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        assert self._nc is not None
        body = envelope.encode({"Type": kind, "Payload": payload})
        reply = await self._nc.request(subjects.control(self.node_id), body, timeout=timeout)
        return envelope.decode(reply.data)

    async def _load_applied(self, _peer: str) -> tuple[int, str]:
        return await self._store.applied()


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
