"""The base of every wire model: PascalCase JSON out, keys matched case-insensitively in, Go-style omitempty.

Bacalhau's Go server decodes JSON with ``encoding/json``, which matches keys case-insensitively and ignores unknown
ones, and encodes with per-field ``omitempty`` tags. Clients depend on both behaviours, so every model here follows
them: declare a field as ``Annotated[T, OMIT_EMPTY]`` to drop it from the output when it is empty.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue

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


class OmitEmpty:
    """Marker for ``Annotated`` fields that Go tags ``omitempty``."""

    def __repr__(self) -> str:
        return "OMIT_EMPTY"


OMIT_EMPTY = OmitEmpty()


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, BaseModel):
        return False  # Go never omits a struct value
    if isinstance(value, str | int | float | bool | list | dict | tuple):
        return not value
    return False


class WireModel(BaseModel):
    """Base class for models that travel as JSON to clients, nodes or the store."""

    model_config = ConfigDict(
        alias_generator=pascal_alias,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    _omit_fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    _key_lookup: ClassVar[dict[str, str]] = {}
    _canonical_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        omit: list[tuple[str, str]] = []
        lookup: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            lookup[alias.lower()] = alias
            lookup.setdefault(name.lower(), alias)
            if any(isinstance(m, OmitEmpty) for m in field.metadata):
                omit.append((name, alias))
        cls._omit_fields = tuple(omit)
        cls._key_lookup = lookup
        cls._canonical_keys = frozenset(lookup.values())

    @model_validator(mode="before")
    @classmethod
    def _match_keys_case_insensitively(cls, data: Any, info: Any) -> Any:
        if not isinstance(data, dict) or (info.context and info.context.get("canonical")):
            return data
        if cls._canonical_keys.issuperset(data.keys()):
            return data
        lookup = cls._key_lookup
        matched: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            canonical = lookup.get(key.lower())
            if canonical is not None:
                matched[canonical] = value
        return matched

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name, alias in self._omit_fields:
                if _is_empty(getattr(self, name)):
                    data.pop(alias if info.by_alias else name, None)
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """Document the fields themselves: the omit-empty wrapper would otherwise hide them from the schema."""
        if handler.mode == "serialization" and "serialization" in core_schema:
            core_schema = {key: value for key, value in core_schema.items() if key != "serialization"}
        return handler(core_schema)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this model, exactly as sent on the wire."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
