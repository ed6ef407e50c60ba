"""The base of every wire model: PascalCase JSON out, keys matched case-insensitively in, Go-style omitempty.

Bacalhau's Go server decodes JSON with ``encoding/json``, which matches keys case-insensitively and ignores unknown
ones, and encodes with per-field ``omitempty`` tags. Clients depend on both behaviours, so every model here follows
them: declare a field as ``Annotated[T, OMIT_EMPTY]`` to drop it from the output when it is empty.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, BaseModel):
        return False  # Go never omits a struct value
    if isinstance(value, str | int | float | bool | list | dict | tuple):
        return not value
    return False


# ``Annotated`` metadata for fields that Go tags ``omitempty``. A per-field ``exclude_if`` keeps serialization in
# pydantic-core (a model-wide wrap serializer would build every dict in Python and cost several times more).
OMIT_EMPTY = Field(exclude_if=_is_empty)


class WireModel(BaseModel):
    """Base class for models that travel as JSON to clients, nodes or the store."""

    model_config = ConfigDict(
        alias_generator=pascal_alias,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    _key_lookup: ClassVar[dict[str, str]] = {}
    _canonical_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_on_complete__(cls) -> None:
        lookup: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            lookup[alias.lower()] = alias
            lookup.setdefault(name.lower(), alias)
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

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict of this model, exactly as sent on the wire."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
