"""Go's builtin template functions (and, call, html, index, js, len, not, or, print, printf, println, slice,
urlquery, eq, ne, lt, le, gt, ge) with their Go signatures and error texts; a template may call nothing else (no
sprig: ``default`` is "not defined")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from bacalhau.lib.gofmt import GoByte, from_bytes, sprint, sprintf, sprintln, to_bytes, type_name


class CallError(Exception):
    """A builtin's error: Go reports it as ``error calling NAME: ...``."""


def is_true(value: Any) -> bool:
    """Go's ``IsTrue``: the zero value of its type is false."""
    if value is None:
        return False
    if isinstance(value, str | dict):
        return len(value) > 0
    return bool(value)


def _kind(value: Any) -> str:
    """Go's basic kinds for comparisons ("" when none)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoByte):
        return "uint"
    for kind, cls in (("int", int), ("float", float), ("complex", complex), ("string", str)):
        if isinstance(value, cls):
            return kind
    return ""


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    kind = _kind(first)
    for other in others:
        if kind != _kind(other):
            if {kind, _kind(other)} == {"int", "uint"}:
                truth = first == other
            elif first is not None and other is not None:
                raise CallError(f"incompatible types for comparison: {type_name(first)} and {type_name(other)}")
            else:
                truth = False
        elif kind == "string":
            truth = to_bytes(first) == to_bytes(other)
        elif kind:
            truth = first == other
        elif first is None or other is None:
            truth = first is None and other is None
        else:
            raise CallError(f"non-comparable type {sprint([other])}: {type_name(other)}")
        if truth:
            return True
    return False


def _lt(first: Any, second: Any) -> bool:
    kinds = _kind(first), _kind(second)
    if not all(kinds):
        raise CallError("invalid type for comparison")
    if kinds[0] != kinds[1]:
        if set(kinds) == {"int", "uint"}:
            return bool(first < second)
        raise CallError(f"incompatible types for comparison: {type_name(first)} and {type_name(second)}")
    if kinds[0] in ("bool", "complex"):
        raise CallError("invalid type for comparison")
    if kinds[0] == "string":
        return to_bytes(first) < to_bytes(second)
    return bool(first < second)


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


def _gt(first: Any, second: Any) -> bool:
    return not _le(first, second)


def _ge(first: Any, second: Any) -> bool:
    return not _lt(first, second)


def _length(item: Any) -> int:
    if item is None:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(to_bytes(item))
    if isinstance(item, dict):
        return len(item)
    raise CallError(f"len of type {type_name(item)}")


def _index_arg(index: Any, size: int) -> int:
    if index is None:
        raise CallError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise CallError(f"cannot index slice/array with type {type_name(index)}")
    if index < 0 or index > size:
        raise CallError(f"index out of range: {index}")
    return int(index)


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise CallError("index of untyped nil")
    for index in indexes:
        if isinstance(item, str):
            data = to_bytes(item)
            position = _index_arg(index, len(data))
            if position == len(data):
                raise CallError("reflect: string index out of range")
            item = GoByte(data[position])
        elif isinstance(item, dict):
            if index is None:
                raise CallError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise CallError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, "")
        else:
            raise CallError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if not isinstance(item, str):
        raise CallError(f"can't slice item of type {type_name(item)}")
    if len(indexes) == 3:
        raise CallError("cannot 3-index slice a string")
    data = to_bytes(item)
    bounds = [0, len(data)]
    for position, index in enumerate(indexes):
        bounds[position] = _index_arg(index, len(data))
    if bounds[0] > bounds[1]:
        raise CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    return from_bytes(data[bounds[0] : bounds[1]])


def _call(name: str, function: Any, *args: Any) -> Any:
    """No value a job template holds is a function."""
    if function is None:
        raise CallError("call of nil")
    raise CallError(f"non-function {name} of type {type_name(function)}")


def _eval_args(args: tuple[Any, ...]) -> str:
    """The text of the escaping functions' arguments (nil reads ``<no value>`` here)."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if arg is None else arg for arg in args])


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _html(*args: Any) -> str:
    return "".join(_HTML.get(char, char) for char in _eval_args(args))


def _js(*args: Any) -> str:
    out = []
    for char in from_bytes(to_bytes(_eval_args(args))):
        code = ord(char)
        if char in _JS:
            out.append(_JS[char])
        elif code < 0x20:
            out.append(f"\\u{code:04X}")
        elif code < 0x80 or char.isprintable() or 0xDC80 <= code <= 0xDCFF:
            out.append(char)
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return quote_plus(to_bytes(_eval_args(args)), safe="")


@dataclass(frozen=True)
class _Builtin:
    """A builtin's Go signature: its fixed parameters' types, its variadic one's (if any)."""

    function: Callable[..., Any] | None  # None: and/or, which short-circuit where they are evaluated
    params: tuple[str, ...]
    variadic: str = ""


BUILTINS: dict[str, _Builtin] = {
    "and": _Builtin(None, ("value",), "value"),
    "or": _Builtin(None, ("value",), "value"),
    "call": _Builtin(_call, ("value",), "value"),
    "html": _Builtin(_html, (), "any"),
    "index": _Builtin(_index, ("value",), "value"),
    "slice": _Builtin(_slice, ("value",), "value"),
    "js": _Builtin(_js, (), "any"),
    "len": _Builtin(_length, ("value",)),
    "not": _Builtin(lambda value: not is_true(value), ("value",)),
    "print": _Builtin(lambda *args: sprint(list(args)), (), "any"),
    "printf": _Builtin(lambda template, *args: sprintf(template, list(args)), ("string",), "any"),
    "println": _Builtin(lambda *args: sprintln(list(args)), (), "any"),
    "urlquery": _Builtin(_urlquery, (), "any"),
    "eq": _Builtin(_eq, ("value",), "value"),
    "ge": _Builtin(_ge, ("value", "value")),
    "gt": _Builtin(_gt, ("value", "value")),
    "le": _Builtin(_le, ("value", "value")),
    "lt": _Builtin(_lt, ("value", "value")),
    "ne": _Builtin(_ne, ("value", "value")),
}
