"""The building blocks of a task: spec configs, inputs, result paths, network, timeouts and constraints."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from bacalhau.models.base import OMIT_EMPTY, WireModel, text_enum_member
from bacalhau.models.fields import Int64, Key, LabelValue, Name, PathText, Seconds
from bacalhau.models.gostrings import quote, trim_space
from bacalhau.models.limits import MAX_ADDRESS_LENGTH, MAX_ENTRIES, MAX_INPUTS, MAX_PARAMS_DEPTH, MAX_PORTS

# The files every execution's results hold besides its result paths' folders.
STDOUT_FILE = "stdout"
STDERR_FILE = "stderr"
EXIT_CODE_FILE = "exitCode"
RESERVED_RESULT_NAMES = frozenset({STDOUT_FILE, STDERR_FILE, EXIT_CODE_FILE})


def nesting_depth(value: Any) -> int:
    """How deep objects and arrays nest in a decoded JSON value (a scalar is 0), without recursing."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > MAX_PARAMS_DEPTH:
            return deepest
        pending.extend((child, depth) for child in children)
    return deepest


def not_blank(value: str, message: str) -> list[str]:
    """``validate.NotBlank``: blank means empty after ``strings.TrimSpace``."""
    return [] if trim_space(value) else [message]


class SpecConfig(WireModel):
    """A typed plugin configuration: an engine, an input source, a publisher or a published result."""

    type: Name = ""
    params: Annotated[dict[Key, Any], OMIT_EMPTY, Field(max_length=MAX_INPUTS)] = Field(default_factory=dict)

    def normalize(self) -> None:
        self.type = trim_space(self.type)

    def validate_spec(self) -> list[str]:
        return not_blank(self.type, "missing spec type")

    def nesting_problems(self, role: str) -> list[str]:
        """Free-form parameters are the one part of a spec whose shape a client chooses: bound how deep it goes, so
        that no later step (storing, sending, reading it back) recurses without limit. (Checked at submission, not
        in every decode: reading stored jobs back should cost no Python call per spec.)"""
        if nesting_depth(self.params) > MAX_PARAMS_DEPTH:
            return [f"{role} parameters nest deeper than {MAX_PARAMS_DEPTH} levels"]
        return []

    def is_type(self, name: str) -> bool:
        return self.type.lower() == trim_space(name).lower()

    def is_empty(self) -> bool:
        return not self.type and not self.params

    def param(self, name: str, default: Any = None) -> Any:
        """A parameter by name, matched case-insensitively as Go's decoder would."""
        if name in self.params:
            return self.params[name]
        lowered = name.lower()
        for key, value in self.params.items():
            if key.lower() == lowered:
                return value
        return default


class InputSource(WireModel):
    source: SpecConfig | None = None
    alias: Name = ""
    target: PathText = ""

    def normalize(self) -> None:
        if self.source is None:
            return
        self.source.normalize()
        self.alias = trim_space(self.alias)
        self.target = trim_space(self.target)

    def validate_input(self) -> list[str]:
        errors = not_blank(self.target, "missing artifact target")
        if self.source is None:
            errors.append("invalid artifact source: nil spec config")
        else:
            errors += [f"invalid artifact source: {e}" for e in self.source.validate_spec()]
        return errors


class ResultPath(WireModel):
    name: Name = ""
    path: PathText = ""

    def normalize(self) -> None:
        self.name = trim_space(self.name)
        self.path = trim_space(self.path)

    def validate_path(self) -> list[str]:
        errors = not_blank(self.path, "missing path") + not_blank(self.name, "missing name")
        if not posixpath.isabs(self.path):
            errors.append(f"result path `{self.path}` must be absolute")
        if "\x00" in self.path:
            errors.append("result path cannot contain null characters")
        name = trim_space(self.name)
        if name and not is_result_name(name):
            errors.append(f"result name {quote(name)} {RESULT_NAME_RULE}")
        return errors


RESULT_NAME_RULE = (
    "must be one folder name: letters, digits, '.', '_' or '-', not '.' or '..', "
    f"and not one of {', '.join(sorted(RESERVED_RESULT_NAMES))}"
)
_RESULT_NAME = re.compile(r"[A-Za-z0-9._-]+")


