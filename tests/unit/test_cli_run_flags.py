"""``docker run`` / ``wasm run`` flags, checked through ``--dry-run`` (the job spec the CLI would submit), as the
original's own CLI tests check them; no server is involved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bacalhau.cli.jobspec import SpecError, validate_spec
from bacalhau.cli.main import run


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = run([*args[:2], "--dry-run", *args[2:]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [line for line in captured.out.splitlines() if not line.startswith("Flag --")]
    spec: dict[str, Any] = yaml.safe_load("\n".join(lines))
    return spec


def failure(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = run([*args[:2], "--dry-run", *args[2:]])
    captured = capsys.readouterr()
    assert code != 0, captured.out
    assert "Traceback" not in captured.err
    return captured.err


def task(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = spec["Tasks"][0]
    return result


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "main.wasm"
    path.write_bytes(b"\0asm\1\0\0\0")
    return path


# ---- job flags, shared


@pytest.mark.parametrize("command", [("docker", "run", "busybox"), ("wasm", "run", "/app/main.wasm")])
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--name", "my-job"], {"Name": "my-job"}),
        (["--namespace", "team-a"], {"Namespace": "team-a"}),
        (["--priority", "5"], {"Priority": 5}),
        (["--count", "3"], {"Count": 3, "Type": "batch"}),
        (["--concurrency", "4"], {"Count": 4}),
        (["--target", "all"], {"Type": "ops", "Count": 0}),
        (["--target", "any"], {"Type": "batch", "Count": 1}),
        (["-l", "a=1,b", "--labels", "c=3"], {"Labels": {"a": "1", "b": "", "c": "3"}}),
    ],
)
def test_job_flags(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...], flags: list[str], expected: dict[str, Any]
) -> None:
    spec = dry_run(capsys, *command[:2], *flags, command[2])
    assert {key: spec.get(key) for key in expected} == expected


def test_constraints_are_sorted_by_key_with_the_original_operators(capsys: pytest.CaptureFixture[str]) -> None:
    spec = dry_run(capsys, "docker", "run", "--constraints", "zone=eu,os notin (win,mac),gpu!=true,cores>4", "img")
    assert spec["Constraints"] == [
        {"Key": "cores", "Operator": "gt", "Values": ["4"]},
        {"Key": "gpu", "Operator": "!=", "Values": ["true"]},
        {"Key": "os", "Operator": "notin", "Values": ["mac", "win"]},
        {"Key": "zone", "Operator": "=", "Values": ["eu"]},
    ]


def test_deprecated_selector_still_works_with_a_notice(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["docker", "run", "--dry-run", "-s", "zone=eu", "img"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Flag --selector has been deprecated, use --constraints\n")
    assert yaml.safe_load(out.split("\n", 1)[1])["Constraints"][0]["Key"] == "zone"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "2", "--concurrency", "3"], "--concurrency and --count cannot be used together"),
        (["--constraints", "a=b", "--selector", "c=d"], "--selector and --constraints cannot be used together"),
        (["--target", "some"], "'some' is not one of 'any', 'all'"),
        (["-l", "a=😀"], "invalid label value"),
        (["-l", "=x"], "invalid label key"),
        (["--network", "bogus"], "invalid --network 'bogus'"),
        (["--network", "none", "--domain", "example.com"], "--domain cannot be used with --network none"),
        (["-e", "NOVALUE"], "invalid environment variable 'NOVALUE'"),
        (["-o", "nocolon"], "invalid output 'nocolon'"),
        (["-p", "ftp://x"], "unknown publisher type"),
        (["--constraints", "a in"], "invalid --constraints"),
    ],
)
def test_bad_job_flags(capsys: pytest.CaptureFixture[str], flags: list[str], message: str) -> None:
    assert message in failure(capsys, "docker", "run", *flags, "img")


# ---- task flags, shared


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--task-name", "build"], {"Name": "build"}),
        (["-e", "A=B,C=D", "--env", "E=F"], {"Env": {"A": "B", "C": "D", "E": "F"}}),
        (["--cpu", "1", "--memory", "2", "--disk", "3", "--gpu", "4"],
         {"Resources": {"CPU": "1", "Memory": "2", "Disk": "3", "GPU": "4"}}),
        (["--network", "none"], {"Network": {"Type": "None"}}),
        (["--network", "HOST"], {"Network": {"Type": "Host"}}),
        (["--network", "http", "--domain", "example.com", "--domain", ".example.org"],
         {"Network": {"Type": "HTTP", "Domains": ["example.com", ".example.org"]}}),
        (["--timeout", "300", "--queue-timeout", "300"], {"Timeouts": {"TotalTimeout": 300, "QueueTimeout": 300}}),
        (["-o", "outputs:/outputs", "--output", "logs:/var/log"],
         {"ResultPaths": [{"Name": "outputs", "Path": "/outputs"}, {"Name": "logs", "Path": "/var/log"}]}),
        ([], {"Publisher": {"Type": "local"}}),
        (["-p", "noop"], {"Publisher": {"Type": "noop"}}),
        (["-p", "s3://bkt/out/{jobID},opt=region=eu-west-1"],
         {"Publisher": {"Type": "s3", "Params": {"Bucket": "bkt", "Key": "out/{jobID}", "Region": "eu-west-1"}}}),
        (["-i", "s3://bkt/data/,opt=endpoint=http://127.0.0.1:9000", "-i", "ipfs://QmX:/ipfs"],
         {"InputSources": [
             {"Source": {"Type": "s3", "Params": {"Bucket": "bkt", "Key": "data/", "Endpoint": "http://127.0.0.1:9000"}},
              "Alias": "s3://bkt/data/", "Target": "/inputs"},
             {"Source": {"Type": "ipfs", "Params": {"CID": "QmX"}}, "Alias": "ipfs://QmX", "Target": "/ipfs"},
         ]}),
    ],
)  # fmt: skip
def test_task_flags(capsys: pytest.CaptureFixture[str], flags: list[str], expected: dict[str, Any]) -> None:
    spec = task(dry_run(capsys, "docker", "run", *flags, "img"))
    assert {key: spec.get(key) for key in expected} == expected


# ---- docker only


def test_docker_image_command_workdir_and_entrypoint(capsys: pytest.CaptureFixture[str]) -> None:
    spec = dry_run(capsys, "docker", "run", "-w", "/work", "--entrypoint", "/bin/sh,-c", "ubuntu:24.04", "--",
                   "echo hello", "--flag")  # fmt: skip
    assert task(spec)["Engine"] == {
        "Type": "docker",
        "Params": {
            "Image": "ubuntu:24.04",
            "Entrypoint": ["/bin/sh", "-c"],
            "Parameters": ["echo hello", "--flag"],
            "WorkingDirectory": "/work",
        },
    }


def test_docker_workdir_must_be_absolute(capsys: pytest.CaptureFixture[str]) -> None:
    assert "must be an absolute path" in failure(capsys, "docker", "run", "-w", "work", "img")


# ---- wasm only


def test_a_local_module_travels_inline_to_main_wasm(capsys: pytest.CaptureFixture[str], module: Path) -> None:
    spec = task(dry_run(capsys, "wasm", "run", str(module), "a", "b"))
    assert spec["Engine"] == {
        "Type": "wasm",
        "Params": {"EntryModule": "main.wasm", "Entrypoint": "_start", "Parameters": ["a", "b"]},
    }
    [source] = spec["InputSources"]
    assert source["Target"] == "main.wasm"
    assert source["Source"]["Type"] == "inline"
    assert source["Source"]["Params"]["URL"].startswith("data:text/plain;base64,")


def test_a_local_module_with_a_chosen_target(capsys: pytest.CaptureFixture[str], module: Path) -> None:
    spec = task(dry_run(capsys, "wasm", "run", "--entry-point", "run", f"{module}:/app/tool.wasm"))
    assert spec["Engine"]["Params"]["EntryModule"] == "/app/tool.wasm"
    assert spec["Engine"]["Params"]["Entrypoint"] == "run"
    assert spec["InputSources"][0]["Target"] == "/app/tool.wasm"


def test_a_module_bigger_than_512_bytes_travels_as_a_tar_gz(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    big = tmp_path / "big.wasm"
    big.write_bytes(b"\0asm\1\0\0\0" + bytes(1000))
    url = task(dry_run(capsys, "wasm", "run", str(big)))["InputSources"][0]["Source"]["Params"]["URL"]
    assert url.startswith("data:application/gzip;base64,")


def test_a_url_module_and_url_imports_are_downloads(capsys: pytest.CaptureFixture[str]) -> None:
    spec = task(
        dry_run(capsys, "wasm", "run", "-I", "https://example.com/lib.wasm:/lib.wasm", "https://example.com/m.wasm")
    )
    targets = {s["Target"]: s["Source"] for s in spec["InputSources"]}
    assert targets["main.wasm"] == {"Type": "urlDownload", "Params": {"URL": "https://example.com/m.wasm"}}
    assert targets["/lib.wasm"] == {"Type": "urlDownload", "Params": {"URL": "https://example.com/lib.wasm"}}
    assert spec["Engine"]["Params"]["ImportModules"] == ["/lib.wasm"]


def test_a_local_import_needs_a_target(capsys: pytest.CaptureFixture[str], module: Path) -> None:
    assert "must specify a target path" in failure(capsys, "wasm", "run", "-I", str(module), "/app/main.wasm")


def test_a_mounted_path_is_used_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    spec = task(dry_run(capsys, "wasm", "run", "-i", "s3://bkt/mods/", "/inputs/tool.wasm"))
    assert spec["Engine"]["Params"]["EntryModule"] == "/inputs/tool.wasm"
    assert [s["Target"] for s in spec["InputSources"]] == ["/inputs"]


def test_wait_false_is_accepted_in_go_style(capsys: pytest.CaptureFixture[str]) -> None:
    assert dry_run(capsys, "docker", "run", "--wait=false", "--id-only=true", "img")["Type"] == "batch"


def test_a_spec_out_of_bounds_is_explained_without_pydantic_noise() -> None:
    task = {"Name": "main", "Engine": {"Type": "noop"}, "Timeouts": {"ExecutionTimeout": 10**20}}
    with pytest.raises(SpecError) as raised:
        validate_spec({"Type": "batch", "Tasks": [task]})
    assert raised.value.message == (
        "the job provided is invalid: Tasks.0.Timeouts.ExecutionTimeout: "
        "Input should be less than or equal to 9223372036"
    )
