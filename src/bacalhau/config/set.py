"""``bacalhau config set``: check a value against its key's type, as the original does, and write it to a file.

The file keeps its other settings; keys are written in lower case, as the original (viper) writes them, and read
back case-insensitively. Values are written as they load (durations as Go prints them: ``90s`` becomes ``1m30s``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bacalhau.config.keys import ConfigKey, go_quote
from bacalhau.config.kinds import Invalid
from bacalhau.config.load import file_settings
from bacalhau.config.model import nested
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
    "structured": "Accepted formats: YAML or JSON, e.g. '[{Username: alice, Password: ..., Capabilities: "
    '[{Actions: ["read:*"]}]}]\'',
}
_EXPECTS = {"duration": "a valid duration value", "bool": "a boolean value", "int": "an integer value"}


def _invalid(message: str, kind: str) -> ConfigurationError:
    return ConfigurationError(message, code="ValidationError", component="config", hint=_FORMAT_HINTS.get(kind, ""))


def cast_value(key: ConfigKey, values: list[str]) -> Any:
    """The typed value ``config set KEY VALUE...`` stores: lists take several values or commas, maps ``k=v,...``,
    structures YAML or JSON. The text must be in Go's syntax for the type; the value must then suit the key."""
    name, kind = go_quote(key.name.lower()), key.kind.name
    if kind == "list":
        if values in ([], [""]):
            return []  # ``config set publishers.disabled=`` clears a list
        items = [part.strip() for value in values for part in value.split(",")]
        if any(not item for item in items):
            raise _invalid(f"config key {name} has an empty item in {','.join(values)!r}", kind)
        return items
    if len(values) != 1:
        raise _invalid(f"config key {name} takes one value, received {len(values)}", kind)
    text = values[0]
    if (kind == "int" and not _INTEGER.fullmatch(text)) or (kind == "bool" and text not in (*_TRUE, *_FALSE)):
        raise _expects(name, kind, text)
    try:
        if kind == "map":
            return key.kind.check(_parse_map(text))
        if kind == "bool":
            return text in _TRUE
        return key.kind.parse(text)
    except Invalid as exc:
        if kind == "duration":
            raise _expects(name, kind, text) from None
        raise _invalid(f"config key {name}: {exc.problem}{exc.where and f' (at {exc.where})'}", kind) from None


def _expects(name: str, kind: str, text: str) -> ConfigurationError:
    """The original's message for text that is not in Go's syntax for the key's type."""
    return _invalid(f"config key: {name} expects {_EXPECTS[kind]}, received: {go_quote(text)}", kind)


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
    """Set one key in a YAML config file (created if missing), keeping the file's other settings (which must load)."""
    settings = file_settings(path) if path.exists() else {}
    settings[key.name] = absolute_data_dir(str(value)) if key.name == "DataDir" else value
    document = nested(([part.lower() for part in name.split(".")], item) for name, item in settings.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace_file(path, yaml.safe_dump(document, sort_keys=True, allow_unicode=True, default_flow_style=False))


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
