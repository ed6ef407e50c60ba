"""Every error answered in the original's format: ``{"Status","Message","RequestID","Code","Component"}``."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.render import json_response
from bacalhau.errors import BacalhauError

log = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "The requested resource/URL was not found."
NOT_FOUND_HINT = "Check the URL and the HTTP method; the API lives under /api/v1 (see /docs)."


def error_body(
    request: Request,
    status: int,
    message: str,
    code: str,
    component: str,
    hint: str = "",
    details: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Status": status,
        "Message": message,
        "RequestID": request.headers.get("x-request-id", ""),
        "Code": code,
        "Component": component,
    }
    if hint:
        body["Hint"] = hint
    if details:
        body["Details"] = details
    return body


def error_response(request: Request, status: int, message: str, code: str, component: str, **extra: Any) -> Response:
    if request.method == "HEAD":
        return Response(status_code=status)
    return json_response(request, error_body(request, status, message, code, component, **extra), status)


async def handle_bacalhau_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BacalhauError)
    return error_response(
        request, exc.http_status, exc.message, exc.code, exc.component, hint=exc.hint, details=exc.details
    )


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(request, 404, NOT_FOUND_MESSAGE, "NotFound", "APIServer", hint=NOT_FOUND_HINT)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(request, exc.status_code, message, "InternalError", "APIServer")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error serving %s %s", request.method, request.url.path)
    return error_response(request, 500, "Internal server error", "InternalError", "Unknown")
