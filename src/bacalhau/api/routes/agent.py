"""``/api/v1/agent``: liveness, version, this node's info, debug, configuration and SSO settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.context import ApiContext
from bacalhau.api.render import json_response
from bacalhau.api.schemas import AgentConfigResponse, AgentNodeResponse, AliveResponse, AuthConfigResponse
from bacalhau.models.node import BuildVersionInfo
from bacalhau.version import build_info

PREFIX = "/api/v1/agent"
AUTH_CONFIG_VERSION = "1.0.0"


def node_document(context: ApiContext) -> dict[str, Any]:
    """NodeInfo at the top level (v1.6+ and the Python client) plus Info/Membership/Connection (v1.5 Go CLI)."""
    state = context.node_state().to_wire()
    return {**state["Info"], **state}


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["Agent"])

    @api.get(PREFIX + "/alive", summary="Is the node alive", responses={200: {"model": AliveResponse}})
    async def alive(request: Request) -> Response:
        return json_response(request, {"Status": "OK"})

    @api.get(PREFIX + "/version", summary="Server version", responses={200: {"model": BuildVersionInfo}})
    async def version(request: Request) -> Response:
        return json_response(request, build_info().to_wire())

    @api.get(PREFIX + "/node", summary="This node's info", responses={200: {"model": AgentNodeResponse}})
    async def node(request: Request) -> Response:
        return json_response(request, node_document(context))

    @api.get(
        PREFIX + "/debug",
        summary="Debug information: what the node is doing (queues, streams, store, uptime, config, recent errors)",
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def debug(request: Request) -> Response:
        return json_response(request, await context.debug() if context.debug is not None else {})

    @api.get(
        PREFIX + "/config",
        summary="The node's configuration, secrets masked",
        responses={200: {"model": AgentConfigResponse}},
    )
    async def config(request: Request) -> Response:
        return json_response(request, {"config": context.config()})

    @api.get(
        PREFIX + "/authconfig",
        summary="The node's SSO (OAuth2) settings, for clients to log in with",
        responses={200: {"model": AuthConfigResponse}},
    )
    async def auth_config(request: Request) -> Response:
        return json_response(request, {"Version": AUTH_CONFIG_VERSION, "Config": context.oauth2})

    return api
