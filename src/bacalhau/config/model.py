"""The loaded config: every key's value, and typed attributes for the keys this node uses.

The values are kept flat, by canonical dotted name, as ``load.py`` checked them against the table in ``keys.py``.
A section (``config.api.tls``) is a view of the names under one part of the tree; its attributes are spelled as
Python spells names (``ca_file`` reads ``API.TLS.CAFile``) and typed for the code that reads them. Defaults and
types live in the table only; ``tests/unit/test_config_keys.py`` checks that every attribute names a used key of
its type, and that every used key has an attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast, overload

from bacalhau.config.keys import AUTH_USER, CAPABILITY, CHILDREN, KEYS, ConfigKey, Support, lookup_key
from bacalhau.config.kinds import Invalid, Struct
from bacalhau.errors import ConfigurationError

T = TypeVar("T")
S = TypeVar("S", bound="Section")


class Section:
    """A view of the values under one part of the config tree (``parent``: ``API.TLS``; ``""`` for the root)."""

    __slots__ = ("_parent", "_values")

    def __init__(self, values: dict[str, Any], parent: str = "") -> None:
        self._values = values
        self._parent = parent

    def _name(self, attribute: str) -> str:
        """The canonical name an attribute reads: ``ca_file`` under ``API.TLS`` is ``API.TLS.CAFile``."""
        return CHILDREN[self._parent][attribute.replace("_", "")]

    def to_wire(self) -> dict[str, Any]:
        """This part of the tree as a document, keys spelled as the original spells them."""
        start = len(self._parent) + 1 if self._parent else 0
        return nested(
            (name[start:].split("."), value)
            for name, value in self._values.items()
            if not self._parent or name.startswith(self._parent + ".")
        )


class StructSection(Section):
    """A view of one structured value (an API user): its fields, by the names its kind gives them."""

    __slots__ = ()
    kind: ClassVar[Struct]

    def _name(self, attribute: str) -> str:
        return self.kind.spelling[attribute.replace("_", "")]

    def to_wire(self) -> dict[str, Any]:
        return dict(self._values)


class Setting(Generic[T]):
    """An attribute that reads and writes one key of its section."""

    def __set_name__(self, owner: type[Section], name: str) -> None:
        self._attribute = name

    @overload
    def __get__(self, instance: None, owner: type[Section]) -> Self: ...

    @overload
    def __get__(self, instance: Section, owner: type[Section]) -> T: ...

    def __get__(self, instance: Section | None, owner: type[Section]) -> T | Self:
        if instance is None:
            return self
        return cast(T, instance._values[instance._name(self._attribute)])

    def __set__(self, instance: Section, value: T) -> None:
        instance._values[instance._name(self._attribute)] = value


class Part(Generic[S]):
    """An attribute that is a section of its own (``config.api``)."""

    def __init__(self, section: type[S]) -> None:
        self.section = section

    def __set_name__(self, owner: type[Section], name: str) -> None:
        self._attribute = name

    def __get__(self, instance: Section, owner: type[Section]) -> S:
        return self.section(instance._values, instance._name(self._attribute))


class Parts(Generic[S]):
    """An attribute that is a list of structured values (``config.api.auth.users``)."""

    def __init__(self, section: type[S]) -> None:
        self.section = section

    def __set_name__(self, owner: type[Section], name: str) -> None:
        self._attribute = name

    def __get__(self, instance: Section, owner: type[Section]) -> list[S]:
        return [self.section(item) for item in instance._values[instance._name(self._attribute)]]


class ApiTlsSection(Section):
    __slots__ = ()
    cert_file = Setting[str]()
    key_file = Setting[str]()
    ca_file = Setting[str]()
    use_tls = Setting[bool]()
    insecure = Setting[bool]()
    self_signed = Setting[bool]()
    auto_cert = Setting[str]()


class CapabilitySection(StructSection):
    __slots__ = ()
    kind = CAPABILITY
    actions = Setting[list[str]]()


class AuthUserSection(StructSection):
    """One API user: a username and password (plain or bcrypt) or an API key, with what it may do."""

    __slots__ = ()
    kind = AUTH_USER
    alias = Setting[str]()
    username = Setting[str]()
    password = Setting[str]()
    api_key = Setting[str]()
    capabilities = Parts(CapabilitySection)


class Oauth2Section(Section):
    """Read whole (``to_wire``) for ``/agent/authconfig``, which offers the SSO settings to clients."""

    __slots__ = ()
    provider_id = Setting[str]()


class ApiAuthSection(Section):
    __slots__ = ()
    access_policy_path = Setting[str]()
    users = Parts(AuthUserSection)
    oauth2 = Part(Oauth2Section)


class ApiSection(Section):
    __slots__ = ()
    host = Setting[str]()
    port = Setting[int]()
    tls = Part(ApiTlsSection)
    auth = Part(ApiAuthSection)


class AuthSection(Section):
    __slots__ = ()
    token = Setting[str]()


class NodeManagerSection(Section):
    __slots__ = ()
    disconnect_timeout = Setting[str]()
    manual_approval = Setting[bool]()


class SchedulerSection(Section):
    __slots__ = ()
    worker_count = Setting[int]()
    housekeeping_interval = Setting[str]()
    max_retries = Setting[int]()


class JobLimitsSection(Section):
    __slots__ = ()
    max_count = Setting[int]()


class OrchestratorTlsSection(Section):
    __slots__ = ()
    server_key = Setting[str]()
    server_cert = Setting[str]()
    server_timeout = Setting[int]()
    ca_cert = Setting[str]()
    require_client_cert = Setting[bool]()


class JobStoreSection(Section):
    __slots__ = ()
    type = Setting[str]()
    url = Setting[str]()


class ClusterSection(Section):
    __slots__ = ()
    name = Setting[str]()
    host = Setting[str]()
    port = Setting[int]()
    advertise = Setting[str]()
    peers = Setting[list[str]]()


class OrchestratorSection(Section):
    __slots__ = ()
    enabled = Setting[bool]()
    host = Setting[str]()
    port = Setting[int]()
    advertise = Setting[str]()
    auth = Part(AuthSection)
    tls = Part(OrchestratorTlsSection)
    cluster = Part(ClusterSection)
    node_manager = Part(NodeManagerSection)
    scheduler = Part(SchedulerSection)
    job_limits = Part(JobLimitsSection)
    job_store = Part(JobStoreSection)


class HeartbeatSection(Section):
    __slots__ = ()
    interval = Setting[str]()


class CapacitySection(Section):
    __slots__ = ()
    cpu = Setting[str]()
    memory = Setting[str]()
    disk = Setting[str]()
    gpu = Setting[str]()


class LogsSection(Section):
    __slots__ = ()
    retention = Setting[str]()


class EnvSection(Section):
    __slots__ = ()
    allow_list = Setting[list[str]]()


class ComputeTlsSection(Section):
    __slots__ = ()
    ca_cert = Setting[str]()
    require_tls = Setting[bool]()
    client_cert = Setting[str]()
    client_key = Setting[str]()


class ComputeNetworkSection(Section):
    __slots__ = ()
    port_range_start = Setting[int]()
    port_range_end = Setting[int]()


class ComputeSection(Section):
    __slots__ = ()
    enabled = Setting[bool]()
    orchestrators = Setting[list[str]]()
    auth = Part(AuthSection)
    tls = Part(ComputeTlsSection)
    heartbeat = Part(HeartbeatSection)
    allocated_capacity = Part(CapacitySection)
    allow_listed_local_paths = Setting[list[str]]()
    env = Part(EnvSection)
    logs = Part(LogsSection)
    network = Part(ComputeNetworkSection)


class LocalPublisherSection(Section):
    __slots__ = ()
    address = Setting[str]()
    port = Setting[int]()


class S3PublisherSection(Section):
    __slots__ = ()
    pre_signed_url_disabled = Setting[bool]()
    pre_signed_url_expiration = Setting[str]()


class PublisherTypesSection(Section):
    __slots__ = ()
    local = Part(LocalPublisherSection)
    s3 = Part(S3PublisherSection)


class PublishersSection(Section):
    __slots__ = ()
    disabled = Setting[list[str]]()
    types = Part(PublisherTypesSection)


class EnginesSection(Section):
    __slots__ = ()
    disabled = Setting[list[str]]()


class IpfsSection(Section):
    __slots__ = ()
    endpoint = Setting[str]()


class InputSourceTypesSection(Section):
    __slots__ = ()
    ipfs = Part(IpfsSection)


class InputSourcesSection(Section):
    __slots__ = ()
    disabled = Setting[list[str]]()
    types = Part(InputSourceTypesSection)
    max_retry_count = Setting[int]()
    max_download_size = Setting[str]()


class ResourcesDefaults(Section):
    __slots__ = ()
    cpu = Setting[str]()
    memory = Setting[str]()
    disk = Setting[str]()
    gpu = Setting[str]()


class PublisherDefault(Section):
    __slots__ = ()
    type = Setting[str]()


class TimeoutDefaults(Section):
    __slots__ = ()
    execution_timeout = Setting[str]()
    total_timeout = Setting[str]()
    queue_timeout = Setting[str]()


class TaskDefaults(Section):
    __slots__ = ()
    resources = Part(ResourcesDefaults)
    publisher = Part(PublisherDefault)
    timeouts = Part(TimeoutDefaults)


class JobTypeDefaults(Section):
    __slots__ = ()
    priority = Setting[int]()
    task = Part(TaskDefaults)


class JobDefaultsSection(Section):
    __slots__ = ()
    batch = Part(JobTypeDefaults)
    ops = Part(JobTypeDefaults)
    daemon = Part(JobTypeDefaults)
    service = Part(JobTypeDefaults)


class LoggingSection(Section):
    __slots__ = ()
    level = Setting[str]()
    mode = Setting[str]()


class WebUiSection(Section):
    __slots__ = ()
    enabled = Setting[bool]()
    listen = Setting[str]()
    backend = Setting[str]()


class JobAdmissionControlSection(Section):
    __slots__ = ()
    locality = Setting[str]()
    reject_stateless_jobs = Setting[bool]()
    reject_networked_jobs = Setting[bool]()
    probe_http = Setting[str]()
    probe_exec = Setting[str]()


class BacalhauConfig(Section):
    """The whole config. Build one with ``load.load_config`` (or ``defaults()`` and ``with_settings``)."""

    __slots__ = ()
    api = Part(ApiSection)
    name_provider = Setting[str]()
    data_dir = Setting[str]()
    orchestrator = Part(OrchestratorSection)
    compute = Part(ComputeSection)
    labels = Setting[dict[str, str]]()
    publishers = Part(PublishersSection)
    input_sources = Part(InputSourcesSection)
    engines = Part(EnginesSection)
    job_defaults = Part(JobDefaultsSection)
    job_admission_control = Part(JobAdmissionControlSection)
    logging = Part(LoggingSection)
    web_ui = Part(WebUiSection)

    @classmethod
    def defaults(cls) -> BacalhauConfig:
        return cls.of({})

    @classmethod
    def of(cls, settings: dict[str, Any]) -> BacalhauConfig:
        """The defaults, with ``settings`` (canonical names, values already checked) over them."""
        values = {key.name: key.kind.check(key.default) for key in KEYS}  # a check copies the lists and mappings
        values.update(settings)
        return cls(values)

    def with_settings(self, settings: dict[str, Any], source: str = "settings") -> BacalhauConfig:
        """A copy with some keys (dotted names, any case) set to new values, checked as a config file's are."""
        values = dict(self._values)
        for dotted, value in settings.items():
            key = lookup_key(dotted)
            values[key.name] = checked(key, value, source)
        return BacalhauConfig(values)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def redacted(self) -> dict[str, Any]:
        """The config as ``/agent/config`` and ``config list`` show it: every secret masked."""
        return nested((key.path, key.kind.shown(self._values[key.name])) for key in KEYS)

    def summary(self) -> dict[str, Any]:
        """The keys set to something other than their defaults, secrets masked: what ``/agent/debug`` shows."""
        return nested(
            (key.path, key.kind.shown(self._values[key.name]))
            for key in KEYS
            if self._values[key.name] != key.kind.check(key.default)
        )

    def secret_strings(self) -> list[str]:
        """Every secret the config holds (a token, a password, an API key): what is masked where it is shown, found
        by comparing each value with how it is shown. For scrubbing text that may quote one."""
        found: list[str] = []
        for key in KEYS:
            value = self._values[key.name]
            if value:
                _masked_parts(value, key.kind.shown(value), found)
        return sorted(set(found), key=len, reverse=True)

    def unsupported_settings(self) -> list[str]:
        """The keys set for features this node does not have (they change nothing)."""
        return [
            key.name for key in KEYS if key.support is Support.UNSUPPORTED and self._values[key.name] != key.default
        ]


