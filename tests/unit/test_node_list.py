"""The node list keeps each node's JSON until the node changes: what it answers is always what encoding every node
afresh would give, after handshakes, heartbeats, disconnections and operator actions."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from bacalhau.api.render import encode_json
from bacalhau.api.routes.nodes import router
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.nodes import NodeManager, NodeManagerConfig
from bacalhau.orchestrator.store import JobStore
from tests.unit.test_scheduler import node

NODES = "/api/v1/orchestrator/nodes"


def fresh(manager: NodeManager) -> bytes:
    """The list's body as encoding every node anew writes it."""
    items = [n.to_wire() for n in sorted(manager.all(), key=lambda n: n.info.node_id)]
    return encode_json({"NextToken": "", "Nodes": items, "nodes": items})


async def test_the_node_list_shows_every_change(store: JobStore) -> None:
    manager = NodeManager(store, NodeManagerConfig())
    await manager.start(NodeInfo(node_id="orchestrator", node_type="Requester"))
    app = FastAPI()
    app.include_router(router(manager))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:

        async def listed() -> bytes:
            response = await client.get(NODES)
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            return response.content

        try:
            for index in range(3):
                assert (await manager.handshake(node(f"n-{index}", labels="<&>").info)) == (True, "")
            assert await listed() == fresh(manager)
            first = await listed()
            assert manager.heartbeat("n-1", Resources(cpu=0.5), Resources(), 3, 1)
            after_heartbeat = await listed()
            assert after_heartbeat == fresh(manager) and after_heartbeat != first
            await manager.disconnect("n-2", "gone")
            assert await listed() == fresh(manager)
            await manager.reject("n-0")
            assert await listed() == fresh(manager)
            await manager.delete("n-0")
            assert await listed() == fresh(manager)
            info = node("n-1", engines=("docker",)).info
            await manager.update_info(info)
            assert await listed() == fresh(manager)
            limited = (await client.get(NODES, params={"limit": 1, "order_by": "id", "reverse": "true"})).json()
            assert [n["Info"]["NodeID"] for n in limited["Nodes"]] == ["orchestrator"]
            pretty = await client.get(NODES, params={"pretty": ""})
            assert pretty.json() == (await client.get(NODES)).json()
        finally:
            await manager.stop()


async def test_a_node_revision_changes_with_its_state(store: JobStore) -> None:
    manager = NodeManager(store, NodeManagerConfig())
    await manager.start(NodeInfo(node_id="orchestrator", node_type="Requester"))
    try:
        assert manager.revision("n-1") == 0
        await manager.handshake(node("n-1").info)
        seen = {manager.revision("n-1")}
        manager.heartbeat("n-1", Resources(), Resources(), 0, 0)
        seen.add(manager.revision("n-1"))
        await manager.disconnect("n-1", "gone")
        seen.add(manager.revision("n-1"))
        assert len(seen) == 3 and 0 not in seen
        await manager.delete("n-1")
        assert manager.revision("n-1") == 0
    finally:
        await manager.stop()
