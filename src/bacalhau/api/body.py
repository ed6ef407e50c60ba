"""Reading JSON request bodies with the original's binding rules and error messages."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from bacalhau.api.middleware import MAX_BODY_BYTES
from bacalhau.api.query import binding_error
from bacalhau.errors import TooLarge

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """The decoded body, or ``{}`` when there is none; non-JSON bodies and syntax errors are 400s."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge("Request Entity Too Large", code="InternalError", component="APIServer")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise binding_error("code=415, message=Unsupported Media Type")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise binding_error(
            f"code=400, message=Syntax error: offset={exc.pos + 1}, error={exc.msg}, internal={exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise binding_error(f"code=400, message=Syntax error: {exc}") from None


def field_of(data: Any, name: str) -> Any:
    """A top-level key matched case-insensitively, as Go's decoder matches it."""
    if not isinstance(data, dict):
        return None
    wanted = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return None


def validate_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()
        )
        raise binding_error(f"code=400, message=Unmarshal type error: {problems}") from None
