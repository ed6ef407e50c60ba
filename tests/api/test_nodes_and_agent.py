"""Checklist group D (§9, items 23-29): nodes and agent endpoints, raw and through the official client."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from bacalhau_apiclient import ApiClient, ApiPutNodeRequest, OpsApi, OrchestratorApi

from tests.api.support import RFC3339, assert_api_error
from tests.conftest import ServeProcess

NODES = "/api/v1/orchestrator/nodes"


@pytest.fixture(scope="module")
def node_id(base_url: str) -> str:
    return str(httpx.get(f"{base_url}/api/v1/agent/node").json()["NodeID"])


def test_list_nodes_shape(base_url: str) -> None:
    body = httpx.get(f"{base_url}{NODES}").json()
    assert body["NextToken"] == ""
    [node] = body["Nodes"]
    assert node["Info"]["NodeID"]
    assert node["Info"]["NodeType"] in ("Compute", "Requester")
    assert node["Membership"] in ("PENDING", "APPROVED", "REJECTED")
    assert node["Connection"] in ("CONNECTED", "DISCONNECTED")
    assert body["nodes"] == body["Nodes"]


def test_list_nodes_rejects_a_bogus_order(base_url: str) -> None:
    response = httpx.get(f"{base_url}{NODES}", params={"order_by": "bogus"})
    assert response.status_code == 400
    assert_api_error(response, 400)
    assert "invalid order_by" in response.json()["Message"]


@pytest.mark.parametrize("order_by", ["id", "type", "approval", "status", "available_cpu", "available_memory"])
def test_list_nodes_accepts_every_documented_order(base_url: str, order_by: str) -> None:
    assert httpx.get(f"{base_url}{NODES}", params={"order_by": order_by, "reverse": "True"}).status_code == 200


def test_list_nodes_filters(base_url: str) -> None:
    assert len(httpx.get(f"{base_url}{NODES}", params={"filter-approval": "approved"}).json()["Nodes"]) == 1
    assert httpx.get(f"{base_url}{NODES}", params={"filter-approval": "pending"}).json()["Nodes"] == []
    assert len(httpx.get(f"{base_url}{NODES}", params={"filter_approval": "APPROVED"}).json()["Nodes"]) == 1
    assert len(httpx.get(f"{base_url}{NODES}", params={"filter-status": "connected"}).json()["Nodes"]) == 1
    assert httpx.get(f"{base_url}{NODES}", params={"labels": "os_type=plan9"}).json()["Nodes"] == []
    assert len(httpx.get(f"{base_url}{NODES}", params={"labels": "os_type"}).json()["Nodes"]) == 1
    assert httpx.get(f"{base_url}{NODES}", params={"labels": "bad key=x"}).status_code == 400


def test_the_official_client_lists_and_gets_nodes(orchestrator: OrchestratorApi, node_id: str) -> None:
    listed = orchestrator.orchestratorlist_nodes(limit=1, order_by="id", reverse=False, filter_approval="APPROVED")
    assert listed.nodes is not None and len(listed.nodes) == 1
    got = orchestrator.orchestratorget_node(node_id[:6])
    assert got.node is not None


def test_get_node_by_prefix_and_unknown(base_url: str, node_id: str) -> None:
    body = httpx.get(f"{base_url}{NODES}/{node_id[:5]}").json()
    assert body["Node"]["Info"]["NodeID"] == node_id and body["node"] == body["Node"]
    missing = httpx.get(f"{base_url}{NODES}/zzz-no-such-node")
    assert_api_error(missing, 404)


def test_node_actions(hybrid: ServeProcess) -> None:
    """Approve an approved node: 409 (we follow HEAD here, not v1.5's 200 with Success false)."""
    node_id = httpx.get(f"{hybrid.url}/api/v1/agent/node").json()["NodeID"]
    again = httpx.put(f"{hybrid.url}{NODES}/{node_id}", json={"Action": "approve"})
    assert_api_error(again, 409)
    assert "already approved" in again.json()["Message"]
    rejected = httpx.put(f"{hybrid.url}{NODES}/{node_id}", json={"Action": "reject"})
    assert rejected.status_code == 200 and rejected.json() == {"Success": True, "success": True}
    approved = httpx.put(f"{hybrid.url}{NODES}/{node_id}", json={"action": "APPROVE"})
    assert approved.json()["Success"] is True
    unsupported = httpx.put(f"{hybrid.url}{NODES}/{node_id}", json={"Action": "promote"})
    assert unsupported.status_code == 400


def test_the_official_client_updates_nodes_through_its_post_alias(hybrid: ServeProcess) -> None:
    configuration = ApiClient().configuration
    configuration.host = hybrid.url
    api = OrchestratorApi(ApiClient(configuration))
    node_id = httpx.get(f"{hybrid.url}/api/v1/agent/node").json()["NodeID"]
    result = api.orchestratorupdate_node(ApiPutNodeRequest(action="reject", message="x", node_id=node_id), node_id)
    assert result.success is True
    assert httpx.get(f"{hybrid.url}{NODES}/{node_id}").json()["Node"]["Membership"] == "REJECTED"


def test_agent_alive(api_client: ApiClient, base_url: str) -> None:
    assert "OK" in OpsApi(api_client).agentalive()
    assert httpx.get(f"{base_url}/api/v1/agent/alive").json() == {"Status": "OK"}


def test_agent_version(api_client: ApiClient) -> None:
    version = OpsApi(api_client).agentversion()
    assert version.git_version.startswith("v")
    assert RFC3339.match(version.build_date)


def test_agent_node_has_both_shapes(api_client: ApiClient, base_url: str) -> None:
    assert OpsApi(api_client).agentnode().node_id is not None
    raw = httpx.get(f"{base_url}/api/v1/agent/node").json()
    assert raw["Info"]["NodeID"] == raw["NodeID"]


def test_agent_config_is_wrapped_with_secrets_masked(serve_factory: Callable[..., ServeProcess]) -> None:
    node = serve_factory(
        "--orchestrator", "--compute", name="secret", env={"BACALHAU_ORCHESTRATOR_AUTH_TOKEN": "hunter2"}
    )
    body = httpx.get(f"{node.url}/api/v1/agent/config").json()
    assert set(body) == {"config"}
    assert body["config"]["Orchestrator"]["Enabled"] is True
    assert body["config"]["Orchestrator"]["Auth"]["Token"] == "********"
    assert "hunter2" not in httpx.get(f"{node.url}/api/v1/agent/config").text
