"""Configuration with the original's key names and precedence.

defaults < config file (``--config`` or ``$BACALHAU_DIR/config.yaml``) < ``BACALHAU_<KEY>`` environment < flags
< ``-c Key=Value``. Keys are matched case-insensitively; durations use Go's syntax (``1m30s``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, get_origin

import yaml
from pydantic import AfterValidator, ConfigDict, Field, ValidationError

from bacalhau.config.durations import parse_duration_ns
from bacalhau.errors import ConfigurationError
from bacalhau.models.base import WireModel
from bacalhau.models.limits import DEFAULT_MAX_COUNT, INT64_MAX

DEFAULT_DATA_DIR = Path("~/.bacalhau")
ENV_PREFIX = "BACALHAU_"
CONFIG_FILE_NAME = "config.yaml"
LIST_KEYS_HINT = "run 'bacalhau config list' for the complete list of valid config keys"


class DurationMarker:
    """Marks a ``str`` config field that holds a Go duration (``config set`` normalises it, files are checked)."""


def _valid_duration(value: str) -> str:
    parse_duration_ns(value)  # ValueError: invalid duration '...'
    return value


Duration = Annotated[str, DurationMarker(), AfterValidator(_valid_duration)]


class ConfigSection(WireModel):
    """Config files are read as the original's loader (viper) reads them: ``Port: "1234"`` is the number 1234.
    Only the REST API is strict about JSON types."""

    model_config = ConfigDict(strict=False)


class ApiTlsSection(ConfigSection):
    """TLS for the API: the server's certificate (or one made for it), and how clients check it."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = Field(default="", alias="CAFile")
    use_tls: bool = Field(default=False, alias="UseTLS")
    insecure: bool = False
    self_signed: bool = False
    auto_cert: str = ""
    auto_cert_cache_path: str = ""


class CapabilitySection(ConfigSection):
    actions: list[str] = Field(default_factory=list)


class AuthUserSection(ConfigSection):
    """One API user: a username and password (plain or bcrypt) or an API key, with what it may do."""

    alias: str = ""
    username: str = ""
    password: str = ""
    api_key: str = Field(default="", alias="APIKey")
    capabilities: list[CapabilitySection] = Field(default_factory=list)


class Oauth2Section(ConfigSection):
    provider_id: str = ""
    provider_name: str = ""
    token_endpoint: str = ""
    jwks_uri: str = Field(default="", alias="JWKSUri")
    issuer: str = ""
    device_client_id: str = ""
    audience: str = ""
    scopes: list[str] = Field(default_factory=list)
    device_authorization_endpoint: str = ""
    polling_interval: int = 0


class ApiAuthSection(ConfigSection):
    methods: dict[str, Any] = Field(default_factory=dict)
    access_policy_path: str = ""
    users: list[AuthUserSection] = Field(default_factory=list)
    oauth2: Oauth2Section = Field(default_factory=Oauth2Section)


class ApiSection(ConfigSection):
    host: str = "0.0.0.0"
    port: int = 1234
    tls: ApiTlsSection = Field(default_factory=ApiTlsSection, alias="TLS")
    auth: ApiAuthSection = Field(default_factory=ApiAuthSection)


class AuthSection(ConfigSection):
    token: str = ""


class NodeManagerSection(ConfigSection):
    disconnect_timeout: Duration = "1m"
    manual_approval: bool = False


class SchedulerSection(ConfigSection):
    worker_count: int = 4
    queue_backoff: Duration = "1m"
    housekeeping_interval: Duration = "30s"
    max_retries: int = 2


class JobLimitsSection(ConfigSection):
    """Bounds on what one job may ask for (ours; the original has none): see ``bacalhau.models.limits``."""

    max_count: Annotated[int, Field(ge=1, le=INT64_MAX)] = DEFAULT_MAX_COUNT


class OrchestratorTlsSection(ConfigSection):
    """TLS on the orchestrator's NATS server. ``RequireClientCert`` (ours) asks every client for a certificate signed
    by ``CACert``: mutual TLS, so that only holders of a node certificate can connect at all."""

    server_key: str = ""
    server_cert: str = ""
    server_timeout: int = 0
    ca_cert: str = Field(default="", alias="CACert")
    require_client_cert: bool = False


