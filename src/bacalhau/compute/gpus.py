"""The GPUs of this machine, found with the vendors' own tools, as the original finds them.

- NVIDIA: ``nvidia-smi --query-gpu=index,gpu_name,memory.total --format=csv,noheader,nounits``, one CSV line per
  GPU (``0, Tesla T4, 15360``: memory in MiB).
- AMD: ``rocm-smi --showproductname --showbus --showmeminfo vram --json``, an object keyed ``card<N>`` whose
  ``Card series`` is the name and ``VRAM Total Memory (B)`` the memory in bytes.
- Intel: ``xpu-smi discovery --json`` lists the devices; ``xpu-smi discovery --json --device <id>`` gives each one's
  ``memory_physical_size_byte``.

A tool that is not installed means no GPUs of its vendor. One that fails, hangs (each run is killed after a
timeout), prints too much or prints something else than expected counts as none either: the node says why once in
its log and carries on. No tool is run through a shell, and none is given anything but fixed arguments.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import shutil
from collections.abc import Sequence
from typing import Any

from bacalhau.lib.boundedproc import ProcessTimeout, run_bounded
from bacalhau.models.resources import GPU, GPU_VENDOR_AMD, GPU_VENDOR_INTEL, GPU_VENDOR_NVIDIA

log = logging.getLogger(__name__)

NVIDIA, AMD, INTEL = GPU_VENDOR_NVIDIA, GPU_VENDOR_AMD, GPU_VENDOR_INTEL
NVIDIA_COMMAND = ("nvidia-smi", "--query-gpu=index,gpu_name,memory.total", "--format=csv,noheader,nounits")
ROCM_COMMAND = ("rocm-smi", "--showproductname", "--showbus", "--showmeminfo", "vram", "--json")
XPU_LIST_COMMAND = ("xpu-smi", "discovery", "--json")
TOOL_TIMEOUT = 10.0  # seconds one run of a tool may take
MAX_OUTPUT = 1024 * 1024  # bytes of a tool's output read at most
MAX_GPUS = 1024  # more devices than this in a tool's answer is not a machine, it is garbage
MEBIBYTE = 1024 * 1024


class GPUToolError(Exception):
    """A tool ran but its answer cannot be used."""


def _uint(text: object, what: str) -> int:
    """``strconv.ParseUint(text, 10, 64)``: ASCII digits only."""
    value = str(text).strip()
    if not value.isascii() or not value.isdigit() or int(value) >= 2**64:
        raise GPUToolError(f"invalid {what}: {value[:40]!r}")
    return int(value)


def parse_nvidia(output: str) -> list[GPU]:
    """nvidia-smi's CSV. A name is never split by a comma in it: the first field is the index, the last the
    memory, and whatever lies between is the name. Memory a GPU does not report (``[N/A]``) counts as 0."""
    gpus = []
    for record in csv.reader(output.splitlines(), skipinitialspace=True):
        if not record or not "".join(record).strip():
            continue
        if len(record) < 3:
            raise GPUToolError(f"expected index, name and memory, got {len(record)} fields")
        memory = record[-1].strip()
        gpus.append(
            GPU(
                index=_uint(record[0], "GPU index"),
                name=", ".join(field.strip() for field in record[1:-1]),
                vendor=NVIDIA,
                memory=0 if memory.startswith("[") else _uint(memory, "GPU memory"),
            )
        )
        if len(gpus) > MAX_GPUS:
            raise GPUToolError("too many GPUs")
    return gpus


def _field(record: dict[str, Any], name: str) -> str:
    """A key of a JSON record, matched regardless of case (as Go's decoder matches them: newer rocm-smi writes
    ``Card Series`` where older ones wrote ``Card series``)."""
    for key, value in record.items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _json(output: str) -> Any:
    try:
        return json.loads(output)
    except ValueError as exc:
        raise GPUToolError(f"not JSON: {exc}") from None


def parse_rocm(output: str) -> list[GPU]:
    """rocm-smi's JSON: ``card<N>`` entries (other entries, such as ``system``, are not GPUs)."""
    records = _json(output)
    if not isinstance(records, dict):
        raise GPUToolError("expected a JSON object of cards")
    gpus = []
    for card, record in records.items():
        if not card.startswith("card"):
            continue
        if not isinstance(record, dict):
            raise GPUToolError(f"{card} is not an object")
        gpus.append(
            GPU(
                index=_uint(card[4:], "card number"),
                name=_field(record, "Card series"),
                vendor=AMD,
                memory=_uint(_field(record, "VRAM Total Memory (B)"), "VRAM total memory") // MEBIBYTE,
                pci_address=_field(record, "PCI Bus").lower(),  # the tool writes hex digits in upper case
            )
        )
    if len(gpus) > MAX_GPUS:
        raise GPUToolError("too many GPUs")
    return sorted(gpus, key=lambda gpu: gpu.index)


