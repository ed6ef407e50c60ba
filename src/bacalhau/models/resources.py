"""Resource requests (strings such as ``500m`` or ``1Gi``) and computed capacities (numbers)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import Field

from bacalhau.models.base import OMIT_EMPTY, WireModel
from bacalhau.models.fields import Name, UInt64
from bacalhau.models.limits import INT64_MAX, INT64_MIN, UINT64_MAX

# strconv.Atoi before the "m", strconv.ParseFloat otherwise: ASCII digits only, no digit separators (Python's int()
# and float() also take "1_000" and other scripts' digits). Go's hexadecimal floats are not worth supporting here.
_MILLI_CPU = re.compile(r"([+-]?[0-9]+)m")
_DECIMAL_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_UINT = re.compile(r"[0-9]+")

# go-humanize's unit table: SI and IEC prefixes, with and without the trailing "b".
_BYTE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, _prefix in enumerate("kmgtpe", start=1):
    _BYTE_UNITS[_prefix] = _BYTE_UNITS[_prefix + "b"] = 1000**_i
    _BYTE_UNITS[_prefix + "i"] = _BYTE_UNITS[_prefix + "ib"] = 1024**_i


def parse_cpu(text: str) -> float:
    """Kubernetes-style CPU quantity in cores: ``100m`` is 0.1, ``2.5`` is 2.5; truncated to whole millicores."""
    value = text.strip()
    milli = _MILLI_CPU.fullmatch(value)
    if milli:
        millicores = int(milli.group(1))
    elif _DECIMAL_FLOAT.fullmatch(value):
        cores = float(value) * 1000
        millicores = math.trunc(cores) if math.isfinite(cores) else INT64_MAX + 1
    else:
        raise ValueError(f"invalid CPU value: {text}")
    if not INT64_MIN <= millicores <= INT64_MAX:  # the original counts millicores in an int64
        raise ValueError(f"invalid CPU value: {text}")
    return millicores / 1000


def parse_bytes(text: str) -> int:
    """go-humanize ``ParseBytes``: a number then an optional SI or IEC unit, case-insensitive."""
    end = 0
    while end < len(text) and (text[end].isdigit() or text[end] in ".,"):
        end += 1
    number, unit = text[:end].replace(",", ""), text[end:].strip().lower()
    if not _DECIMAL_FLOAT.fullmatch(number):  # strconv.ParseFloat takes no other script's digits
        raise ValueError(f"invalid byte size: {text}")
    amount = float(number)
    if unit not in _BYTE_UNITS:
        raise ValueError(f"unhandled size name: {unit}")
    total = amount * _BYTE_UNITS[unit]
    if total >= UINT64_MAX:
        raise ValueError(f"too large: {text}")
    return int(total)


def format_bytes(size: int) -> str:
    """go-humanize ``Bytes`` (SI units), used in human-readable messages."""
    if size < 10:
        return f"{size} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    exponent = min(math.floor(math.log(size, 1000)), len(units) - 1)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    return f"{value:.0f} {units[exponent]}" if value >= 10 else f"{value:.1f} {units[exponent]}"


def normalize_quantity(text: str) -> str:
    return text.lower().replace(" ", "").replace("\n", "")


MAX_CORES = INT64_MAX / 1000  # the most CPU a task can ask for (the original counts millicores in an int64)


def _cores(value: float) -> float:
    """Sums and scalings of capacities saturate at the bounds the model holds, rather than fail."""
    return min(value, MAX_CORES)


def _units(value: int) -> int:
    return min(value, UINT64_MAX)


# The makers of GPUs, as the original names them (models.GPUVendor).
GPU_VENDOR_NVIDIA, GPU_VENDOR_AMD, GPU_VENDOR_INTEL = "NVIDIA", "AMD/ATI", "Intel"


class GPU(WireModel):
    """A GPU on a compute node. Go leaves these keys untagged, so they are the plain field names."""

    index: int = 0
    name: str = ""
    vendor: str = ""
    memory: int = 0
    pci_address: str = Field(default="", alias="PCIAddress")


class Resources(WireModel):
    """Computed resources: CPU in cores, memory and disk in bytes, GPU as a count."""

    cpu: Annotated[float, OMIT_EMPTY, Field(ge=-MAX_CORES, le=MAX_CORES, allow_inf_nan=False)] = 0.0
    memory: Annotated[UInt64, OMIT_EMPTY] = 0
    disk: Annotated[UInt64, OMIT_EMPTY] = 0
    gpu: Annotated[UInt64, OMIT_EMPTY] = 0
    gpus: Annotated[list[GPU], OMIT_EMPTY] = Field(default_factory=list)

    def add(self, other: Resources) -> Resources:
        return Resources(
            cpu=_cores(self.cpu + other.cpu),
            memory=_units(self.memory + other.memory),
            disk=_units(self.disk + other.disk),
            gpu=_units(self.gpu + other.gpu),
        )

    def sub(self, other: Resources) -> Resources:
        """Difference, floored at zero per dimension."""
        return Resources(
            cpu=max(0.0, round(self.cpu - other.cpu, 6)),
            memory=max(0, self.memory - other.memory),
            disk=max(0, self.disk - other.disk),
            gpu=max(0, self.gpu - other.gpu),
        )

    def scale(self, factor: float) -> Resources:
        return Resources(
            cpu=_cores(self.cpu * factor),
            memory=_units(int(self.memory * factor)),
            disk=_units(int(self.disk * factor)),
            gpu=_units(int(self.gpu * factor)),
        )

    def fits_in(self, limit: Resources) -> bool:
        """Every dimension at or below the limit's (with float slack for CPU sums)."""
        return (
            self.cpu <= limit.cpu + 1e-9
            and self.memory <= limit.memory
            and self.disk <= limit.disk
            and self.gpu <= limit.gpu
        )

    def exceeded_dimensions(self, limit: Resources) -> list[str]:
        names = []
        if self.cpu > limit.cpu + 1e-9:
            names.append("CPU")
        if self.memory > limit.memory:
            names.append("memory")
        if self.disk > limit.disk:
            names.append("disk")
        if self.gpu > limit.gpu:
            names.append("GPU")
        return names

    def is_zero(self) -> bool:
        return not (self.cpu or self.memory or self.disk or self.gpu)

    def describe(self) -> str:
        return (
            f"{{CPU: {self.cpu:.2f}, Memory: {format_bytes(self.memory)}, "
            f"Disk: {format_bytes(self.disk)}, GPU: {self.gpu}}}"
        )


