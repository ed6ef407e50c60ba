"""The job commands against a real node: specs from files and stdin, templating, stop, list paging."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import ServeProcess, wait_until
from tests.e2e.test_cli_config import bacalhau
from tests.helpers import data_url, get_job, wasm_job

pytestmark = pytest.mark.e2e


def spec_file(tmp_path: Path, job: dict[str, object], name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(job) if name.endswith(".yaml") else json.dumps(job))
    return path


def test_job_run_yaml_and_json_specs(hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path) -> None:
    job = wasm_job(wasm("hello"), "from-spec")
    for name in ("job.yaml", "job.json"):
        run = hybrid.cli("job", "run", str(spec_file(tmp_path, job, name)))
        assert "Completed successfully" in run.stdout
        job_id = run.stdout.split("Job ID: ")[1].split()[0]
        [execution] = get_job(hybrid.url, job_id, include="executions")["Executions"]["Items"]
        assert execution["RunOutput"]["Stdout"] == "Hello, world! from-spec\n"


def test_job_run_reads_stdin_and_fills_templates(hybrid: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    spec = yaml.safe_dump(wasm_job(wasm("hello"), "{{.Greeting}}"))
    run = hybrid.cli("job", "run", "--id-only", "-V", "Greeting=templated", input=spec)
    job_id = run.stdout.strip()
    [execution] = get_job(hybrid.url, job_id, include="executions")["Executions"]["Items"]
    assert execution["RunOutput"]["Stdout"] == "Hello, world! templated\n"

    missing = hybrid.cli("job", "run", input=spec, check=False)
    assert missing.returncode == 1
    assert 'map has no entry for key "Greeting"' in missing.stderr

    raw = hybrid.cli("job", "run", "--no-template", "--id-only", input=spec)
    assert raw.stdout.strip().startswith("j-")


def test_invalid_specs_are_refused_before_submission(hybrid: ServeProcess, tmp_path: Path) -> None:
    empty = hybrid.cli("job", "run", str(spec_file(tmp_path, {}, "empty.yaml")), check=False)
    assert empty.returncode == 1 and "the job provided is invalid" in empty.stderr
    with_id = hybrid.cli("job", "validate", str(spec_file(tmp_path, {"ID": "x", "Type": "batch"})), check=False)
    assert "field: 'ID' in 'Job' is not allowed" in with_id.stderr
    valid = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    assert hybrid.cli("job", "validate", str(spec_file(tmp_path, valid))).stdout.strip() == "OK"


def test_job_stop_stops_a_running_job(hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path) -> None:
    module = tmp_path / "spin.wasm"
    module.write_bytes(wasm("spin"))
    job_id = hybrid.cli("wasm", "run", str(module), "--wait=false").stdout.strip()
    wait_until(lambda: get_job(hybrid.url, job_id)["Job"]["State"]["StateType"] == "Running", 20, "job to run")
    stopped = hybrid.cli("job", "stop", job_id)
    assert "Job stop successfully submitted with evaluation ID:" in stopped.stdout

    def cancelled() -> bool:
        executions = get_job(hybrid.url, job_id, include="executions")["Executions"]["Items"]
        return all(e["ComputeState"]["StateType"] == 11 for e in executions)

    wait_until(cancelled, 20, "the execution to be cancelled")
    job = get_job(hybrid.url, job_id)["Job"]
    assert job["State"] == {"StateType": "Stopped", "Message": "Stopped at user request"}
    again = hybrid.cli("job", "stop", job_id, check=False)
    assert again.returncode == 1 and "Job is already in a terminal state" in again.stderr


def test_job_list_limits_and_offers_the_next_page(hybrid: ServeProcess) -> None:
    noop = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    ids = [hybrid.cli("job", "run", "--wait=false", input=json.dumps(noop)).stdout.strip() for _ in range(3)]
    first = hybrid.cli("job", "list", "--limit", "2")
    assert "To fetch more records use:" in first.stdout
    token = first.stdout.split("--next-token ")[1].split()[0]
    rest = json.loads(hybrid.cli("job", "list", "--limit", "2", "--next-token", token, "--output", "json").stdout)
    assert [job["ID"] for job in rest] == ids[2:]
    listed = json.loads(hybrid.cli("job", "list", "--output", "json").stdout)
    assert [job["ID"] for job in listed] == ids


def test_a_job_with_an_unplaceable_request_explains_why(hybrid: ServeProcess) -> None:
    big = {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}, "Resources": {"CPU": "512"}}]}
    run = hybrid.cli("job", "run", input=json.dumps(big), check=False)
    assert run.returncode == 1
    assert "not enough nodes to run job" in run.stdout + run.stderr
    assert "job requires more CPU" in run.stdout + run.stderr


def test_inline_data_urls_in_specs(hybrid: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    job = wasm_job(wasm("files"), "cat", "/in/a.txt")
    job["Tasks"][0]["InputSources"].append(  # type: ignore[index]
        {"Target": "/in/a.txt", "Source": {"Type": "inline", "Params": {"URL": data_url(b"abc", "text/plain")}}}
    )
    run = hybrid.cli("job", "run", "--id-only", input=json.dumps(job))
    [execution] = get_job(hybrid.url, run.stdout.strip(), include="executions")["Executions"]["Items"]
    assert execution["RunOutput"]["Stdout"] == "abc"


def test_run_follow_streams_the_output(hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path) -> None:
    module = tmp_path / "ticker.wasm"
    module.write_bytes(wasm("ticker"))
    result = hybrid.cli("wasm", "run", "-f", str(module), "--", "3", "50")
    assert result.stdout.startswith("Job successfully submitted. Job ID: j-")
    assert "Waiting for logs... (Enter Ctrl+C to exit at any time, your job will continue running):" in result.stdout
    body = result.stdout.split("running):\n\n", 1)[1]
    assert sorted(body.splitlines()) == ["err 1", "err 2", "err 3", "out 1", "out 2", "out 3"]


def test_node_details_and_failure_exit_codes(
    hybrid: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    hello = tmp_path / "hello.wasm"
    hello.write_bytes(wasm("hello"))
    detailed = hybrid.cli("wasm", "run", "--node-details", str(hello), "--", "x")
    assert "\nJob Results By Node:\n• Node n-" in detailed.stdout
    assert ": Hello, world! x\n" in detailed.stdout

    spin = tmp_path / "spin.wasm"
    spin.write_bytes(wasm("spin"))
    failed = hybrid.cli("wasm", "run", "--timeout", "1", str(spin), check=False)
    assert failed.returncode == 1
    assert "Error: job failed" in failed.stderr
    assert "bacalhau job describe" in failed.stdout, "the hints are printed all the same"
    tolerated = hybrid.cli("wasm", "run", "--timeout", "1", "--ignore-job-failure", str(spin), check=False)
    assert tolerated.returncode == 0
    assert "Error: job failed" in tolerated.stderr


def test_global_flags_after_the_command_reach_the_node(hybrid: ServeProcess, tmp_path: Path) -> None:
    """``job list --config x.yaml`` and ``job list -c API.Port=...``, as the original's persistent flags; a template
    filled from -V, and a YAML error in one line, from a real process."""
    client = tmp_path / "client"
    port = str(hybrid.port)
    config = tmp_path / "x.yaml"
    config.write_text(f"API: {{Port: {port}}}\n")
    marker = uuid.uuid4().hex[:12]
    spec = tmp_path / "job.yaml"
    spec.write_text("Type: batch\nLabels: {marker: '{{ .Marker }}'}\nTasks: [{Name: main, Engine: {Type: noop}}]\n")
    job_id = bacalhau(
        client, "job", "run", str(spec), "--wait=false", "-V", f"Marker={marker}", "-c", f"API.Port={port}"
    )
    for flags in (["--config", str(config)], ["-c", f"API.Port={port}"], ["--api-port", port]):
        listed = bacalhau(client, "job", "list", "--labels", f"marker={marker}", "--output", "json", *flags)
        assert [job["ID"] for job in json.loads(listed.stdout)] == [job_id.stdout.strip()]

    spec.write_text("Type: batch\nName: x\nTasks: a: b\n")
    refused = bacalhau(client, "job", "run", str(spec), "--api-port", port, check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"Error: the job provided is invalid: {spec}: invalid YAML at line 3, column 9: "
        "mapping values are not allowed here"
    )
