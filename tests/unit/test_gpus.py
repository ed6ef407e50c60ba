"""GPUs: the vendors' tools parsed as the original parses them, tools that misbehave, the node's share of its GPUs,
which GPU each execution holds, and what a container is given."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import docker
from bacalhau.compute import gpus as gpus_module
from bacalhau.compute.capacity import AllocatedCapacity, CapacityTracker, allocate
from bacalhau.compute.executors import gpu_devices
from bacalhau.compute.executors.base import ExecutorError
from bacalhau.compute.gpus import (
    GPUToolError,
    detect_gpus,
    gpu_labels,
    parse_nvidia,
    parse_rocm,
    parse_xpu_device,
    parse_xpu_list,
    run_tool,
)
from bacalhau.models.resources import GPU, Resources
from tests.gpu_tools import (
    NVIDIA_TWO_T4,
    ROCM_TWO_MI210,
    XPU_DEVICE_0,
    XPU_LIST_ONE,
    fake_nvidia_smi,
    fake_rocm_smi,
    fake_xpu_smi,
    script,
)

T4 = GPU(index=0, name="Tesla T4", vendor="NVIDIA", memory=15360)


# ---- nvidia-smi


def test_nvidia_two_gpus() -> None:
    assert parse_nvidia(NVIDIA_TWO_T4) == [T4, T4.model_copy(update={"index": 1})]


def test_nvidia_names_with_spaces_and_commas_and_unreported_memory() -> None:
    output = (
        "0, NVIDIA GeForce RTX 3090, 24576\n"
        "1, NVIDIA A100-SXM4-80GB, 81920\n"
        "2, Odd, Name, With Commas, 1024\n"
        '3, "Quoted, Name", 2048\n'
        "4, NVIDIA GH200 480GB, [N/A]\n"
        "\n"
    )
    gpus = parse_nvidia(output)
    assert [(g.index, g.name, g.memory) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 3090", 24576),
        (1, "NVIDIA A100-SXM4-80GB", 81920),
        (2, "Odd, Name, With Commas", 1024),
        (3, "Quoted, Name", 2048),
        (4, "NVIDIA GH200 480GB", 0),
    ]
    assert {g.vendor for g in gpus} == {"NVIDIA"}


def test_nvidia_no_gpus_is_empty() -> None:
    assert parse_nvidia("") == []


@pytest.mark.parametrize(
    "garbage",
    [
        "No devices were found\n",
        "0, Tesla T4\n",
        "x, Tesla T4, 15360\n",
        "0, Tesla T4, lots\n",
        "-1, Tesla T4, 15360\n",
        "٣, Tesla T4, 15360\n",  # a digit of another script: not what strconv.ParseUint takes
    ],
)
def test_nvidia_garbage_is_an_error(garbage: str) -> None:
    with pytest.raises(GPUToolError):
        parse_nvidia(garbage)


# ---- rocm-smi


def test_rocm_two_gpus() -> None:
    gpus = parse_rocm(ROCM_TWO_MI210)
    assert [(g.index, g.name, g.vendor, g.memory, g.pci_address) for g in gpus] == [
        (0, "Instinct MI210", "AMD/ATI", 65520, "0000:c1:00.0"),
        (1, "Instinct MI210", "AMD/ATI", 65520, "0000:c2:00.0"),
    ]


def test_rocm_other_entries_newer_key_spelling_and_order() -> None:
    output = (
        '{"system": {"Driver version": "6.3.6"}, '
        '"card1": {"PCI Bus": "0000:03:00.0", "VRAM Total Memory (B)": "17163091968", "Card Series": "Radeon RX 6800"},'
        '"card0": {"PCI Bus": "0000:02:00.0", "VRAM Total Memory (B)": "8573157376", "Card Series": "Radeon RX 6600"}}'
    )
    assert [(g.index, g.name, g.memory) for g in parse_rocm(output)] == [
        (0, "Radeon RX 6600", 8176),
        (1, "Radeon RX 6800", 16368),
    ]


def test_rocm_none_and_garbage() -> None:
    assert parse_rocm("{}") == []
    for garbage in ("WARNING: No AMD GPUs specified", "[]", '{"card0": "x"}', '{"cardX": {}}', '{"card0": {}}'):
        with pytest.raises(GPUToolError):
            parse_rocm(garbage)


# ---- xpu-smi


def test_xpu_list_and_device() -> None:
    [listed] = parse_xpu_list(XPU_LIST_ONE)
    assert (listed.index, listed.name, listed.pci_address) == (0, "Intel(R) Data Center GPU Flex 170", "0000:4d:00.0")
    device = parse_xpu_device(XPU_DEVICE_0)
    assert (device.index, device.vendor, device.memory) == (0, "Intel", 13535)
    assert parse_xpu_list('{"device_list": []}') == []
    for garbage in ("", "{}", '{"device_list": [1]}', '{"device_list": [{"device_id": "x"}]}'):
        with pytest.raises(GPUToolError):
            parse_xpu_list(garbage)
    with pytest.raises(GPUToolError):
        parse_xpu_device('{"device_id": 0, "memory_physical_size_byte": "lots"}')


# ---- running the tools


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fake tools a test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")  # this machine has no GPU tools of its own
    return folder


def test_no_tools_no_gpus(tools: Path) -> None:
    assert asyncio.run(detect_gpus()) == []


def test_every_vendor_found(tools: Path) -> None:
    fake_nvidia_smi(tools)
    fake_rocm_smi(tools)
    fake_xpu_smi(tools)
    found = asyncio.run(detect_gpus())
    assert [(g.vendor, g.index) for g in found] == [
        ("NVIDIA", 0),
        ("NVIDIA", 1),
        ("AMD/ATI", 0),
        ("AMD/ATI", 1),
        ("Intel", 0),
    ]


def test_a_tool_that_hangs_fails_or_prints_garbage_costs_only_its_vendor(
    tools: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_nvidia_smi(tools)
    script(tools, "rocm-smi", "exec sleep 60")
    script(tools, "xpu-smi", "echo 'this is not json'")
    started = time.monotonic()
    found = asyncio.run(detect_gpus(timeout=0.5))
    assert time.monotonic() - started < 5
    assert [g.vendor for g in found] == ["NVIDIA", "NVIDIA"]
    assert "cannot inspect AMD GPUs" in caplog.text and "did not finish within 0.5s" in caplog.text
    assert "cannot inspect Intel GPUs" in caplog.text and "not JSON" in caplog.text


def test_a_failing_tool_means_no_gpus(tools: Path, caplog: pytest.LogCaptureFixture) -> None:
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
    fake_nvidia_smi(tools, message, exit_code=9)
    assert asyncio.run(detect_gpus()) == []
    assert "exited with 9" in caplog.text


def test_a_tool_that_prints_without_end_is_cut_off(tools: Path) -> None:
    script(tools, "nvidia-smi", "exec cat /dev/zero")
    with pytest.raises(GPUToolError, match="printed more than 1000 bytes"):
        asyncio.run(run_tool(gpus_module.NVIDIA_COMMAND, timeout=5, max_bytes=1000))


def test_a_hung_tool_and_what_it_started_are_killed(tools: Path, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script(tools, "nvidia-smi", f"sleep 60 & echo $! > {marker}; wait")
    with pytest.raises(GPUToolError, match="did not finish"):
        asyncio.run(run_tool(gpus_module.NVIDIA_COMMAND, timeout=0.5))
    pid = int(marker.read_text())

    def gone() -> bool:
        try:
            status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        return status == "Z"

    deadline = time.monotonic() + 5
    while not gone():
        assert time.monotonic() < deadline, "the tool's child outlived the timeout"
        time.sleep(0.05)


# ---- labels and the node's share


def test_labels_as_the_original() -> None:
    gpus = [T4, GPU(index=1, name="NVIDIA A100 80GB PCIe", vendor="NVIDIA", memory=81920)]
    assert gpu_labels(gpus) == {
        "GPU-0": "Tesla-T4",
        "GPU-0-Memory": "15360-MiB",
        "GPU-1": "NVIDIA-A100-80GB-PCIe",
        "GPU-1-Memory": "81920-MiB",
    }


def machine(count: int) -> Resources:
    found = [T4.model_copy(update={"index": i}) for i in range(count)]
    return Resources(cpu=4, memory=8 << 30, disk=100 << 30, gpu=count, gpus=found)


@pytest.mark.parametrize(
    ("found", "setting", "given"),
    [
        (2, "100%", 2),
        (2, "50%", 1),
        (3, "50%", 1),  # truncated, as the original's code does
        (4, "10%", 1),  # but never below one GPU when there is any
        (0, "100%", 0),
        (0, "50%", 0),
        (4, "2", 2),
        (2, "0", 0),
    ],
)
def test_allocated_gpus(found: int, setting: str, given: int) -> None:
    share = allocate(machine(found), AllocatedCapacity(gpu=setting))
    assert share.gpu == given
    assert [g.index for g in share.gpus] == list(range(given))


@pytest.mark.parametrize("setting", ["150%", "-1%", "x%", "two", "1.5", "-1"])
def test_a_share_that_means_nothing_is_a_configuration_error(setting: str) -> None:
    with pytest.raises(ValueError, match=r"Compute\.AllocatedCapacity\.GPU"):
        allocate(machine(2), AllocatedCapacity(gpu=setting))


def test_a_count_above_the_gpus_found_adds_gpus_without_details() -> None:
    share = allocate(machine(1), AllocatedCapacity(gpu="3"))
    assert share.gpu == 3
    assert share.gpus[0] == T4 and share.gpus[1:] == [GPU(), GPU()]


def test_each_execution_holds_its_own_gpus() -> None:
    tracker = CapacityTracker(allocate(machine(2), AllocatedCapacity(gpu="100%")))
    one_gpu = Resources(cpu=0.1, memory=1, gpu=1)
    assert tracker.try_reserve("e1", one_gpu)
    assert tracker.try_reserve("e2", one_gpu)
    assert [g.index for g in tracker.gpus_of("e1")] == [0]
    assert [g.index for g in tracker.gpus_of("e2")] == [1]
    assert not tracker.try_reserve("e3", one_gpu)  # both GPUs held
    assert tracker.available().gpu == 0 and tracker.available().gpus == []
    tracker.release("e1")
    assert [g.index for g in tracker.available().gpus] == [0]
    assert tracker.try_reserve("e3", one_gpu)
    assert [g.index for g in tracker.gpus_of("e3")] == [0]
    assert tracker.try_reserve("cpu-only", Resources(cpu=0.1, memory=1))
    assert tracker.gpus_of("cpu-only") == []
    tracker.release("e2")
    tracker.release("e3")
    assert tracker.try_reserve("both", Resources(cpu=0.1, memory=1, gpu=2))
    assert [g.index for g in tracker.gpus_of("both")] == [0, 1]


# ---- what a container gets


def test_nvidia_gpus_are_a_device_request_with_their_indices() -> None:
    options: dict[str, object] = {"environment": ["A=1"]}
    gpu_devices.add_gpus(options, [T4.model_copy(update={"index": 1}), T4.model_copy(update={"index": 3})])
    assert options["device_requests"] == [
        docker.types.DeviceRequest(driver="nvidia", device_ids=["1", "3"], capabilities=[["gpu"]])
    ]
    assert options["environment"] == ["A=1", "NVIDIA_VISIBLE_DEVICES=1,3", "CUDA_VISIBLE_DEVICES=0,1"]
    assert "devices" not in options


def test_no_gpus_change_nothing() -> None:
    options: dict[str, object] = {"environment": ["A=1"]}
    gpu_devices.add_gpus(options, [])
    assert options == {"environment": ["A=1"]}


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A /dev with the nodes of two GPUs (PCI 0000:c1:00.0 and 0000:4d:00.0), linked by path as udev links them."""
    root = tmp_path / "dev"
    (root / "dri" / "by-path").mkdir(parents=True)
    for name in ("kfd", "dri/card1", "dri/renderD128", "dri/card2", "dri/renderD129"):
        (root / name).touch()
    links = {"0000:c1:00.0": ("card1", "renderD128"), "0000:4d:00.0": ("card2", "renderD129")}
    for address, (card, render) in links.items():
        (root / "dri" / "by-path" / f"pci-{address}-card").symlink_to(f"../{card}")
        (root / "dri" / "by-path" / f"pci-{address}-render").symlink_to(f"../{render}")
    monkeypatch.setattr(gpu_devices, "DEV", root)
    return root


