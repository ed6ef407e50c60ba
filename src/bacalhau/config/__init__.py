"""The node's and the CLI's configuration: the original's keys (``keys.py``), their values' types (``kinds.py``),
loading them (``load.py``) into the typed config (``model.py``), ``config set`` (``set.py``), CLI profiles
(``profiles.py``) and Go's durations (``durations.py``)."""

from bacalhau.config.durations import format_duration, parse_duration, parse_duration_ns
from bacalhau.config.keys import DEFAULT_DATA_DIR, KEYS, ConfigKey, Support, config_keys, go_quote, lookup_key
from bacalhau.config.load import CONFIG_FILE_NAME, load_config
from bacalhau.config.model import ApiAuthSection, AuthUserSection, BacalhauConfig

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_DATA_DIR",
    "KEYS",
    "ApiAuthSection",
    "AuthUserSection",
    "BacalhauConfig",
    "ConfigKey",
    "Support",
    "config_keys",
    "format_duration",
    "go_quote",
    "load_config",
    "lookup_key",
    "parse_duration",
    "parse_duration_ns",
]