def is_result_name(name: str) -> bool:
    """Whether ``name`` can be a result path's folder in an execution's results: one plain path segment (never a
    separator, ``..`` or an absolute path, which would escape the folder) that is not one of the output files."""
    return _RESULT_NAME.fullmatch(name) is not None and name not in (".", "..") and name not in RESERVED_RESULT_NAMES


class Network(StrEnum):
    """Network modes: the v1.4-1.6 names (None, Full, HTTP) and the v1.7 additions (Host, Bridge, Default)."""

    NONE = "None"
    FULL = "Full"
    HTTP = "HTTP"
    HOST = "Host"
    BRIDGE = "Bridge"
    DEFAULT = "Default"

    @classmethod
    def parse(cls, value: Any) -> Network:
        if isinstance(value, Network):
            return value
        member = text_enum_member(cls, value) if isinstance(value, str) else None
        if member is None:
            raise ValueError(f"models.Network: unknown type '{value}'")
        return member


_DOMAIN = re.compile(r"\b([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}\b")

# Published ports (v1.7+): the host ports a job may be given, and the environment variables that tell it which.
MINIMUM_PORT = 1024  # no privileged ports
MAXIMUM_PORT = 65535
ENV_PORT_PREFIX = "BACALHAU_PORT_"
ENV_HOST_PORT_PREFIX = "BACALHAU_HOST_PORT_"
MAX_PORT_NAME = 256 - len(ENV_HOST_PORT_PREFIX)
_PORT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PORT_NETWORKS = frozenset({Network.HOST, Network.FULL, Network.BRIDGE})


def is_ip_address(text: str) -> bool:
    """Go's ``net.ParseIP``: an IPv4 or IPv6 address, without a zone."""
    if "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Port(WireModel):
    """One published port. ``Static`` is the host port (given by the compute node when 0); ``Target`` the port inside
    a Bridge-networked task (the host port when 0); ``HostNetwork`` the host address to bind (all when empty)."""

    name: Name = ""
    static: Annotated[Int64, OMIT_EMPTY] = 0
    target: Annotated[Int64, OMIT_EMPTY] = 0
    host_network: Annotated[str, OMIT_EMPTY, Field(max_length=MAX_ADDRESS_LENGTH)] = ""

    def validate_port(self) -> str:
        """The original's checks, the first problem found (empty when none)."""
        if not self.name:
            return "port mapping name is required"
        if not _PORT_NAME.fullmatch(self.name):
            return (
                "port name must be a valid environment variable name: "
                "start with letter/underscore and contain only letters, numbers, and underscores"
            )
        if len(self.name) > MAX_PORT_NAME:
            return f"port name too long (max {MAX_PORT_NAME} characters)"
        if self.static != 0:
            if self.static < MINIMUM_PORT:
                return f"static port {self.static} is in privileged port range (1-1023)"
            if self.static > MAXIMUM_PORT:
                return f"static port {self.static} is above maximum valid port {MAXIMUM_PORT}"
        if self.target < 0 or self.target > MAXIMUM_PORT:
            return f"invalid target port {self.target}"
        if self.host_network and not is_ip_address(self.host_network):
            return f"invalid host network IP address: {self.host_network}"
        return ""


def port_map_problems(ports: list[Port], network: Network) -> list[str]:
    """``PortMap.Validate``: each port's own problem, then duplicate names, static ports and (Bridge) targets."""
    errors: list[str] = []
    names: set[str] = set()
    statics: set[int] = set()
    targets: set[int] = set()
    for port in ports:
        problem = port.validate_port()
        if problem:
            errors.append(problem)
            continue
        if port.name in names:
            errors.append(f"duplicate port mapping name {quote(port.name)}")
        names.add(port.name)
        if port.static != 0:
            if port.static in statics:
                errors.append(f"duplicate port mapping static port {port.static}")
            statics.add(port.static)
        if network in (Network.HOST, Network.FULL) and port.target != 0:
            errors.append("target ports cannot be set for Host network mode")
        if network == Network.BRIDGE and port.target != 0:
            if port.target in targets:
                errors.append(f"duplicate port mapping target port {port.target}")
            targets.add(port.target)
    return errors


