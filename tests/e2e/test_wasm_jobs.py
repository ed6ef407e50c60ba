"""End to end: a hybrid ``bacalhau serve`` process running WebAssembly jobs written in WAT, driven by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.helpers import executions, get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


def test_wasm_run_hello_world_then_describe_and_get(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(wasm("hello"))

    run = hybrid.cli("wasm", "run", str(module), "--", "a", "b")
    assert "Job successfully submitted. Job ID: j-" in run.stdout
    assert "Completed successfully" in run.stdout
    assert "To download the results, execute:" in run.stdout
    job_id = run.stdout.split("Job ID: ")[1].split()[0]

    described = hybrid.cli("job", "describe", job_id).stdout
    assert "State         = Completed" in described
    assert "Hello, world! a b" in described

    as_json = json.loads(hybrid.cli("job", "describe", job_id, "--output", "json").stdout)
    assert as_json["Job"]["State"]["StateType"] == "Completed"
    assert as_json["Executions"]["Items"][0]["ComputeState"]["StateType"] == 9

    hybrid.cli("job", "get", job_id)
    results = hybrid.data_dir.parent / f"job-{job_id}"
    assert (results / "stdout").read_text() == "Hello, world! a b\n"
    assert (results / "stderr").read_text() == ""
    assert (results / "exitCode").read_text() == "0"

    listed = hybrid.cli("job", "list").stdout
    assert job_id[:10] in listed and "Completed" in listed
    assert "Completed" in hybrid.cli("job", "executions", job_id).stdout
    history = hybrid.cli("job", "history", job_id).stdout
    assert "Job submitted" in history and "Completed successfully" in history


def test_reads_an_inline_input_file(hybrid: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    job = wasm_job(wasm("files"), "cat", "/data/greeting.txt", inputs={"/data/greeting.txt": b"hello from inline\n"})
    job_id = submit(hybrid.url, job)
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"
    [execution] = executions(hybrid.url, job_id)
    assert execution["RunOutput"]["Stdout"] == "hello from inline\n"
    assert execution["RunOutput"]["ExitCode"] == 0


def test_writes_into_a_result_path_that_job_get_downloads(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    job = wasm_job(wasm("files"), "write", "/outputs/result.txt", "written by wasm", outputs={"outputs": "/outputs"})
    job_id = submit(hybrid.url, job)
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"
    target = tmp_path / "results"
    target.mkdir()
    got = hybrid.cli("job", "get", job_id, "--output-dir", str(target))
    assert str(target) in got.stdout
    assert (target / "outputs" / "result.txt").read_text() == "written by wasm"
    assert sorted(p.name for p in target.iterdir()) == ["exitCode", "outputs", "stderr", "stdout"]


def test_a_non_zero_exit_code_completes_the_job_and_is_recorded(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    job_id = submit(hybrid.url, wasm_job(wasm("exit")))
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Completed"
    [execution] = executions(hybrid.url, job_id)
    assert execution["RunOutput"]["ExitCode"] == 3
    assert execution["RunOutput"]["stderr"] == "failing\n"
    hybrid.cli("job", "get", job_id)
    assert (tmp_path / f"job-{job_id}" / "exitCode").read_text() == "3"


def test_a_job_that_exceeds_its_timeout_fails_with_a_clear_message(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    job_id = submit(hybrid.url, wasm_job(wasm("spin"), timeouts={"ExecutionTimeout": 1}))
    job = wait_for_state(hybrid.url, job_id, timeout=30)
    assert job["State"]["StateType"] == "Failed"
    [execution] = executions(hybrid.url, job_id)
    assert execution["ComputeState"]["StateType"] == 10
    assert "timed out after 1s" in execution["ComputeState"]["Message"]
    assert "timed out" in job["State"]["Message"]


def test_wait_false_prints_only_the_id_and_a_failed_wait_exits_non_zero(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    module = tmp_path / "spin.wasm"
    module.write_bytes(wasm("spin"))
    quick = hybrid.cli("wasm", "run", str(module), "--timeout", "1", "--wait=false")
    assert quick.stdout.strip().startswith("j-") and len(quick.stdout.split()) == 1

    waited = hybrid.cli("wasm", "run", str(module), "--timeout", "1", check=False)
    assert waited.returncode == 1
    assert "Error: job failed" in waited.stderr


def test_job_logs_follow_prints_lines_while_the_job_runs(hybrid: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    """Lines come as the job prints them, and following ends when the job does. The job ticks for a minute, far
    longer than the CLI can take to start on a loaded machine, and is stopped once a line came live."""
    job_id = submit(hybrid.url, wasm_job(wasm("ticker"), "240", "250"))
    wait_for_state(hybrid.url, job_id, ("Running",))
    env = hybrid.env() | {"BACALHAU_API_PORT": str(hybrid.port)}
    with subprocess.Popen(
        [sys.executable, "-m", "bacalhau", "job", "logs", "-f", job_id], env=env, stdout=subprocess.PIPE, text=True
    ) as follower:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        assert first.startswith(("out 1", "err 1"))
        assert get_job(hybrid.url, job_id)["Job"]["State"]["StateType"] == "Running", "the first line came live"
        hybrid.cli("job", "stop", job_id)
        rest = follower.stdout.read()
        assert follower.wait(30) == 0
    lines = [first, *rest.splitlines(keepends=True)]
    for stream in ("out", "err"):
        printed = [line for line in lines if line.startswith(stream)]
        assert printed == [f"{stream} {i}\n" for i in range(1, len(printed) + 1)], "in order, none lost"
    assert wait_for_state(hybrid.url, job_id)["State"]["StateType"] == "Stopped"