def test_amd_gpus_get_kfd_and_their_dri_nodes(dev: Path) -> None:
    options: dict[str, object] = {}
    amd = GPU(index=0, name="Instinct MI210", vendor="AMD/ATI", pci_address="0000:c1:00.0")
    gpu_devices.add_gpus(options, [amd])
    dri = dev.resolve() / "dri"
    assert options["devices"] == [
        f"{dev / 'kfd'}:{dev / 'kfd'}:rwm",
        f"{dri / 'card1'}:{dri / 'card1'}:rwm",
        f"{dri / 'renderD128'}:{dri / 'renderD128'}:rwm",
    ]
    assert "device_requests" not in options


def test_intel_gpus_get_their_dri_nodes(dev: Path) -> None:
    options: dict[str, object] = {}
    intel = GPU(index=0, name="Flex 170", vendor="Intel", pci_address="0000:4d:00.0")
    gpu_devices.add_gpus(options, [intel])
    dri = dev.resolve() / "dri"
    assert options["devices"] == [
        f"{dri / 'card2'}:{dri / 'card2'}:rwm",
        f"{dri / 'renderD129'}:{dri / 'renderD129'}:rwm",
    ]


def test_gpus_that_cannot_be_given_fail_the_execution(dev: Path) -> None:
    missing = GPU(index=1, name="Flex 170", vendor="Intel", pci_address="0000:99:00.0")
    with pytest.raises(ExecutorError, match="could not find attached device for GPU at"):
        gpu_devices.add_gpus({}, [missing])
    sneaky = GPU(index=1, name="x", vendor="Intel", pci_address="../../etc")
    with pytest.raises(ExecutorError, match="no valid PCI address"):
        gpu_devices.add_gpus({}, [sneaky])
    with pytest.raises(ExecutorError, match='unsupported vendor "": the node has more GPUs allocated than it found'):
        gpu_devices.add_gpus({}, [GPU()])
    with pytest.raises(ExecutorError, match='unsupported vendor "Acme"'):
        gpu_devices.add_gpus({}, [GPU(vendor="Acme")])


def test_an_engine_that_ignores_the_device_request_is_caught() -> None:
    options: dict[str, object] = {}
    gpu_devices.add_gpus(options, [T4])
    assert "did not apply the request for NVIDIA GPUs 0" in gpu_devices.gpus_problem(options, {"HostConfig": {}})
    applied = {"HostConfig": {"DeviceRequests": [{"Driver": "nvidia", "DeviceIDs": ["0"]}]}}
    assert gpu_devices.gpus_problem(options, applied) == ""
    assert gpu_devices.gpus_problem({}, {"HostConfig": {}}) == ""


def test_what_a_tool_leaves_holding_its_output_is_killed_too(tools: Path, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script(tools, "nvidia-smi", f"sleep 60 & echo $! > {marker}; exit 0")  # exits, its child keeps stdout open
    with pytest.raises(GPUToolError, match="did not finish"):
        asyncio.run(run_tool(gpus_module.NVIDIA_COMMAND, timeout=0.5))
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the tool's child outlived the timeout"
        time.sleep(0.05)
