"""Fake GPU vendor tools for tests: executables that answer the exact arguments the node asks with, in the real
tools' output formats (samples written for these tests), and refuse anything else as the real ones would."""

from __future__ import annotations

import shlex
from pathlib import Path

from bacalhau.compute.gpus import NVIDIA_COMMAND, ROCM_COMMAND, XPU_LIST_COMMAND

# nvidia-smi --query-gpu=index,gpu_name,memory.total --format=csv,noheader,nounits on a machine with two T4s
NVIDIA_TWO_T4 = "0, Tesla T4, 15360\n1, Tesla T4, 15360\n"

# rocm-smi --showproductname --showbus --showmeminfo vram --json on a machine with two MI210s
ROCM_TWO_MI210 = (
    '{"card0": {"PCI Bus": "0000:C1:00.0", "VRAM Total Memory (B)": "68702699520", '
    '"VRAM Total Used Memory (B)": "10960896", "Card series": "Instinct MI210", "Card model": "0x0c34", '
    '"Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D67301"}, '
    '"card1": {"PCI Bus": "0000:C2:00.0", "VRAM Total Memory (B)": "68702699520", '
    '"VRAM Total Used Memory (B)": "10960896", "Card series": "Instinct MI210", "Card model": "0x0c34", '
    '"Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]", "Card SKU": "D67301"}}\n'
)

# xpu-smi discovery --json, then xpu-smi discovery --json --device 0, on a machine with one Flex 170
XPU_LIST_ONE = """{
    "device_list": [
        {
            "device_function_type": "physical",
            "device_id": 0,
            "device_name": "Intel(R) Data Center GPU Flex 170",
            "device_type": "GPU",
            "drm_device": "/dev/dri/card1",
            "pci_bdf_address": "0000:4d:00.0",
            "pci_device_id": "0x56c0",
            "uuid": "01000000-0000-0000-0000-00000004d000",
            "vendor_name": "Intel(R) Corporation"
        }
    ]
}
"""
XPU_DEVICE_0 = """{
    "device_id": 0,
    "device_name": "Intel(R) Data Center GPU Flex 170",
    "device_type": "GPU",
    "drm_device": "/dev/dri/card1",
    "memory_physical_size_byte": "14193102848",
    "pci_bdf_address": "0000:4d:00.0",
    "uuid": "01000000-0000-0000-0000-00000004d000",
    "vendor_name": "Intel(R) Corporation"
}
"""


def fake_tool(folder: Path, name: str, answers: dict[tuple[str, ...], str], *, exit_code: int = 0) -> Path:
    """An executable ``folder/name`` that prints ``answers[args]`` for the arguments it is given (and exits
    ``exit_code``), or complains and exits 2 for any other arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh"]
    for argv, output in answers.items():
        lines.append(f'if [ "$*" = {shlex.quote(" ".join(argv))} ]; then')
        lines.append(f"  printf '%s' {shlex.quote(output)}")
        lines.append(f"  exit {exit_code}")
        lines.append("fi")
    lines += ['echo "unexpected arguments: $*" >&2', "exit 2"]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def fake_nvidia_smi(folder: Path, output: str = NVIDIA_TWO_T4, *, exit_code: int = 0) -> Path:
    return fake_tool(folder, "nvidia-smi", {NVIDIA_COMMAND[1:]: output}, exit_code=exit_code)


def fake_rocm_smi(folder: Path, output: str = ROCM_TWO_MI210) -> Path:
    return fake_tool(folder, "rocm-smi", {ROCM_COMMAND[1:]: output})


def fake_xpu_smi(folder: Path) -> Path:
    return fake_tool(
        folder, "xpu-smi", {XPU_LIST_COMMAND[1:]: XPU_LIST_ONE, (*XPU_LIST_COMMAND[1:], "--device", "0"): XPU_DEVICE_0}
    )


def script(folder: Path, name: str, body: str) -> Path:
    """Any executable shell script (a tool that hangs, prints too much, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path
