"""Reading JSON request bodies with the original's binding rules and error messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from bacalhau.api.query import binding_error
from bacalhau.errors import TooLarge
from bacalhau.models.base import describe_validation_error
from bacalhau.models.limits import MAX_BODY_BYTES

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
        data = json.loads(raw, parse_constant=_not_json)
        return _replace_lone_surrogates(data) if _ESCAPED_SURROGATE.search(raw) else data
    except json.JSONDecodeError as exc:
        raise binding_error(
            f"code=400, message=Syntax error: offset={exc.pos + 1}, error={exc.msg}, internal={exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise binding_error(f"code=400, message=Syntax error: {exc}") from None
    except RecursionError:
        raise binding_error("code=400, message=Syntax error: the JSON nests too deeply") from None
    except ValueError as exc:
        raise binding_error(f"code=400, message=Syntax error: {exc}") from None


# JSON may escape half of a UTF-16 surrogate pair alone ("\ud800"): Python keeps it in the string, where it cannot
# be encoded again (to store or send it). Go's decoder replaces it with U+FFFD, and so do we.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_json(name: str) -> Any:
    """Python's decoder takes NaN and Infinity; JSON (and Go's decoder) does not."""
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(key): _replace_lone_surrogates(item) for key, item in value.items()}
    return value


def text_field(data: Any, name: str) -> str:
    """A top-level string (``""`` when absent), as Go binds it into a string field: any other JSON type is a 400."""
    return str(_typed_field(data, name, "", lambda value: isinstance(value, str), "a valid string"))


def bool_field(data: Any, name: str) -> bool:
    """A top-level boolean (false when absent or null); any other JSON type is a 400."""
    return bool(_typed_field(data, name, False, lambda value: isinstance(value, bool), "a valid boolean"))


def uint_field(data: Any, name: str) -> int:
    """A top-level unsigned 64-bit integer (0 when absent or null), as Go binds it into a uint64."""

    def is_uint64(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64

    return int(_typed_field(data, name, 0, is_uint64, "an unsigned integer"))


def _typed_field(data: Any, name: str, zero: Any, valid: Callable[[Any], bool], expected: str) -> Any:
    value = field_of(data, name)
    if value is None:
        return zero
    if not valid(value):
        raise binding_error(f"code=400, message=Unmarshal type error: {name}: Input should be {expected}")
    return value


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
        raise binding_error(f"code=400, message=Unmarshal type error: {describe_validation_error(exc)}") from None