def _masked_parts(value: Any, shown: Any, found: list[str]) -> None:
    """Collect the strings of ``value`` that ``shown`` (the same shape, secrets masked) does not show as they are."""
    if isinstance(value, str):
        if value and shown != value:
            found.append(value)
    elif isinstance(value, dict) and isinstance(shown, dict):
        for name, part in value.items():
            _masked_parts(part, shown.get(name), found)
    elif isinstance(value, list | tuple) and isinstance(shown, list | tuple):
        for part, shown_part in zip(value, shown, strict=False):
            _masked_parts(part, shown_part, found)


def checked(key: ConfigKey, value: object, source: str) -> Any:
    """``value`` as ``key`` takes it, or one configuration error naming the key and where the value came from."""
    try:
        return key.kind.check(value)
    except Invalid as exc:
        raise invalid(key, exc, source) from None


def invalid(key: ConfigKey, problem: Invalid, source: str) -> ConfigurationError:
    hint = "durations look like 30s, 5m or 1h30m" if key.kind.name == "duration" else ""
    return ConfigurationError(
        f"invalid configuration: {problem.problem} for {key.name}{problem.where} in {source}",
        component="config",
        hint=hint or "run 'bacalhau config list' to see every key with its current value",
    )


def nested(entries: Iterable[tuple[Sequence[str], Any]]) -> dict[str, Any]:
    """A document from (path, value) pairs: ``(("API", "Port"), 1)`` is ``{"API": {"Port": 1}}``."""
    document: dict[str, Any] = {}
    for path, value in entries:
        *parents, last = path
        section = document
        for part in parents:
            section = section.setdefault(part, {})
        section[last] = value
    return document
