"""The node manager: who the compute nodes are, whether they may get work, and whether they are alive.

Membership and node info are persisted; liveness (the last heartbeat and the capacity it reported) lives in memory
and is merged into every read. A node that misses heartbeats for the disconnect timeout is marked DISCONNECTED and
its listeners are told, so that the scheduler can fail over its work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bacalhau.errors import Conflict, NotFound, Unavailable
from bacalhau.lib.tasks import spawn
from bacalhau.models.node import Connection, ConnectionState, Membership, NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.store import JobStore, Tx

log = logging.getLogger(__name__)

NodeListener = Callable[[str], None]


@dataclass
class NodeManagerConfig:
    disconnect_timeout: float = 60.0
    manual_approval: bool = False


class NodeManager:
    def __init__(self, store: JobStore, config: NodeManagerConfig) -> None:
        self._store = store
        self._config = config
        self._nodes: dict[str, NodeState] = {}
        self._last_seen: dict[str, float] = {}
        self._sessions: set[str] = set()
        # Each node's revision: a new number whenever anything of its state changes (a heartbeat too), so that
        # readers can keep what they derived from a node (the node list's JSON) until it changes.
        self._revisions: dict[str, int] = {}
        self._next_revision = itertools.count(1)
        self._on_join: list[NodeListener] = []
        self._on_capacity: list[NodeListener] = []
        self._on_leave: list[NodeListener] = []
        self._task: asyncio.Task[None] | None = None
        # With orchestrators sharing the store, what heartbeats change (a node's free capacity) is saved too, so that
        # every orchestrator lists the nodes alike; a node's next save is queued once, however often it changes.
        self.save_heartbeats = False
        self._saving: set[str] = set()
        # With orchestrators sharing the store: which of the given orchestrators are still running (they have no
        # heartbeats; the store knows who holds a session), asked by the leader at each round of its watch.
        self.presence: Callable[[list[str]], Awaitable[set[str]]] | None = None
        self._self_id = ""

    def on_join(self, listener: NodeListener) -> None:
        self._on_join.append(listener)

    def on_capacity(self, listener: NodeListener) -> None:
        """Called when a node may have room for more work (it joined, was approved, or reported free capacity)."""
        self._on_capacity.append(listener)

    def on_leave(self, listener: NodeListener) -> None:
        self._on_leave.append(listener)

    async def start(self, self_info: NodeInfo) -> None:
        """Load known nodes and register this orchestrator."""
        self._self_id = self_info.node_id
        for node in await self._store.nodes():
            self._nodes[node.info.node_id] = node
            self._changed(node.info.node_id)
        existing = self._nodes.get(self_info.node_id)
        if existing is None or not existing.info.is_compute:
            me = NodeState(info=self_info, membership=Membership.APPROVED.value)
            self._mark_connected(me)
            self._nodes[self_info.node_id] = me
            await self._store.transact(lambda tx: tx.save_node(me))

    async def lead(self) -> None:
        """Take charge of the nodes' liveness (this orchestrator leads): from the store as it is now, nodes that were
        connected keep that status for one disconnect timeout, so that their running work survives a restart or a
        change of leader; they must handshake again within it."""
        loop_now = asyncio.get_running_loop().time()
        for node in await self._store.nodes():
            self._nodes[node.info.node_id] = node
            self._changed(node.info.node_id)
            if node.connection == Connection.CONNECTED.value and node.info.is_compute:
                self._last_seen[node.info.node_id] = loop_now
        self._task = spawn(self._watch_heartbeats(), "node-heartbeat-watch")

    async def follow(self) -> None:
        """Leave the nodes' liveness to the orchestrator that leads: stop watching heartbeats, forget sessions."""
        await self.stop()
        self._sessions.clear()
        self._last_seen.clear()

    async def refresh(self, node_ids: list[str] | None, *, leading: bool) -> None:
        """Read nodes another orchestrator changed from the store (all of them for None). A follower takes them as
        stored; the leader keeps its own view of liveness and takes what others change: approval and deletion."""
        stored_nodes: dict[str, NodeState | None]
        if node_ids is None:
            stored_nodes = {node.info.node_id: node for node in await self._store.nodes()}
            node_ids = sorted(stored_nodes.keys() | self._nodes.keys())
        else:
            stored_nodes = {node_id: await self._store.node(node_id) for node_id in node_ids}
        for node_id in node_ids:
            stored, known = stored_nodes.get(node_id), self._nodes.get(node_id)
            if stored is None:
                if known is not None:
                    self._forget(node_id)
                    if leading:
                        self._emit(self._on_leave, node_id)
            elif not leading or known is None:
                self._nodes[node_id] = stored
                self._changed(node_id)
            elif known.membership != stored.membership:
                known.membership = stored.membership
                self._changed(node_id)
                if stored.membership == Membership.APPROVED.value:
                    self._emit(self._on_join, node_id)
                    self._emit(self._on_capacity, node_id)
                elif stored.membership == Membership.REJECTED.value:
                    await self.disconnect(node_id, "node has been rejected")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- reads
    def get(self, node_id: str) -> NodeState | None:
        return self._nodes.get(node_id)

    def all(self) -> list[NodeState]:
        """The live node states, not copies (copying them cost more than scheduling itself): read them, do not
        change them, and do not keep them across an ``await``."""
        return list(self._nodes.values())

    def resolve(self, prefix: str) -> NodeState:
        """A node by ID or unique ID prefix."""
        if prefix in self._nodes:
            return self._nodes[prefix]
        matches = [node for node_id, node in self._nodes.items() if node_id.startswith(prefix)]
        if not matches:
            raise NotFound(f"node not found: {prefix}", component="NodeManager")
        if len(matches) > 1:
            raise Conflict(
                f"multiple nodes found for prefix {prefix}", code="MultipleNodesFound", component="NodeManager"
            )
        return matches[0]

    def revision(self, node_id: str) -> int:
        """A number that changes whenever the node's state does (0 for an unknown node); never reused."""
        return self._revisions.get(node_id, 0)

    def _changed(self, node_id: str) -> None:
        self._revisions[node_id] = next(self._next_revision)

    def has_session(self, node_id: str) -> bool:
        """The node completed a handshake with this orchestrator process and has not disconnected since."""
        return node_id in self._sessions

    # ---- the compute side talking
    async def handshake(self, info: NodeInfo) -> tuple[bool, str]:
        node = self._nodes.get(info.node_id)
        if node is not None and node.membership == Membership.REJECTED.value:
            return False, "node has been rejected"
        if node is None:
            membership = Membership.PENDING if self._config.manual_approval else Membership.APPROVED
            node = NodeState(info=info, membership=membership.value)
            log.info("node %s joined (%s)", info.node_id, membership.value)
        else:
            node.info = info
        self._mark_connected(node)
        self._nodes[info.node_id] = node
        self._sessions.add(info.node_id)
        await self._save(node)
        self._emit(self._on_join, info.node_id)
        self._emit(self._on_capacity, info.node_id)
        return True, ""

    def heartbeat(self, node_id: str, available: Resources, queued: Resources, running: int, enqueued: int) -> bool:
        """Record a heartbeat; False means the node must handshake first."""
        node = self._nodes.get(node_id)
        if node is None or node.connection != Connection.CONNECTED.value or node_id not in self._sessions:
            return False
        self._last_seen[node_id] = asyncio.get_running_loop().time()
        node.connection_state.last_heartbeat = now_ns()
        self._changed(node_id)
        compute = node.info.compute_node_info
        if compute is not None:
            changed = compute.available_capacity != available or compute.running_executions != running
            compute.available_capacity = available
            compute.queue_used_capacity = queued
            compute.running_executions = running
            compute.enqueued_executions = enqueued
            if changed:
                self._emit(self._on_capacity, node_id)
                if self.save_heartbeats and node_id not in self._saving:
                    self._saving.add(node_id)
                    spawn(self._save_later(node_id), f"save-node-{node_id}")
        return True

    async def _save_later(self, node_id: str) -> None:
        """Save the node as it is, and again while heartbeats changed it meanwhile (background: no client waits)."""
        try:
            while (node := self._nodes.get(node_id)) is not None:
                snapshot = node.model_copy(deep=True)
                save = functools.partial(Tx.save_node, node=snapshot, keep_membership=True)
                await self._store.transact(save, background=True)
                current = self._nodes.get(node_id)
                if current is None or current.info.compute_node_info == snapshot.info.compute_node_info:
                    return
        except Unavailable as exc:  # the store is away: the next change saves it
            log.debug("could not save node %s: %s", node_id, exc.message)
        finally:
            self._saving.discard(node_id)

    async def update_info(self, info: NodeInfo) -> None:
        node = self._nodes.get(info.node_id)
        if node is None:
            return
        node.info = info
        self._changed(info.node_id)
        await self._save(node)
        self._emit(self._on_capacity, info.node_id)

    async def disconnect(self, node_id: str, reason: str) -> None:
        self._sessions.discard(node_id)
        node = self._nodes.get(node_id)
        if node is None or node.connection == Connection.DISCONNECTED.value:
            return
        log.warning("node %s disconnected: %s", node_id, reason)
        node.connection = Connection.DISCONNECTED.value
        node.connection_state.status = Connection.DISCONNECTED.value
        node.connection_state.disconnected_since = now_ns()
        node.connection_state.last_error = reason
        self._changed(node_id)
        self._last_seen.pop(node_id, None)
        await self._save(node)
        self._emit(self._on_leave, node_id)

    # ---- operator actions
    async def approve(self, node_id: str) -> None:
        node = self.resolve(node_id)
        if node.membership == Membership.APPROVED.value:
            raise Conflict(
                f"node {node.info.node_id} already approved", code="ConflictNodeState", component="NodeManager"
            )
        await self._set_membership(node, Membership.APPROVED)
        self._emit(self._on_join, node.info.node_id)
        self._emit(self._on_capacity, node.info.node_id)

    async def reject(self, node_id: str) -> None:
        node = self.resolve(node_id)
        if node.membership == Membership.REJECTED.value:
            raise Conflict(
                f"node {node.info.node_id} already rejected", code="ConflictNodeState", component="NodeManager"
            )
        await self._set_membership(node, Membership.REJECTED)
        await self.disconnect(node.info.node_id, "node has been rejected")

    async def delete(self, node_id: str) -> None:
        node = self.resolve(node_id)
        self._forget(node.info.node_id)
        await self._store.transact(lambda tx: tx.delete_node(node.info.node_id))
        self._emit(self._on_leave, node.info.node_id)

    def _forget(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)
        self._revisions.pop(node_id, None)
        self._last_seen.pop(node_id, None)
        self._sessions.discard(node_id)

    async def _set_membership(self, node: NodeState, membership: Membership) -> None:
        node.membership = membership.value
        self._changed(node.info.node_id)
        await self._save(node, keep_membership=False)

    # ---- internals
    def _mark_connected(self, node: NodeState) -> None:
        now = now_ns()
        node.connection = Connection.CONNECTED.value
        node.connection_state = ConnectionState(
            status=Connection.CONNECTED.value,
            last_heartbeat=now,
            connected_since=now,
            disconnected_since=node.connection_state.disconnected_since,
        )
        self._changed(node.info.node_id)
        with contextlib.suppress(RuntimeError):
            self._last_seen[node.info.node_id] = asyncio.get_running_loop().time()

    async def _watch_heartbeats(self) -> None:
        timeout = self._config.disconnect_timeout
        interval = min(max(timeout / 3, 0.2), 30.0)
        while True:
            await asyncio.sleep(interval)
            now = asyncio.get_running_loop().time()
            for node_id, seen in list(self._last_seen.items()):
                node = self._nodes.get(node_id)
                if node is None or not node.info.is_compute:
                    continue
                if now - seen > timeout:
                    await self.disconnect(node_id, "heartbeat timeout")
            if self.presence is not None:
                await self._check_orchestrators(self.presence)

    async def _check_orchestrators(self, presence: Callable[[list[str]], Awaitable[set[str]]]) -> None:
        """Mark the other orchestrators as the store sees them: gone (their session ended) or back."""
        others = [
            node_id for node_id, node in self._nodes.items() if not node.info.is_compute and node_id != self._self_id
        ]
        try:
            alive = await presence(others) if others else set()
        except Unavailable:
            return
        for node_id in others:
            node = self._nodes.get(node_id)
            if node is None:
                continue
            connected = node.connection == Connection.CONNECTED.value
            if connected and node_id not in alive:
                await self.disconnect(node_id, "the orchestrator's session with the store ended")
            elif not connected and node_id in alive:
                self._mark_connected(node)
                await self._save(node)

    async def _save(self, node: NodeState, *, keep_membership: bool = True) -> None:
        """Save the node as it is now (see :meth:`Tx.save_node` for ``keep_membership``)."""
        snapshot = node.model_copy(deep=True)
        await self._store.transact(lambda tx: tx.save_node(snapshot, keep_membership=keep_membership))

    @staticmethod
    def _emit(listeners: list[NodeListener], node_id: str) -> None:
        for listener in listeners:
            listener(node_id)
