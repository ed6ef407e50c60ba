"""``/api/v1/orchestrator/jobs/{id}/logs``: an execution's output over a WebSocket, streamed from its node.

One text frame per line, ``{"value":{"Type":1|2,"Line":"..."}}`` (1 stdout, 2 stderr); a problem is one frame with
``"error"``; the server then closes with 1000. A plain GET (no upgrade) is a 400, as the original answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from bacalhau.api.auth import WS_PROTOCOL
from bacalhau.api.query import get_bool, get_str, get_uint
from bacalhau.api.schemas import query
from bacalhau.errors import BacalhauError
from bacalhau.orchestrator.jobs import JobService
from bacalhau.orchestrator.logs import LogProxy

PATH = "/api/v1/orchestrator/jobs/{job_id}/logs"


def router(jobs: JobService, logs: LogProxy) -> APIRouter:
    api = APIRouter(tags=["Orchestrator"])

    @api.get(
        PATH,
        summary="Stream a job's logs (a WebSocket: a plain GET is a 400)",
        responses={
            400: {"description": "Not a WebSocket upgrade", "content": {"text/plain": {"schema": {"type": "string"}}}}
        },
        openapi_extra=query(
            ("follow", "boolean", "Keep streaming until the execution ends"),
            ("tail", "boolean", "Start from the end"),
            ("execution_id", "string", "This execution (default: the latest one)"),
            ("namespace", "string", "The job's namespace, when it is named by its name"),
            ("job_version", "integer", "The latest execution of this version (default: of any version)"),
        ),
    )
    async def logs_without_upgrade(request: Request, job_id: str) -> Response:
        return PlainTextResponse("Bad Request", status_code=400)

    @api.websocket(PATH)
    async def stream_logs(websocket: WebSocket, job_id: str) -> None:
        # A browser offers our protocol beside its credentials (api/auth.py): it must hear the one chosen.
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=WS_PROTOCOL if WS_PROTOCOL in offered else None)
        pump = asyncio.ensure_future(_pump(websocket, jobs, logs, job_id))
        hangup = asyncio.ensure_future(_wait_for_hangup(websocket))
        done, pending = await asyncio.wait({pump, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if pump in done:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=1000)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task

    return api


async def _pump(websocket: WebSocket, jobs: JobService, logs: LogProxy, job_id: str) -> None:
    try:
        execution = await jobs.execution_for_logs(
            job_id,
            get_str(websocket, "execution_id"),
            namespace=get_str(websocket, "namespace"),
            version=get_uint(websocket, "job_version", bits=63),
        )
        stream = logs.stream(
            execution.node_id, execution.id, follow=get_bool(websocket, "follow"), tail=get_bool(websocket, "tail")
        )
        async for kind, line in stream:
            await websocket.send_text(json.dumps({"value": {"Type": kind, "Line": line}}))
    except BacalhauError as exc:
        await websocket.send_text(json.dumps({"value": {"Type": 0, "Line": ""}, "error": exc.message}))


async def _wait_for_hangup(websocket: WebSocket) -> None:
    """The client closing the socket (it sends nothing else) ends the stream, even while no lines come."""
    with contextlib.suppress(WebSocketDisconnect):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
