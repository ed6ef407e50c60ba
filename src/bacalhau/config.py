"""Configuration with the original's key names and precedence.

defaults < config file (``--config`` or ``$BACALHAU_DIR/config.yaml``) < ``BACALHAU_<KEY>`` environment < flags
< ``-c Key=Value``. Keys are matched case-insensitively; durations use Go's syntax (``1m30s``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from bacalhau.errors import BacalhauError
from bacalhau.models.base import WireModel

DEFAULT_DATA_DIR = Path("~/.bacalhau")
ENV_PREFIX = "BACALHAU_"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds as a float); a bare number is taken as seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    sign = -1.0 if value.startswith("-") else 1.0
    value = value.lstrip("+-")
    if not value:
        raise ValueError(f"invalid duration {text!r}")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


class ApiSection(WireModel):
    host: str = "0.0.0.0"
    port: int = 1234


class AuthSection(WireModel):
    token: str = ""


class NodeManagerSection(WireModel):
    disconnect_timeout: str = "1m"
    manual_approval: bool = False


class SchedulerSection(WireModel):
    worker_count: int = 4
    queue_backoff: str = "1m"
    housekeeping_interval: str = "30s"
    max_retries: int = 2


class OrchestratorSection(WireModel):
    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 4222
    advertise: str = ""
    auth: AuthSection = Field(default_factory=AuthSection)
    node_manager: NodeManagerSection = Field(default_factory=NodeManagerSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)


class HeartbeatSection(WireModel):
    interval: str = "15s"
    info_update_interval: str = "1m"


class CapacitySection(WireModel):
    cpu: str = "80%"
    memory: str = "80%"
    disk: str = "80%"
    gpu: str = "100%"


class LogsSection(WireModel):
    retention: str = "1h"


class EnvSection(WireModel):
    allow_list: list[str] = Field(default_factory=list)


class ComputeSection(WireModel):
    enabled: bool = False
    orchestrators: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    auth: AuthSection = Field(default_factory=AuthSection)
    heartbeat: HeartbeatSection = Field(default_factory=HeartbeatSection)
    allocated_capacity: CapacitySection = Field(default_factory=CapacitySection)
    allow_listed_local_paths: list[str] = Field(default_factory=list)
    env: EnvSection = Field(default_factory=EnvSection)
    logs: LogsSection = Field(default_factory=LogsSection)


class LocalPublisherSection(WireModel):
    address: str = "127.0.0.1"
    port: int = 6001


class S3PublisherSection(WireModel):
    pre_signed_url_disabled: bool = Field(default=False, alias="PreSignedURLDisabled")
    pre_signed_url_expiration: str = Field(default="1h", alias="PreSignedURLExpiration")


class PublisherTypesSection(WireModel):
    local: LocalPublisherSection = Field(default_factory=LocalPublisherSection)
    s3: S3PublisherSection = Field(default_factory=S3PublisherSection, alias="S3")


class PublishersSection(WireModel):
    disabled: list[str] = Field(default_factory=list)
    types: PublisherTypesSection = Field(default_factory=PublisherTypesSection)


class DisabledSection(WireModel):
    disabled: list[str] = Field(default_factory=list)


class IpfsSection(WireModel):
    endpoint: str = ""


class InputSourceTypesSection(WireModel):
    ipfs: IpfsSection = Field(default_factory=IpfsSection, alias="IPFS")


class InputSourcesSection(WireModel):
    disabled: list[str] = Field(default_factory=list)
    types: InputSourceTypesSection = Field(default_factory=InputSourceTypesSection)
    max_retry_count: int = 3
    max_download_size: str = "10gb"


class ResourcesDefaults(WireModel):
    cpu: str = "500m"
    memory: str = "1Gb"
    disk: str = ""
    gpu: str = ""


class PublisherDefault(WireModel):
    type: str = ""


class TimeoutDefaults(WireModel):
    execution_timeout: str = "0s"
    total_timeout: str = "0s"
    queue_timeout: str = "0s"


class TaskDefaults(WireModel):
    resources: ResourcesDefaults = Field(default_factory=ResourcesDefaults)
    publisher: PublisherDefault = Field(default_factory=PublisherDefault)
    timeouts: TimeoutDefaults = Field(default_factory=TimeoutDefaults)


class JobTypeDefaults(WireModel):
    priority: int = 0
    task: TaskDefaults = Field(default_factory=TaskDefaults)


class JobDefaultsSection(WireModel):
    batch: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    ops: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    daemon: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    service: JobTypeDefaults = Field(default_factory=JobTypeDefaults)


class LoggingSection(WireModel):
    level: str = "info"
    mode: str = "default"


class UpdateConfigSection(WireModel):
    interval: str = "24h0m0s"


class BacalhauConfig(WireModel):
    api: ApiSection = Field(default_factory=ApiSection, alias="API")
    name_provider: str = "puuid"
    data_dir: str = str(DEFAULT_DATA_DIR)
    orchestrator: OrchestratorSection = Field(default_factory=OrchestratorSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    labels: dict[str, str] = Field(default_factory=dict)
    publishers: PublishersSection = Field(default_factory=PublishersSection)
    input_sources: InputSourcesSection = Field(default_factory=InputSourcesSection)
    engines: DisabledSection = Field(default_factory=DisabledSection)
    job_defaults: JobDefaultsSection = Field(default_factory=JobDefaultsSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)
    update_config: UpdateConfigSection = Field(default_factory=UpdateConfigSection)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def redacted(self) -> dict[str, Any]:
        """The config as ``/agent/config`` shows it: secrets masked."""
        data = self.to_wire()
        for section in ("Orchestrator", "Compute"):
            if data[section]["Auth"].get("Token"):
                data[section]["Auth"]["Token"] = "********"
        return data


def _canonical_keys(defaults: dict[str, Any], layer: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``layer`` with each key spelled as in ``defaults`` (matched case-insensitively); unknown keys are errors."""
    lookup = {key.lower(): key for key in defaults}
    result: dict[str, Any] = {}
    for key, value in layer.items():
        canonical = lookup.get(str(key).lower())
        path = f"{where}.{key}" if where else str(key)
        if canonical is None:
            raise BacalhauError(f"{path!r} is not a valid config key", code="ConfigurationError")
        default = defaults[canonical]
        if isinstance(default, dict) and isinstance(value, dict) and canonical != "Labels":
            result[canonical] = _canonical_keys(default, value, path)
        else:
            result[canonical] = value
    return result


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "Labels":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_key(defaults: dict[str, Any], dotted: str) -> tuple[list[str], Any]:
    """A dotted key (``api.port``) as its canonical path, with the default value there."""
    path, node = [], defaults
    for part in dotted.split("."):
        if not isinstance(node, dict):
            raise BacalhauError(f"{dotted!r} is not a valid config key", code="ConfigurationError")
        canonical = {k.lower(): k for k in node}.get(part.lower())
        if canonical is None:
            raise BacalhauError(
                f"{dotted!r} is not a valid config key",
                code="ConfigurationError",
                hint="run 'bacalhau config list' to see the valid keys",
            )
        path.append(canonical)
        node = node[canonical]
    return path, node


