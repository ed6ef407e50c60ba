"""Cross-cutting HTTP behaviour, as raw ASGI for speed: request IDs, build headers, the client-version check and the
10 MB body limit."""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bacalhau.api.errors import handle_unexpected
from bacalhau.models.limits import MAX_BODY_BYTES
from bacalhau.version import build_info

MAX_REQUEST_ID_LENGTH = 128
MIN_CLIENT_VERSION = (1, 4, 0)
log = logging.getLogger(__name__)
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _build_headers() -> list[tuple[bytes, bytes]]:
    info = build_info()
    built = datetime.fromtimestamp(info.build_date / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
    return [
        (b"x-bacalhau-git-version", info.git_version.encode()),
        (b"x-bacalhau-git-commit", info.git_commit.encode()),
        (b"x-bacalhau-build-date", built.encode()),
        (b"x-bacalhau-build-os", info.goos.encode()),
        (b"x-bacalhau-arch", info.goarch.encode()),
    ]


def check_client_version(value: str) -> tuple[int, dict[str, str]] | None:
    """None when the client may proceed, else the status and body the original answers with."""
    if not value or value == "v0.0.0" or value.startswith("v0.0.0-"):
        return None
    match = _SEMVER.match(value)
    if not match:
        return 400, {"Error": f"Invalid client version {value}"}
    version = tuple(int(part) for part in match.groups())
    if version < MIN_CLIENT_VERSION:
        server = build_info().git_version.lstrip("v")
        return 403, {
            "Error": "Client version is outdated. Update your client",
            "MinVersion": ".".join(map(str, MIN_CLIENT_VERSION)),
            "ClientVersion": value.lstrip("v"),
            "ServerVersion": server,
        }
    return None


class ApiMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = _build_headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _client_request_id(headers) or uuid.uuid4().hex
        scope["request_id"] = request_id  # error bodies and logs quote it (the original's bodies leave it empty)
        extra = [(b"x-request-id", request_id.encode("latin-1")), *self._headers]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.http.response.start"):  # the latter: a refusal
                started = True
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["type"] == "http":
            rejection = check_client_version(headers.get("x-bacalhau-git-version", ""))
            if rejection is None and _declared_length(headers) > MAX_BODY_BYTES:
                rejection = (413, _too_large_body(request_id))
            if rejection is not None:
                await _respond(send_with_headers, *rejection)
                return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Handled here rather than by Starlette's outermost handler, which would re-raise it for the server to
            # log a second time, without the request ID.
            if scope["type"] == "http" and not started:
                response = await handle_unexpected(Request(scope), exc)
                await response(scope, receive, send_with_headers)
            else:
                log.error(
                    "unexpected error after the response started (%s %s)", scope["type"], scope["path"], exc_info=exc
                )


def _client_request_id(headers: dict[str, str]) -> str:
    """The client's ``X-Request-Id``, if it is short printable text (it is echoed in headers, bodies and logs)."""
    value = headers.get("x-request-id", "")
    return value if len(value) <= MAX_REQUEST_ID_LENGTH and value.isascii() and value.isprintable() else ""


def _declared_length(headers: dict[str, str]) -> int:
    """The Content-Length a client declared; one that is not a plain number counts as none (the server refuses it)."""
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else 0


def _too_large_body(request_id: str) -> dict[str, Any]:
    return {
        "Status": 413,
        "Message": "Request Entity Too Large",
        "RequestID": request_id,
        "Code": "InternalError",
        "Component": "APIServer",
    }


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = (json.dumps(body, separators=(",", ":")) + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
