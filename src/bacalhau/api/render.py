"""JSON responses as the original writes them: compact (or 2-space indented with ``?pretty``), HTML characters
escaped, and a trailing newline."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response

from bacalhau.api.query import has_param


def _escape_html(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def encode_json(data: Any, *, pretty: bool = False, escape_html: bool = True) -> bytes:
    if pretty:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if escape_html:
        text = _escape_html(text)
    return (text + "\n").encode()


def json_response(
    request: HTTPConnection,
    data: Any,
    status: int = 200,
    *,
    escape_html: bool = True,
    headers: dict[str, str] | None = None,
) -> Response:
    body = encode_json(data, pretty=has_param(request, "pretty"), escape_html=escape_html)
    return Response(body, status_code=status, media_type="application/json", headers=headers)