class NetworkConfig(WireModel):
    type: Annotated[Network, BeforeValidator(Network.parse)] = Network.NONE
    domains: Annotated[list[Name], OMIT_EMPTY, Field(max_length=MAX_ENTRIES)] = Field(default_factory=list)
    ports: Annotated[list[Port], OMIT_EMPTY, Field(max_length=MAX_PORTS)] = Field(default_factory=list)

    def normalize(self) -> None:
        self.domains = [trim_space(d).lower() for d in self.domains]

    def validate_network(self) -> list[str]:
        errors = []
        if self.domains and self.type != Network.HTTP:
            errors.append("domains can only be set for HTTP network mode")
        for domain in self.domains:
            if _DOMAIN.search(domain) or is_ip_address(domain):
                continue
            errors.append(f'invalid domain "{domain}"')
        if self.ports:
            if self.type not in PORT_NETWORKS:
                return [*errors, "ports can only be set for Host or Bridge network modes"]
            errors += port_map_problems(self.ports, self.type)
        return errors


def go_duration(seconds: int) -> str:
    """Go's ``time.Duration.String()`` for whole seconds: ``1m30s``, ``2h0m0s``, ``-5s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


class TimeoutConfig(WireModel):
    """Timeouts in whole seconds; 0 means none."""

    execution_timeout: Annotated[Seconds, OMIT_EMPTY] = 0
    queue_timeout: Annotated[Seconds, OMIT_EMPTY] = 0
    total_timeout: Annotated[Seconds, OMIT_EMPTY] = 0

    def effective_execution_timeout(self) -> int:
        return self.execution_timeout if self.execution_timeout > 0 else self.total_timeout

    def validate_submission(self) -> list[str]:
        errors = []
        if self.execution_timeout < 0:
            errors.append(f"invalid execution timeout value: {go_duration(self.execution_timeout)}")
        if self.queue_timeout < 0:
            errors.append(f"invalid queue timeout value: {go_duration(self.queue_timeout)}")
        if self.total_timeout < 0:
            errors.append(f"invalid total timeout value: {go_duration(self.total_timeout)}")
        return errors

    def validate_totals(self) -> list[str]:
        errors = []
        if self.total_timeout > 0 and self.execution_timeout + self.queue_timeout > self.total_timeout:
            errors.append(
                f"execution timeout {go_duration(self.effective_execution_timeout())} and queue timeout "
                f"{go_duration(self.queue_timeout)} should be less than total timeout "
                f"{go_duration(self.total_timeout)}"
            )
        return errors


_INT64 = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``, or None where it fails (Python's int() also takes spaces and "1_0")."""
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


SELECTOR_OPERATORS = ("in", "notin", "exists", "!", "=", "==", "!=", "gt", "lt")


class LabelSelectorRequirement(WireModel):
    """One job constraint, matched against node labels (Kubernetes selector semantics)."""

    key: Key = ""
    operator: Name = ""
    values: Annotated[list[LabelValue], OMIT_EMPTY, Field(max_length=MAX_ENTRIES)] = Field(default_factory=list)

    def validate_requirement(self) -> list[str]:
        errors = not_blank(self.key, "selector key cannot be blank")
        if self.operator in ("in", "notin"):
            if not self.values:
                errors.append("selector values cannot be empty for In or NotIn operators")
        elif self.operator in ("exists", "!"):
            if self.values:
                errors.append("selector values must be empty for Exists or KeyNotInImap operators")
        elif len(self.values) != 1:
            errors.append("selector values must have exactly one value for other operators")
        if self.operator not in SELECTOR_OPERATORS:
            errors.append(f"{self.operator!r} is not a valid label selector operator")
        return errors

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        op = self.operator
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("=", "=="):
            return present and value == self.values[0]
        if op == "!=":
            return not present or value != self.values[0]
        if op == "in":
            return present and value in self.values
        if op == "notin":
            return not present or value not in self.values
        if op in ("gt", "lt"):
            if not present:
                return False
            have, want = parse_int64(value or ""), parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == "gt" else have < want
        return False

    def describe(self) -> str:
        if self.operator in ("exists",):
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{self.values[0] if self.values else ''}"
