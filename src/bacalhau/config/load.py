"""Loading the config with the original's precedence: defaults < config files (``--config``, else
``$BACALHAU_DIR/config.yaml``) < ``BACALHAU_<KEY>`` environment variables < flags < ``-c Key=Value``.

Keys match case-insensitively. A config file is untrusted input: it is read up to a bound, every key in it must be
one of the table's, and a value of the wrong type is one error naming the key and the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bacalhau.config.keys import (
    CHILDREN,
    DEFAULT_DATA_DIR,
    LIST_KEYS_HINT,
    ConfigKey,
    config_keys,
    key_for_env,
    lookup_key,
)
from bacalhau.config.kinds import Invalid, brief, load_yaml, what
from bacalhau.config.model import BacalhauConfig, checked, invalid
from bacalhau.errors import ConfigurationError

CONFIG_FILE_NAME = "config.yaml"
# A config file is a page or two of settings; a bigger one is a mistake or an attack, and is not parsed.
MAX_CONFIG_FILE_BYTES = 1024 * 1024


def load_config(
    *,
    data_dir: str | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
    flags: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> BacalhauConfig:
    env = os.environ if environ is None else environ
    directory = data_dir or env.get("BACALHAU_DIR") or str(DEFAULT_DATA_DIR)
    settings: dict[str, Any] = {"DataDir": directory}

    files = list(config_files or [])
    default_file = Path(directory).expanduser() / CONFIG_FILE_NAME
    if not files and default_file.exists():
        files = [str(default_file)]
    for name in files:
        settings.update(file_settings(Path(name)))

    for name, text in env.items():
        key = key_for_env(name) if text else None  # an empty variable sets nothing, as in the original
        if key is not None:
            settings[key.name] = parsed(key, text, f"environment variable {name}")

    for dotted, value in (flags or {}).items():
        if value is not None:
            key = lookup_key(dotted)
            settings[key.name] = checked(key, value, "flags")

    for item in overrides or []:
        key, value = parse_override(item)
        settings[key.name] = value

    if data_dir:
        settings["DataDir"] = data_dir
    return BacalhauConfig.of(settings)


def parse_override(item: str) -> tuple[ConfigKey, Any]:
    """One ``-c Key=Value`` (or bare ``-c Key``, meaning true for a boolean key) as a key and typed value."""
    name, sep, text = item.partition("=")
    key = lookup_key(name)
    if not sep and key.kind.name != "bool":
        raise ConfigurationError(
            f"config flag key {name.strip()!r} requires a value",
            component="config",
            hint=f"give it one, e.g. --config {name.strip()}=<value>",
        )
    return key, parsed(key, text if sep else "true", "-c")


def parsed(key: ConfigKey, text: str, source: str) -> Any:
    """A key's value from text (an environment variable or ``-c``)."""
    try:
        return key.kind.parse(text)
    except Invalid as exc:
        raise invalid(key, exc, source) from None


def file_settings(path: Path) -> dict[str, Any]:
    """The keys a config file sets, by canonical name, with their checked values."""
    return document_settings(read_yaml_file(path), f"config file {path}")


def document_settings(document: Mapping[Any, Any], source: str) -> dict[str, Any]:
    """The keys a config document sets: nested mappings whose keys, in any case, lead to the table's keys. A key
    with no value (``Labels:``) sets nothing."""
    settings: dict[str, Any] = {}

    def walk(mapping: Mapping[Any, Any], parent: str, shown: str) -> None:
        for given, value in mapping.items():
            where = f"{shown}.{given}" if shown else str(given)
            name = CHILDREN.get(parent, {}).get(str(given).lower())
            if name is None:
                raise ConfigurationError(
                    f"{brief(where)} is not a valid config key",
                    component="config",
                    hint=f"in {source}; {LIST_KEYS_HINT}",
                )
            key = config_keys().get(name.lower())
            if value is None:
                continue
            if key is not None:
                settings[name] = checked(key, value, source)
            elif isinstance(value, dict):
                walk(value, name, where)
            else:
                raise ConfigurationError(
                    f"invalid configuration: expected a mapping of keys for {name}, got {what(value)}, in {source}",
                    component="config",
                    hint=LIST_KEYS_HINT,
                )

    walk(document, "", "")
    return settings


def read_yaml_file(path: Path) -> dict[Any, Any]:
    """A config file's document: a mapping, from a file of at most ``MAX_CONFIG_FILE_BYTES``."""
    try:
        with path.expanduser().open("rb") as stream:
            data = stream.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_FILE_BYTES:
        raise ConfigurationError(f"config file {path} is larger than {MAX_CONFIG_FILE_BYTES} bytes")
    try:
        loaded = load_yaml(data) or {}
    except Invalid as exc:
        raise ConfigurationError(f"config file {path} {exc.problem}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping of keys")
    return loaded
