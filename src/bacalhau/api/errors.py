"""Where errors become HTTP answers, in the original's format: ``{"Status","Message","RequestID","Code","Component"}``.

The only place that decides a status: each domain error class (``bacalhau.errors``) has one here. A domain error of no
listed class, or any other exception, is unexpected: a 500 with the request ID, logged once with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response

from bacalhau import errors
from bacalhau.api.render import json_response

log = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "The requested resource/URL was not found."
NOT_FOUND_HINT = "Check the URL and the HTTP method; the API lives under /api/v1 (see /docs)."
INTERNAL_ERROR_HINT = "this is a bug on the server: report it with the request ID; the server's log has the details"
CHALLENGE = 'Basic realm="bacalhau", Bearer realm="bacalhau"'  # how a client may prove who it is

STATUS_BY_CLASS: dict[type[errors.BacalhauError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Unsupported: 501,
    errors.Unavailable: 503,
}
HEADERS_BY_CLASS: dict[type[errors.BacalhauError], dict[str, str]] = {
    errors.Unauthorized: {"WWW-Authenticate": CHALLENGE},
}


def status_of(exc: errors.BacalhauError) -> int | None:
    """The HTTP status of an expected error, or None for one the API does not expect."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_CLASS.get(cls)
        if status is not None:
            return status
    return None


def request_id(request: HTTPConnection) -> str:
    """The ID the middleware gave this request (the client's ``X-Request-Id``, else a new one)."""
    return str(request.scope.get("request_id") or request.headers.get("x-request-id", ""))


def error_body(
    request: HTTPConnection,
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
        "RequestID": request_id(request),
        "Code": code,
        "Component": component,
    }
    if hint:
        body["Hint"] = hint
    if details:
        body["Details"] = details
    return body


def error_response(
    request: HTTPConnection,
    status: int,
    message: str,
    code: str,
    component: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    if request.scope.get("method") == "HEAD":  # a WebSocket handshake's scope has no method
        return Response(status_code=status, headers=headers)
    body = error_body(request, status, message, code, component, **extra)
    return json_response(request, body, status, headers=headers)


async def handle_bacalhau_error(request: HTTPConnection, exc: Exception) -> Response:
    assert isinstance(exc, errors.BacalhauError)
    status = status_of(exc)
    if status is None:
        return await handle_unexpected(request, exc)
    return error_response(
        request,
        status,
        exc.message,
        exc.code,
        exc.component,
        headers=next((h for cls, h in HEADERS_BY_CLASS.items() if isinstance(exc, cls)), None),
        hint=exc.hint,
        details=exc.details,
    )


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(request, 404, NOT_FOUND_MESSAGE, "NotFound", "APIServer", hint=NOT_FOUND_HINT)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(request, exc.status_code, message, "InternalError", "APIServer")


async def handle_unexpected(request: HTTPConnection, exc: Exception) -> Response:
    method = request.scope.get("method", "WebSocket")
    if isinstance(exc, ClientDisconnect):  # the client went away mid-request: nobody to answer, nothing wrong here
        log.debug("client disconnected during %s %s", method, request.url.path)
        return Response(status_code=499)
    log.error(
        "unexpected error serving %s %s (request %s)",
        method,
        request.url.path,
        request_id(request),
        exc_info=exc,
    )
    return error_response(request, 500, "Internal server error", "InternalError", "Unknown", hint=INTERNAL_ERROR_HINT)
