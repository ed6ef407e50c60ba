"""Routes kept for old clients: the v1.4/v1.5 shared endpoints and the retired requester API (410)."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bacalhau.api.context import ApiContext
from bacalhau.api.render import json_response
from bacalhau.api.schemas import LegacyVersionRequest, LegacyVersionResponse, body
from bacalhau.models.node import BuildVersionInfo, NodeState
from bacalhau.version import build_info

REQUESTER_GONE = (
    "This endpoint is deprecated. See the migration guide at "
    "https://docs.bacalhau.org/references/cli-reference/command-migration for more information"
)


def _space(path: str) -> dict[str, int]:
    usage = shutil.disk_usage(path)
    return {"All": usage.total, "Used": usage.used, "Free": usage.free}


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(tags=["Legacy (v1.4/v1.5 clients)"])
    text: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}

    @api.get("/api/v1/livez", summary="Liveness (v1.4)", responses=text)
    async def livez() -> Response:
        return PlainTextResponse("OK")

    @api.get("/api/v1/id", summary="Node ID (v1.4)", responses=text)
    async def node_id() -> Response:
        return PlainTextResponse(context.node_info().node_id)

    @api.get("/api/v1/node_info", summary="Node state (v1.4)", responses={200: {"model": NodeState}})
    async def node_info(request: Request) -> Response:
        return json_response(request, context.node_state().to_wire())

    @api.get(
        "/api/v1/healthz",
        summary="Free disk space (v1.4)",
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def healthz(request: Request) -> Response:
        return json_response(request, {"FreeSpace": {"tmp": _space(tempfile.gettempdir()), "root": _space("/")}})

    @api.post(
        "/api/v1/version",
        summary="Server version (v1.4)",
        responses={200: {"model": LegacyVersionResponse}},
        openapi_extra=body(LegacyVersionRequest, required=False),
    )
    async def version(request: Request) -> Response:
        return json_response(request, {"build_version_info": build_info().to_wire()})

    @api.get("/", summary="Server version (v1.4)", responses={200: {"model": BuildVersionInfo}})
    async def home(request: Request) -> Response:
        return json_response(request, build_info().to_wire())

    @api.api_route("/api/v1/requester/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)
    async def requester(request: Request, rest: str) -> Response:
        return json_response(request, REQUESTER_GONE, status=410)

    return api
