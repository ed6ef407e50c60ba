"""The node's and the CLI's configuration: the original's keys, files, environment variables and precedence."""

from bacalhau.config.durations import format_duration, parse_duration, parse_duration_ns
from bacalhau.config.model import (
    CONFIG_FILE_NAME,
    DEFAULT_DATA_DIR,
    ApiAuthSection,
    AuthUserSection,
    BacalhauConfig,
    ConfigKey,
    config_keys,
    go_quote,
    load_config,
    lookup_key,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_DATA_DIR",
    "ApiAuthSection",
    "AuthUserSection",
    "BacalhauConfig",
    "ConfigKey",
    "config_keys",
    "format_duration",
    "go_quote",
    "load_config",
    "lookup_key",
    "parse_duration",
    "parse_duration_ns",
]