def parse_xpu_list(output: str) -> list[GPU]:
    """``xpu-smi discovery --json``: the devices, without their memory."""
    document = _json(output)
    devices = document.get("device_list") if isinstance(document, dict) else None
    if not isinstance(devices, list):
        raise GPUToolError("expected a device_list")
    if len(devices) > MAX_GPUS:
        raise GPUToolError("too many GPUs")
    gpus = []
    for device in devices:
        if not isinstance(device, dict):
            raise GPUToolError("a device is not an object")
        gpus.append(
            GPU(
                index=_uint(device.get("device_id"), "device ID"),
                name=str(device.get("device_name") or ""),
                vendor=INTEL,
                pci_address=str(device.get("pci_bdf_address") or ""),
            )
        )
    return gpus


def parse_xpu_device(output: str) -> GPU:
    """``xpu-smi discovery --json --device <id>``: one device, with its memory in bytes."""
    device = _json(output)
    if not isinstance(device, dict):
        raise GPUToolError("expected a device object")
    return GPU(
        index=_uint(device.get("device_id"), "device ID"),
        name=str(device.get("device_name") or ""),
        vendor=INTEL,
        memory=_uint(device.get("memory_physical_size_byte"), "memory size") // MEBIBYTE,
        pci_address=str(device.get("pci_bdf_address") or ""),
    )


async def run_tool(argv: Sequence[str], timeout: float = TOOL_TIMEOUT, max_bytes: int = MAX_OUTPUT) -> str | None:
    """A tool's standard output, or None if it is not installed. It runs in a session of its own, so that a timeout
    kills whatever it started too; a failure, a timeout or too much output raises :class:`GPUToolError`."""
    path = shutil.which(argv[0])
    if path is None:
        return None
    try:
        finished = await run_bounded([path, *argv[1:]], timeout=timeout, max_bytes=max_bytes, stop_on_overflow=True)
    except OSError as exc:
        raise GPUToolError(f"could not run {argv[0]}: {exc}") from None
    except ProcessTimeout:
        raise GPUToolError(f"{argv[0]} did not finish within {timeout:g}s") from None
    if finished.overflowed:
        raise GPUToolError(f"{argv[0]} printed more than {max_bytes} bytes")
    output, code = finished.output, finished.code
    text = output.decode(errors="replace")
    if code != 0:
        raise GPUToolError(f"{argv[0]} exited with {code}: {text.strip()[:200]!r}")
    return text


async def _nvidia(timeout: float) -> list[GPU]:
    output = await run_tool(NVIDIA_COMMAND, timeout)
    return [] if output is None else parse_nvidia(output)


async def _amd(timeout: float) -> list[GPU]:
    output = await run_tool(ROCM_COMMAND, timeout)
    return [] if output is None else parse_rocm(output)


async def _intel(timeout: float) -> list[GPU]:
    output = await run_tool(XPU_LIST_COMMAND, timeout)
    if output is None:
        return []
    gpus = []
    for listed in parse_xpu_list(output):
        detail = await run_tool((*XPU_LIST_COMMAND, "--device", str(listed.index)), timeout)
        if detail is None:
            raise GPUToolError("xpu-smi went away")
        gpus.append(parse_xpu_device(detail))
    return gpus


async def detect_gpus(timeout: float = TOOL_TIMEOUT) -> list[GPU]:
    """Every GPU the vendors' tools report (NVIDIA, then AMD, then Intel); each vendor's tools are asked at once."""
    vendors = (("NVIDIA", _nvidia), ("AMD", _amd), ("Intel", _intel))
    answers = await asyncio.gather(
        *(asyncio.wait_for(find(timeout), 3 * timeout) for _, find in vendors),  # xpu-smi runs once per device too
        return_exceptions=True,
    )
    gpus: list[GPU] = []
    for (vendor, _), answer in zip(vendors, answers, strict=True):
        if isinstance(answer, GPUToolError):
            log.warning("cannot inspect %s GPUs, so they will not be used: %s", vendor, answer)
        elif isinstance(answer, TimeoutError):
            log.warning("cannot inspect %s GPUs, so they will not be used: no answer within %gs", vendor, 3 * timeout)
        elif isinstance(answer, BaseException):
            log.warning("cannot inspect %s GPUs, so they will not be used: %r", vendor, answer)
        else:
            gpus += answer
    if gpus:
        log.info("GPUs found: %s", ", ".join(f"{g.index}: {g.vendor} {g.name} ({g.memory} MiB)" for g in gpus))
    return gpus


def gpu_labels(gpus: Sequence[GPU]) -> dict[str, str]:
    """The original's node labels: ``GPU-<i>`` the model and ``GPU-<i>-Memory`` the memory (``15360-MiB``), spaces
    as dashes; ``i`` counts the node's GPUs from 0."""
    labels = {}
    for i, gpu in enumerate(gpus):
        labels[f"GPU-{i}"] = gpu.name.replace(" ", "-")
        labels[f"GPU-{i}-Memory"] = f"{gpu.memory}-MiB"
    return labels