def _env_key(defaults: dict[str, Any], words: list[str]) -> list[str] | None:
    """Match ``API_HOST``-style words against the key tree (keys never contain underscores)."""
    if not words:
        return []
    for key, value in defaults.items():
        if key.lower() == words[0].lower():
            if len(words) == 1:
                return [key]
            if isinstance(value, dict) and key != "Labels":
                rest = _env_key(value, words[1:])
                if rest is not None:
                    return [key, *rest]
    return None


def coerce(text: str, default: Any) -> Any:
    """A string value (from the environment or ``-c``) in the type of the key's default."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "t", "true", "yes", "y", "on", ""):
            return True
        if lowered in ("0", "f", "false", "no", "n", "off"):
            return False
        raise BacalhauError(f"invalid boolean value {text!r}", code="ConfigurationError")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise BacalhauError(f"invalid integer value {text!r}", code="ConfigurationError") from None
    if isinstance(default, list):
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(default, dict):
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {key.strip(): (value[0].strip() if value else "") for key, *value in pairs}
    return text


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    layer: dict[str, Any] = value
    for key in reversed(path):
        layer = {key: layer}
    return _merge(data, layer)


def load_config(
    *,
    data_dir: str | None = None,
    config_files: list[str] | None = None,
    overrides: list[str] | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> BacalhauConfig:
    env = dict(os.environ if environ is None else environ)
    defaults = BacalhauConfig().to_wire()
    data = dict(defaults)
    directory = data_dir or env.get("BACALHAU_DIR") or str(DEFAULT_DATA_DIR)
    data["DataDir"] = directory

    files = list(config_files or [])
    default_file = Path(directory).expanduser() / "config.yaml"
    if not files and default_file.exists():
        files = [str(default_file)]
    for name in files:
        data = _merge(data, _canonical_keys(defaults, _read_yaml(Path(name))))

    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "BACALHAU_DIR":
            continue
        path = _env_key(defaults, name[len(ENV_PREFIX) :].split("_"))
        if path:
            data = _set_path(data, path, coerce(value, _default_at(defaults, path)))

    for dotted, value in (flags or {}).items():
        if value is not None:
            path, _ = resolve_key(defaults, dotted)
            data = _set_path(data, path, value)

    for item in overrides or []:
        key, sep, text = item.partition("=")
        path, default = resolve_key(defaults, key.strip())
        data = _set_path(data, path, coerce(text if sep else "true", default))

    if data_dir:
        data["DataDir"] = data_dir
    return BacalhauConfig.model_validate(data)


def _default_at(defaults: dict[str, Any], path: list[str]) -> Any:
    node: Any = defaults
    for key in path:
        node = node[key]
    return node


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.expanduser().read_text()) or {}
    except OSError as exc:
        raise BacalhauError(f"cannot read config file {path}: {exc.strerror}", code="ConfigurationError") from None
    except yaml.YAMLError as exc:
        raise BacalhauError(f"config file {path} is not valid YAML: {exc}", code="ConfigurationError") from None
    if not isinstance(loaded, dict):
        raise BacalhauError(f"config file {path} must hold a mapping of keys", code="ConfigurationError")
    return loaded
