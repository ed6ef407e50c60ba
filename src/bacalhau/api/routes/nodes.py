"""``/api/v1/orchestrator/nodes``: list, get and act on nodes (approve, reject, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.body import read_json, text_field
from bacalhau.api.query import binding_error, get_all, get_bool, get_str, get_uint, has_param
from bacalhau.api.render import encode_json, json_response
from bacalhau.api.schemas import (
    ERRORS,
    ApiError,
    GetNodeResponse,
    ListNodesResponse,
    NodeActionRequest,
    NodeActionResponse,
    body,
    query,
)
from bacalhau.errors import InvalidRequest
from bacalhau.models.node import NodeState
from bacalhau.models.selector import SelectorError, matches, parse_selector
from bacalhau.orchestrator.nodes import NodeManager

PREFIX = "/api/v1/orchestrator/nodes"

_CAPACITY_ORDER = {
    "available_cpu": lambda n: n.info.compute_node_info.available_capacity.cpu if n.info.compute_node_info else 0,
    "available_memory": lambda n: n.info.compute_node_info.available_capacity.memory if n.info.compute_node_info else 0,
    "available_disk": lambda n: n.info.compute_node_info.available_capacity.disk if n.info.compute_node_info else 0,
    "available_gpu": lambda n: n.info.compute_node_info.available_capacity.gpu if n.info.compute_node_info else 0,
}


def _sorted(nodes: list[NodeState], order_by: str, reverse: bool) -> list[NodeState]:
    if order_by in ("", "id"):
        result = sorted(nodes, key=lambda n: n.info.node_id)
    elif order_by == "type":
        result = sorted(nodes, key=lambda n: (n.info.node_type, n.info.node_id))
    elif order_by in ("approval", "status"):
        result = sorted(nodes, key=lambda n: (n.membership, n.info.node_id))
    elif order_by in _CAPACITY_ORDER:
        result = sorted(nodes, key=_CAPACITY_ORDER[order_by], reverse=True)
    else:
        raise binding_error("invalid order_by")
    return list(reversed(result)) if reverse else result


class _NodeTexts:
    """Each node's JSON as the node list writes it, kept until the node changes (``NodeManager.revision``): an
    orchestrator with a thousand nodes would otherwise build and encode every node's model for every listing, while
    only the few that heartbeated since have changed."""

    def __init__(self, nodes: NodeManager) -> None:
        self._nodes = nodes
        self._texts: dict[str, tuple[int, bytes]] = {}

    def text(self, node: NodeState) -> bytes:
        node_id = node.info.node_id
        revision = self._nodes.revision(node_id)
        kept = self._texts.get(node_id)
        if kept is None or kept[0] != revision or not revision:
            kept = self._texts[node_id] = (revision, encode_json(node.to_wire())[:-1])  # without its newline
        return kept[1]

    def listing(self, found: list[NodeState], known: int) -> bytes:
        """The list's body, byte for byte what ``json_response`` writes for it (compact, HTML characters escaped:
        escaping each node's text is escaping the whole, the rest has none)."""
        items = b",".join([self.text(node) for node in found])
        if len(self._texts) > 2 * known + 16:  # forget deleted nodes
            self._texts = {
                node.info.node_id: kept for node in self._nodes.all() if (kept := self._texts.get(node.info.node_id))
            }
        return b'{"NextToken":"","Nodes":[' + items + b'],"nodes":[' + items + b"]}\n"


def router(nodes: NodeManager) -> APIRouter:
    api = APIRouter(tags=["Orchestrator"])
    texts = _NodeTexts(nodes)

    @api.get(
        PREFIX,
        summary="List nodes",
        responses={200: {"model": ListNodesResponse}, **ERRORS},
        openapi_extra=query(
            ("limit", "integer", "At most this many; 0 for all"),
            ("order_by", "string", "id, type, approval, status, available_cpu, available_memory, ..."),
            ("reverse", "boolean", "Reverse the order"),
            ("filter-approval", "string", "pending, approved or rejected"),
            ("filter-status", "string", "connected or disconnected"),
            ("labels", "string", "A label selector, e.g. zone=eu"),
        ),
    )
    async def list_nodes(request: Request) -> Response:
        try:
            selector = parse_selector(",".join(get_all(request, "labels")))
        except SelectorError as exc:
            raise binding_error(f"invalid labels selector: {exc}") from None
        approval = (get_str(request, "filter-approval") or get_str(request, "filter_approval")).upper()
        status = (get_str(request, "filter-status") or get_str(request, "filter_status")).upper()
        found = [
            node
            for node in nodes.all()
            if (not approval or node.membership == approval)
            and (not status or node.connection == status)
            and matches(selector, node.info.labels)
        ]
        found = _sorted(found, get_str(request, "order_by"), get_bool(request, "reverse"))
        limit = get_uint(request, "limit")
        found = found[:limit] if limit else found
        if not has_param(request, "pretty"):
            return Response(texts.listing(found, len(nodes.all())), media_type="application/json")
        items = [node.to_wire() for node in found]
        return json_response(request, {"NextToken": "", "Nodes": items, "nodes": items})

    @api.get(
        PREFIX + "/{node_id}",
        summary="Get a node (by ID or unique ID prefix)",
        responses={200: {"model": GetNodeResponse}, **ERRORS},
    )
    async def get_node(request: Request, node_id: str) -> Response:
        node = nodes.resolve(node_id).to_wire()
        return json_response(request, {"Node": node, "node": node})

    async def act(request: Request, node_id: str, body: Any) -> Response:
        action = text_field(body, "action").lower()
        if action == "approve":
            await nodes.approve(node_id)
        elif action == "reject":
            await nodes.reject(node_id)
        elif action == "delete":
            await nodes.delete(node_id)
        else:
            raise InvalidRequest(f"unsupported action: {action!r}", component="NodeManager")
        return json_response(request, {"Success": True, "success": True})

    @api.put(
        PREFIX + "/{node_id}",
        summary="Approve, reject or delete a node",
        responses={200: {"model": NodeActionResponse}, 409: {"model": ApiError}, **ERRORS},
        openapi_extra=body(NodeActionRequest),
    )
    async def update_node(request: Request, node_id: str) -> Response:
        return await act(request, node_id, await read_json(request))

    @api.post(
        PREFIX,
        summary="Node action (the path the official Python client uses)",
        responses={200: {"model": NodeActionResponse}, 409: {"model": ApiError}, **ERRORS},
        openapi_extra=body(NodeActionRequest),
    )
    async def update_node_by_body(request: Request) -> Response:
        body = await read_json(request)
        node_id = text_field(body, "nodeID")
        if not node_id:
            raise binding_error("missing NodeID")
        return await act(request, node_id, body)

    return api
