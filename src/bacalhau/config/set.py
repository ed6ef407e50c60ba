"""``bacalhau config set``: check a value against its key's type, as the original does, and write it to a file.

The file keeps its other settings; keys are written in lower case, as the original (viper) writes them, and read
back case-insensitively. Durations are stored normalised (``90s`` becomes ``1m30s``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bacalhau.config.durations import format_duration, parse_duration_ns
from bacalhau.config.model import (
    BacalhauConfig,
    ConfigKey,
    canonical_keys,
    config_keys,
    go_quote,
    merge_layers,
    read_yaml_file,
    set_path,
    validate_config,
)
from bacalhau.errors import ConfigurationError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_FORMAT_HINTS = {
    "duration": "Accepted formats: 'h' (hours), 'm' (minutes), 's' (seconds), 'ms' (milliseconds), etc. "
    "Example: '2h45m', '30s', '100ms'",
    "bool": "Accepted formats: 'true' or 'false'",
    "int": "Accepted formats: '1', '2', '10', etc.",
    "map": "Accepted formats: 'key=value', 'key1=value1,key2=value2', etc.",
}
_EXPECTS = {"duration": "a valid duration value", "bool": "a boolean value", "int": "an integer value"}


def _invalid(message: str, kind: str) -> ConfigurationError:
    return ConfigurationError(message, code="ValidationError", component="config", hint=_FORMAT_HINTS.get(kind, ""))


def cast_value(key: ConfigKey, values: list[str]) -> Any:
    """The typed value ``config set KEY VALUE...`` stores: lists take several values or commas, maps ``k=v,...``."""
    name = go_quote(key.name.lower())
    if key.kind == "list":
        if values in ([], [""]):
            return []  # ``config set publishers.disabled=`` clears a list
        items = [part.strip() for value in values for part in value.split(",")]
        if any(not item for item in items):
            raise _invalid(f"config key {name} has an empty item in {','.join(values)!r}", "list")
        return items
    if len(values) != 1:
        raise _invalid(f"config key {name} takes one value, received {len(values)}", key.kind)
    text = values[0]
    if key.kind == "map":
        return _parse_map(text)
    if key.kind == "duration":
        try:
            return format_duration(parse_duration_ns(text))
        except ValueError:
            pass
    elif key.kind == "int" and _INTEGER.fullmatch(text):
        return int(text)
    elif key.kind == "bool" and text in (*_TRUE, *_FALSE):
        return text in _TRUE
    if key.kind in _EXPECTS:
        raise _invalid(f"config key: {name} expects {_EXPECTS[key.kind]}, received: {go_quote(text)}", key.kind)
    return text


def _parse_map(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in text.split(","):
        pair = item.split("=")
        if len(pair) != 2 or not pair[0] or not pair[1]:
            problem = "expected 'key=value'" if len(pair) < 2 else "expected one '=' between a key and a value"
            raise _invalid(f"invalid format {text!r}: {problem}, found {item!r}", "map")
        result[pair[0]] = pair[1]
    return result


def absolute_data_dir(text: str) -> str:
    """``DataDir`` is stored as an absolute path, as the original stores it."""
    if "$" in text:
        raise ConfigurationError(
            f"data dir path {go_quote(text)} contains a '$' character",
            code="ValidationError",
            component="config",
            hint="environment variables are not expanded; give the path itself",
        )
    if not text.strip():
        raise ConfigurationError("data dir path is empty", code="ValidationError", component="config")
    return str(Path(text).expanduser().absolute())


def write_setting(path: Path, key: ConfigKey, value: Any) -> None:
    """Set one key in a YAML config file (created if missing), keeping the file's other settings."""
    defaults = BacalhauConfig().to_wire()
    existing = canonical_keys(defaults, read_yaml_file(path)) if path.exists() else {}
    if key.name == "DataDir":
        value = absolute_data_dir(str(value))
    updated = set_path(existing, key.path, value)
    validate_config(merge_layers(defaults, updated))  # the file must still load
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(_lower_keys(updated, ()), sort_keys=True, allow_unicode=True, default_flow_style=False)
    _replace_file(path, text)


def _lower_keys(data: dict[str, Any], prefix: tuple[str, ...]) -> dict[str, Any]:
    """Config keys in lower case; the keys inside map values (``Labels``) are data and keep their case."""
    maps = {name for name, key in config_keys().items() if key.kind == "map"}
    result: dict[str, Any] = {}
    for key, value in data.items():
        path = (*prefix, key.lower())
        if isinstance(value, dict) and ".".join(path) not in maps:
            result[key.lower()] = _lower_keys(value, path)
        else:
            result[key.lower()] = value
    return result


def _replace_file(path: Path, text: str) -> None:
    """Write atomically, keeping an existing file's permissions (new files are private: they may hold tokens)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