class OrchestratorSection(ConfigSection):
    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 4222
    advertise: str = ""
    auth: AuthSection = Field(default_factory=AuthSection)
    tls: OrchestratorTlsSection = Field(default_factory=OrchestratorTlsSection, alias="TLS")
    node_manager: NodeManagerSection = Field(default_factory=NodeManagerSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    job_limits: JobLimitsSection = Field(default_factory=JobLimitsSection)


class HeartbeatSection(ConfigSection):
    interval: Duration = "15s"
    info_update_interval: Duration = "1m"


class CapacitySection(ConfigSection):
    cpu: str = "80%"
    memory: str = "80%"
    disk: str = "80%"
    gpu: str = "100%"


class LogsSection(ConfigSection):
    retention: Duration = "1h"


class EnvSection(ConfigSection):
    allow_list: list[str] = Field(default_factory=list)


class ComputeTlsSection(ConfigSection):
    """TLS to the orchestrator: the CA to trust, whether a server without TLS is refused, and (ours, for an
    orchestrator that requires client certificates) this node's certificate and key."""

    ca_cert: str = Field(default="", alias="CACert")
    require_tls: bool = Field(default=False, alias="RequireTLS")
    client_cert: str = ""
    client_key: str = ""


class ComputeSection(ConfigSection):
    enabled: bool = False
    orchestrators: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    auth: AuthSection = Field(default_factory=AuthSection)
    tls: ComputeTlsSection = Field(default_factory=ComputeTlsSection, alias="TLS")
    heartbeat: HeartbeatSection = Field(default_factory=HeartbeatSection)
    allocated_capacity: CapacitySection = Field(default_factory=CapacitySection)
    allow_listed_local_paths: list[str] = Field(default_factory=list)
    env: EnvSection = Field(default_factory=EnvSection)
    logs: LogsSection = Field(default_factory=LogsSection)


class LocalPublisherSection(ConfigSection):
    address: str = "127.0.0.1"
    port: int = 6001


class S3PublisherSection(ConfigSection):
    pre_signed_url_disabled: bool = Field(default=False, alias="PreSignedURLDisabled")
    pre_signed_url_expiration: Duration = Field(default="1h", alias="PreSignedURLExpiration")


class PublisherTypesSection(ConfigSection):
    local: LocalPublisherSection = Field(default_factory=LocalPublisherSection)
    s3: S3PublisherSection = Field(default_factory=S3PublisherSection, alias="S3")


class PublishersSection(ConfigSection):
    disabled: list[str] = Field(default_factory=list)
    types: PublisherTypesSection = Field(default_factory=PublisherTypesSection)


class DisabledSection(ConfigSection):
    disabled: list[str] = Field(default_factory=list)


class IpfsSection(ConfigSection):
    endpoint: str = ""


class InputSourceTypesSection(ConfigSection):
    ipfs: IpfsSection = Field(default_factory=IpfsSection, alias="IPFS")


class InputSourcesSection(ConfigSection):
    disabled: list[str] = Field(default_factory=list)
    types: InputSourceTypesSection = Field(default_factory=InputSourceTypesSection)
    max_retry_count: int = 3
    max_download_size: str = "10gb"


class ResourcesDefaults(ConfigSection):
    cpu: str = "500m"
    memory: str = "1Gb"
    disk: str = ""
    gpu: str = ""


class PublisherDefault(ConfigSection):
    type: str = ""


class TimeoutDefaults(ConfigSection):
    execution_timeout: Duration = "0s"
    total_timeout: Duration = "0s"
    queue_timeout: Duration = "0s"


class TaskDefaults(ConfigSection):
    resources: ResourcesDefaults = Field(default_factory=ResourcesDefaults)
    publisher: PublisherDefault = Field(default_factory=PublisherDefault)
    timeouts: TimeoutDefaults = Field(default_factory=TimeoutDefaults)


class JobTypeDefaults(ConfigSection):
    priority: int = 0
    task: TaskDefaults = Field(default_factory=TaskDefaults)


class JobDefaultsSection(ConfigSection):
    batch: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    ops: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    daemon: JobTypeDefaults = Field(default_factory=JobTypeDefaults)
    service: JobTypeDefaults = Field(default_factory=JobTypeDefaults)


class LoggingSection(ConfigSection):
    level: str = "info"
    mode: str = "default"


class UpdateConfigSection(ConfigSection):
    interval: Duration = "24h0m0s"


class BacalhauConfig(ConfigSection):
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
        """The config as ``/agent/config`` and ``config list`` show it: every secret masked."""
        data = self.to_wire()
        for section in ("Orchestrator", "Compute"):
            _mask(data[section]["Auth"], "Token")
        for user in data["API"]["Auth"]["Users"]:
            _mask(user, "Password")
            _mask(user, "APIKey")
        return data


MASK = "********"


def _mask(section: dict[str, Any], key: str) -> None:
    if section.get(key):
        section[key] = MASK


def canonical_keys(defaults: dict[str, Any], layer: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``layer`` with each key spelled as in ``defaults`` (matched case-insensitively); unknown keys are errors."""
    lookup = {key.lower(): key for key in defaults}
    result: dict[str, Any] = {}
    for key, value in layer.items():
        canonical = lookup.get(str(key).lower())
        path = f"{where}.{key}" if where else str(key)
        if canonical is None:
            raise ConfigurationError(f"{path!r} is not a valid config key")
        default = defaults[canonical]
        if isinstance(default, dict) and isinstance(value, dict) and canonical != "Labels":
            result[canonical] = canonical_keys(default, value, path)
        else:
            result[canonical] = value
    return result


def merge_layers(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "Labels":
            merged[key] = merge_layers(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class ConfigKey:
    """One settable config key (a leaf of the config tree): its canonical path, value kind and default."""

    path: tuple[str, ...]
    kind: str  # "string", "int", "bool", "duration", "list" or "map"
    default: Any

    @property
    def name(self) -> str:
        """The dotted name as the original spells it: ``API.Host``, ``Compute.Heartbeat.Interval``."""
        return ".".join(self.path)


def _kind(annotation: Any, metadata: list[Any]) -> str:
    if any(isinstance(item, DurationMarker) for item in metadata):
        return "duration"
    origin = get_origin(annotation) or annotation
    return {bool: "bool", int: "int", list: "list", dict: "map"}.get(origin, "string")


def _leaves(model: type[WireModel], instance: WireModel, prefix: tuple[str, ...]) -> list[ConfigKey]:
    keys: list[ConfigKey] = []
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        value = getattr(instance, name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, WireModel):
            keys.extend(_leaves(annotation, value, path))
        else:
            keys.append(ConfigKey(path, _kind(annotation, field.metadata), value))
    return keys


@cache
def config_keys() -> dict[str, ConfigKey]:
    """Every settable key, by its lower-case dotted name (keys match case-insensitively everywhere)."""
    return {key.name.lower(): key for key in _leaves(BacalhauConfig, BacalhauConfig(), ())}


def lookup_key(dotted: str) -> ConfigKey:
    """A dotted key (any case) as a config key; structs (``Compute.Heartbeat``) and unknown names are errors."""
    key = config_keys().get(dotted.strip().lower())
    if key is None:
        raise ConfigurationError(
            f"{go_quote(dotted.strip().lower())} is not a valid config key",
            component="config",
            hint=LIST_KEYS_HINT,
        )
    return key


def go_quote(text: str) -> str:
    """Go's ``%q``: a double-quoted string with escapes (as the original's error messages quote keys)."""
    return json.dumps(text, ensure_ascii=False)


def _env_keys() -> dict[str, ConfigKey]:
    """``API_HOST``-style names for every key (keys never contain underscores, so the mapping is unambiguous)."""
    return {name.replace(".", "_").upper(): key for name, key in config_keys().items()}


def coerce(text: str, default: Any) -> Any:
    """A string value (from the environment or ``-c``) in the type of the key's default."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "t", "true", "yes", "y", "on", ""):
            return True
        if lowered in ("0", "f", "false", "no", "n", "off"):
            return False
        raise ConfigurationError(f"invalid boolean value {text!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"invalid integer value {text!r}") from None
    if isinstance(default, list):
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(default, dict):
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {key.strip(): (value[0].strip() if value else "") for key, *value in pairs}
    return text


def set_path(data: dict[str, Any], path: tuple[str, ...] | list[str], value: Any) -> dict[str, Any]:
    layer: dict[str, Any] = value
    for key in reversed(path):
        layer = {key: layer}
    return merge_layers(data, layer)


def parse_override(item: str) -> tuple[ConfigKey, Any]:
    """One ``-c Key=Value`` (or bare ``-c Key``, meaning true for a boolean key) as a key and typed value."""
    name, sep, text = item.partition("=")
    key = lookup_key(name)
    if not sep and key.kind != "bool":
        raise ConfigurationError(
            f"config flag key {name.strip()!r} requires a value",
            component="config",
            hint=f"give it one, e.g. --config {name.strip()}=<value>",
        )
    return key, coerce(text if sep else "true", key.default)


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
    default_file = Path(directory).expanduser() / CONFIG_FILE_NAME
    if not files and default_file.exists():
        files = [str(default_file)]
    for name in files:
        data = merge_layers(data, canonical_keys(defaults, read_yaml_file(Path(name))))

    env_keys = _env_keys()
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "BACALHAU_DIR":
            continue
        key = env_keys.get(name[len(ENV_PREFIX) :].upper())
        if key is not None:
            data = set_path(data, key.path, coerce(value, key.default))

    for dotted, value in (flags or {}).items():
        if value is not None:
            data = set_path(data, lookup_key(dotted).path, value)

    for item in overrides or []:
        key, value = parse_override(item)
        data = set_path(data, key.path, value)

    if data_dir:
        data["DataDir"] = data_dir
    return validate_config(data)


def validate_config(data: dict[str, Any]) -> BacalhauConfig:
    """The config model from merged layers; a value of the wrong type is one clear configuration error."""
    try:
        return BacalhauConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        hint = "durations look like 30s, 5m or 1h30m" if "duration" in message else ""
        raise ConfigurationError(
            f"invalid configuration: {message} for {where}",
            component="config",
            hint=hint or "run 'bacalhau config list' to see every key with its current value",
        ) from None


def read_yaml_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.expanduser().read_text()) or {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"config file {path} must hold a mapping of keys")
    return loaded
