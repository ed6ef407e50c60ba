"""The bounds of ``models/limits.py`` as annotated types for the wire models' fields: decoding refuses what is out
of bounds with a 400 that names the field, and the OpenAPI document states each bound."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from bacalhau.models.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_DURATION_SECONDS,
    MAX_ENV_VALUE_LENGTH,
    MAX_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_META_VALUE_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PATH_LENGTH,
    UINT64_MAX,
)

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
UInt64 = Annotated[int, Field(ge=0, le=UINT64_MAX)]
Seconds = Annotated[int, Field(ge=INT64_MIN, le=MAX_DURATION_SECONDS)]
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
Key = Annotated[str, Field(max_length=MAX_KEY_LENGTH)]
LabelValue = Annotated[str, Field(max_length=MAX_LABEL_VALUE_LENGTH)]
MetaValue = Annotated[str, Field(max_length=MAX_META_VALUE_LENGTH)]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE_LENGTH)]
PathText = Annotated[str, Field(max_length=MAX_PATH_LENGTH)]
