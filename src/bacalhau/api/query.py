"""Query parameters bound the way the original's framework binds them: names case-insensitive, an empty value
means zero or false, booleans as Go's ParseBool reads them (``1 t T TRUE true True``, ...)."""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection as Request

from bacalhau.errors import MalformedRequest
from bacalhau.models.limits import INT64_MAX, INT64_MIN

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def binding_error(message: str) -> MalformedRequest:
    return MalformedRequest(message)


def has_param(request: Request, name: str) -> bool:
    wanted = name.lower()
    return any(key.lower() == wanted for key in request.query_params)


def get_str(request: Request, name: str, default: str = "") -> str:
    """The first value of a parameter, matched case-insensitively."""
    wanted = name.lower()
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            return value
    return default


def get_all(request: Request, name: str) -> list[str]:
    wanted = name.lower()
    return [value for key, value in request.query_params.multi_items() if key.lower() == wanted]


def get_bool(request: Request, name: str) -> bool:
    value = get_str(request, name)
    if value == "" or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise binding_error(
        f'code=400, message=strconv.ParseBool: parsing "{value}": invalid syntax, internal=strconv.ParseBool: '
        f'parsing "{value}": invalid syntax'
    )


_UINT = re.compile(r"[0-9]+")
_INT = re.compile(r"[+-]?[0-9]+")


def get_uint(request: Request, name: str, bits: int = 32) -> int:
    value = get_str(request, name)
    if value == "":
        return 0
    if not _UINT.fullmatch(value) or int(value) >= 2**bits:  # ASCII digits only, as strconv reads them
        raise binding_error(
            f'code=400, message=strconv.ParseUint: parsing "{value}": invalid syntax, internal=strconv.ParseUint: '
            f'parsing "{value}": invalid syntax'
        )
    return int(value)


def get_int(request: Request, name: str) -> int:
    value = get_str(request, name)
    if value == "":
        return 0
    if not _INT.fullmatch(value):
        raise binding_error(
            f'code=400, message=strconv.ParseInt: parsing "{value}": invalid syntax, internal=strconv.ParseInt: '
            f'parsing "{value}": invalid syntax'
        )
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise binding_error(
            f'code=400, message=strconv.ParseInt: parsing "{value}": value out of range, internal=strconv.ParseInt: '
            f'parsing "{value}": value out of range'
        )
    return number
