"""The GPUs a container gets, as the original's Docker executor gives them.

- NVIDIA: one device request for the GPUs' indices with the ``gpu`` capability (the NVIDIA Container Toolkit's
  runtime then shows the container those GPUs only). The container is also told which ones it has:
  ``NVIDIA_VISIBLE_DEVICES`` the host's indices (what the toolkit reads), ``CUDA_VISIBLE_DEVICES`` the container's
  own numbering of them (``0,1,...``: inside, CUDA counts only what it sees). The original sets neither.
- AMD: ``/dev/kfd``, and for each GPU its ``/dev/dri`` card and render nodes, found by PCI address through
  ``/dev/dri/by-path/pci-<address>-{card,render}``.
- Intel: the ``/dev/dri`` card and render nodes, found the same way.

A GPU of no known vendor (a count in ``Compute.AllocatedCapacity.GPU`` above the GPUs found) cannot be given to a
container: the execution fails, as in the original, rather than run without the GPU it asked for. So does one whose
devices are missing, and one whose engine ignores the device request (Podman's Docker API does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
from bacalhau.compute.executors.base import ExecutorError
from bacalhau.models.resources import GPU
from bacalhau.models.resources import GPU_VENDOR_AMD as AMD
from bacalhau.models.resources import GPU_VENDOR_INTEL as INTEL
from bacalhau.models.resources import GPU_VENDOR_NVIDIA as NVIDIA

DEV = Path("/dev")  # where device nodes are (tests point it elsewhere)
_PCI_ADDRESS = re.compile(r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
IGNORED_REQUEST = (
    "the container engine did not apply the request for NVIDIA GPUs {ids} (it answered the container's creation "
    "without any device request: Podman's Docker API ignores them); GPU jobs need Docker with the NVIDIA Container "
    "Toolkit"
)


def _dri_nodes(gpu: GPU) -> list[str]:
    """The card and render device nodes of a GPU, as the host names them (the links resolved)."""
    if not _PCI_ADDRESS.fullmatch(gpu.pci_address):
        raise ExecutorError(f"GPU {gpu.index} ({gpu.vendor} {gpu.name}) has no valid PCI address to find it by")
    nodes = []
    for kind in ("card", "render"):
        path = DEV / "dri" / "by-path" / f"pci-{gpu.pci_address}-{kind}"
        if not path.exists():
            raise ExecutorError(f'could not find attached device for GPU at "{path}"')
        nodes.append(os.path.realpath(path))
    return nodes


def add_gpus(options: dict[str, Any], gpus: Sequence[GPU]) -> None:
    """Give the container ``gpus`` (the node's GPUs the execution holds): device requests, device nodes and
    environment added to the options of ``containers.create``."""
    if not gpus:
        return
    nvidia = [str(gpu.index) for gpu in gpus if gpu.vendor == NVIDIA]
    devices: list[str] = []
    for gpu in gpus:
        if gpu.vendor == AMD:
            kfd = DEV / "kfd"
            if not kfd.exists():
                raise ExecutorError(f'could not find attached device for GPU at "{kfd}"')
            devices.append(f"{kfd}:{kfd}:rwm")
        if gpu.vendor in (AMD, INTEL):
            devices += [f"{node}:{node}:rwm" for node in _dri_nodes(gpu)]
        elif gpu.vendor != NVIDIA:
            raise ExecutorError(
                f'job requires GPU from unsupported vendor "{gpu.vendor}"'
                + (": the node has more GPUs allocated than it found" if not gpu.vendor else "")
            )
    if nvidia:
        options["device_requests"] = [
            docker.types.DeviceRequest(driver="nvidia", device_ids=nvidia, capabilities=[["gpu"]])
        ]
        options["environment"] = [
            *options.get("environment", []),
            f"NVIDIA_VISIBLE_DEVICES={','.join(nvidia)}",
            f"CUDA_VISIBLE_DEVICES={','.join(str(i) for i in range(len(nvidia)))}",
        ]
    if devices:
        options["devices"] = list(dict.fromkeys(devices))  # AMD GPUs share /dev/kfd


def gpus_problem(options: Mapping[str, Any], attrs: Mapping[str, Any]) -> str:
    """Why the created container (``attrs``: its inspection) lacks GPUs it was made with; empty if it has them."""
    requests = options.get("device_requests")
    if not requests:
        return ""
    applied = (attrs.get("HostConfig") or {}).get("DeviceRequests")
    if applied:
        return ""
    ids = ",".join(i for request in requests for i in request.get("DeviceIDs") or [])
    return IGNORED_REQUEST.format(ids=ids)