class ResourcesConfig(WireModel):
    """What a task asks for, as the user wrote it (normalised to lower case)."""

    cpu: Annotated[Name, OMIT_EMPTY] = ""
    memory: Annotated[Name, OMIT_EMPTY] = ""
    disk: Annotated[Name, OMIT_EMPTY] = ""
    gpu: Annotated[Name, OMIT_EMPTY] = ""

    def normalize(self) -> None:
        self.cpu = normalize_quantity(self.cpu)
        self.memory = normalize_quantity(self.memory)
        self.disk = normalize_quantity(self.disk)
        self.gpu = normalize_quantity(self.gpu)

    def parse(self) -> tuple[Resources, list[str]]:
        """The computed resources and the messages for every value that does not parse."""
        errors: list[str] = []
        result = Resources()
        cpu, memory, disk, gpu = (normalize_quantity(v) for v in (self.cpu, self.memory, self.disk, self.gpu))
        if cpu:
            try:
                result.cpu = parse_cpu(cpu)
            except ValueError:
                errors.append(f"invalid CPU value: {cpu}")
        if memory:
            try:
                result.memory = parse_bytes(memory)
            except ValueError:
                errors.append(f"invalid memory value: {memory}")
        if disk:
            try:
                result.disk = parse_bytes(disk)
            except ValueError:
                errors.append(f"invalid disk value: {disk}")
        if gpu:
            if not _UINT.fullmatch(gpu) or int(gpu) > UINT64_MAX:  # strconv.ParseUint(gpu, 10, 64)
                return result, [f"invalid GPU value: {gpu}"]
            result.gpu = int(gpu)
        if not errors and result.cpu < 0:
            errors.append(f"invalid CPU value: {result.cpu:f}")
        return result, errors

    def to_resources(self) -> Resources:
        resources, errors = self.parse()
        if errors:
            raise ValueError("\n".join(errors))
        return resources
