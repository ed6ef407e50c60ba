"""The base of every wire model: PascalCase JSON out, keys matched case-insensitively in, Go-style omitempty.

Bacalhau's Go server decodes JSON with ``encoding/json``, which matches keys case-insensitively and ignores unknown
ones, and encodes with per-field ``omitempty`` tags. Clients depend on both behaviours, so every model here follows
them: declare a field as ``Annotated[T, OMIT_EMPTY]`` to drop it from the output when it is empty.

Decoding is strict as Go's is: a string, bool or float never becomes an int, nor a string a bool (a 400 in the API).
A JSON ``null`` leaves a scalar or struct field as it was and empties a map or list, again as in Go; a field typed
``X | None`` (a Go pointer) takes the ``None``.
"""

from __future__ import annotations

import operator
from enum import Enum, IntEnum
from types import NoneType, UnionType
from typing import Any, ClassVar, TypeVar, Union, cast, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from bacalhau.models.gostrings import trim_space

EnumT = TypeVar("EnumT", bound=Enum)

_SPECIAL_WORDS = {
    "id": "ID",
    "cpu": "CPU",
    "gpu": "GPU",
    "gpus": "GPUs",
    "url": "URL",
    "goos": "GOOS",
    "goarch": "GOARCH",
}

# Validation context that skips key matching: values read back from our own store are already canonical.
CANONICAL = {"canonical": True}


def pascal_alias(name: str) -> str:
    """``job_id`` -> ``JobID``: the Go field naming the wire format uses."""
    return "".join(_SPECIAL_WORDS.get(part, part[:1].upper() + part[1:]) for part in name.split("_"))


def text_enum_member(enum: type[EnumT], text: str) -> EnumT | None:
    """The member named ``text`` as Go's UnmarshalText methods match it: trimmed, then compared with EqualFold."""
    wanted = trim_space(text).lower()
    for member in enum:
        if str(member.value).lower() == wanted:
            return member
    return None


class JsonIntEnum:
    """``Annotated`` metadata for an IntEnum field read from a JSON int only (never "1", true or 1.0), as Go reads it.

    Strict mode alone would take only members from Python dicts, and a before-validator would run Python code for
    every field decoded; a strict int followed by a lax member lookup stays inside pydantic-core.
    """

    def __get_pydantic_core_schema__(self, source: type[IntEnum], handler: GetCoreSchemaHandler) -> CoreSchema:
        member = cast(dict[str, Any], dict(handler.resolve_ref_schema(handler(source))))
        member.pop("ref", None)  # an inline copy: the shared definition keeps its reference
        member["strict"] = False
        return core_schema.chain_schema([core_schema.int_schema(strict=True), cast(CoreSchema, member)])

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(cast(core_schema.ChainSchema, schema)["steps"][-1])


def _null_replacement(annotation: Any) -> type[list[Any]] | type[dict[Any, Any]] | None:
    """What a JSON null decodes to for a non-pointer field: an empty list or map, or None for "leave it as it was"."""
    origin = get_origin(annotation)
    if origin is list or origin is dict:
        return origin
    return None


def _is_nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType) and NoneType in get_args(annotation)


# ``Annotated`` metadata for fields that Go tags ``omitempty``. A per-field ``exclude_if`` keeps serialization in
# pydantic-core (a model-wide wrap serializer would build every dict in Python and cost several times more), and
# ``operator.not_``, a C function, is Go's "empty" for every type such a field has (None, "", 0, an empty list or
# map; a model is never empty, as Go never omits a struct value) at a third of the cost of a Python function.
OMIT_EMPTY = Field(exclude_if=operator.not_)


MAX_LOCATION_PART = 64  # characters of each part of a field's location quoted in an error (a map key may be long)


def describe_validation_error(error: ValidationError) -> str:
    """Every problem pydantic found, each as ``<field location>: <what is wrong>``, for a 400's message."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part)[:MAX_LOCATION_PART] for part in item["loc"]) or "body"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


class WireModel(BaseModel):
    """Base class for models that travel as JSON to clients, nodes or the store."""

    model_config = ConfigDict(
        alias_generator=pascal_alias,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        strict=True,
    )

    _key_lookup: ClassVar[dict[str, str]] = {}
    _canonical_keys: ClassVar[frozenset[str]] = frozenset()
    # Aliases of the fields that cannot hold None, with what a JSON null means for each (see _null_replacement).
    _on_null: ClassVar[dict[str, type[list[Any]] | type[dict[Any, Any]] | None]] = {}

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        lookup: dict[str, str] = {}
        on_null: dict[str, type[list[Any]] | type[dict[Any, Any]] | None] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            lookup[alias.lower()] = alias
            lookup.setdefault(name.lower(), alias)
            if not _is_nullable(field.annotation):
                on_null[alias] = _null_replacement(field.annotation)
        cls._key_lookup = lookup
        cls._canonical_keys = frozenset(lookup.values())
        cls._on_null = on_null

    @model_validator(mode="before")
    @classmethod
    def _decode_like_go(cls, data: Any, info: Any) -> Any:
        """Match keys case-insensitively (the last duplicate wins) and apply Go's meaning of JSON null."""
        if not isinstance(data, dict) or (info.context and info.context.get("canonical")):
            return data
        if cls._canonical_keys.issuperset(data.keys()) and (
            None not in data.values() or cls._on_null.keys().isdisjoint([k for k, v in data.items() if v is None])
        ):
            return data  # nothing to rename, and any null is for a pointer field
        lookup = cls._key_lookup
        on_null = cls._on_null
        matched: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            canonical = lookup.get(key.lower())
            if canonical is None:
                continue
            if value is None and canonical in on_null:
                empty = on_null[canonical]
                if empty is None:
                    continue
                value = empty()
            matched[canonical] = value
        return matched

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this model, exactly as sent on the wire."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
