"""End to end: jobs that read S3, URL and local inputs, publish to S3, and use ``env:`` secrets, on a real node."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import S3_CREDENTIALS, S3Bucket, ServeProcess
from tests.helpers import executions, get_job, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-value"


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("allowed")
    (folder / "readme.txt").write_text("from the node's disk\n")
    return folder


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Iterator[ServeProcess]:
    """A hybrid node with S3 credentials, a local allow-list, a small download limit and an env allow-list."""
    env = {**S3_CREDENTIALS, "API_TOKEN": SECRET, "NOT_SHARED": "hidden"}
    serve = ServeProcess(tmp_path_factory.mktemp("data") / "node", "--orchestrator", "--compute", env=env)
    serve.config = [
        "-c", f"Compute.AllowListedLocalPaths={shared_dir}",
        "-c", "Compute.Env.AllowList=API_*",
        "-c", "InputSources.MaxDownloadSize=64kb",
        "-c", "InputSources.MaxRetryCount=1",
    ]  # fmt: skip
    yield serve.start()
    serve.stop()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's stderr."""


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Static files over HTTP on loopback: ``hello.txt`` and a ``big.bin`` over the node's download limit."""
    root = tmp_path_factory.mktemp("www")
    (root / "hello.txt").write_text("hello over http\n")
    (root / "big.bin").write_bytes(b"0" * 100_000)
    handler = partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def cat_job(wasm: Callable[[str], bytes], source: dict[str, Any], *paths: str, **fields: Any) -> dict[str, Any]:
    job = wasm_job(wasm("files"), "cat", *paths, **fields)
    job["Tasks"][0]["InputSources"].append({"Source": source, "Target": "/inputs"})
    return job


def run(node: ServeProcess, job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit, wait for the end, and return the job and its (last) execution."""
    job_id = submit(node.url, job)
    finished = wait_for_state(node.url, job_id, timeout=60)
    return finished, executions(node.url, job_id)[0]


def s3_source(bucket: S3Bucket, key: str, **params: str) -> dict[str, Any]:
    return {"Type": "s3", "Params": {"Bucket": bucket.name, "Key": key, "Endpoint": bucket.endpoint, **params}}


def test_s3_inputs_by_prefix_and_filter_and_s3_results_fetched_by_job_get(
    node: ServeProcess, wasm: Callable[[str], bytes], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    s3_bucket.put("in/a.csv", b"1,2\n")
    s3_bucket.put("in/b.csv", b"3,4\n")
    s3_bucket.put("in/skip.txt", b"not me\n")
    source = s3_source(s3_bucket, "in/", Filter=r"\.csv$")
    job = cat_job(wasm, source, "/inputs/a.csv", "/inputs/b.csv")
    job["Tasks"][0]["Publisher"] = {
        "Type": "s3",
        "Params": {"Bucket": s3_bucket.name, "Key": "out/{jobID}/{executionID}", "Endpoint": s3_bucket.endpoint},
    }
    finished, execution = run(node, job)
    assert finished["State"]["StateType"] == "Completed", execution["ComputeState"]
    assert execution["RunOutput"]["Stdout"] == "1,2\n3,4\n"
    key = f"out/{finished['ID']}/{execution['ID']}.tar.gz"
    assert s3_bucket.keys() == ["in/a.csv", "in/b.csv", "in/skip.txt", key]

    results = httpx.get(f"{node.url}/api/v1/orchestrator/jobs/{finished['ID']}/results").json()["Items"]
    assert [r["Type"] for r in results] == ["s3PreSigned"]
    assert results[0]["Params"]["Key"] == key and "X-Amz-Signature" in results[0]["Params"]["PreSignedURL"]

    out = tmp_path / "got"
    out.mkdir()
    node.cli("job", "get", finished["ID"], "--output-dir", str(out), unset=tuple(S3_CREDENTIALS))
    assert (out / "stdout").read_text() == "1,2\n3,4\n"
    assert (out / "exitCode").read_text() == "0"
    assert sorted(p.name for p in out.iterdir()) == ["exitCode", "stderr", "stdout"]


def test_one_s3_object_by_key_and_a_missing_one(
    node: ServeProcess, wasm: Callable[[str], bytes], s3_bucket: S3Bucket
) -> None:
    s3_bucket.put("docs/report.txt", b"quarterly\n")
    finished, execution = run(node, cat_job(wasm, s3_source(s3_bucket, "docs/report.txt"), "/inputs/report.txt"))
    assert finished["State"]["StateType"] == "Completed"
    assert execution["RunOutput"]["Stdout"] == "quarterly\n"

    finished, execution = run(node, cat_job(wasm, s3_source(s3_bucket, "docs/missing.txt"), "/inputs/x"))
    assert finished["State"]["StateType"] == "Failed"
    message = execution["ComputeState"]["Message"]
    assert f"failed to prepare input /inputs (s3): s3://{s3_bucket.name}/docs/missing.txt: NoSuchKey" in message


def test_url_input_and_its_failures(node: ServeProcess, wasm: Callable[[str], bytes], web: str) -> None:
    url = {"Type": "urlDownload", "Params": {"URL": f"{web}/hello.txt"}}
    finished, execution = run(node, cat_job(wasm, url, "/inputs/hello.txt"))
    assert finished["State"]["StateType"] == "Completed"
    assert execution["RunOutput"]["Stdout"] == "hello over http\n"

    missing = {"Type": "urlDownload", "Params": {"URL": f"{web}/missing.txt"}}
    finished, execution = run(node, cat_job(wasm, missing, "/inputs/missing.txt"))
    assert finished["State"]["StateType"] == "Failed"
    assert (
        f"input /inputs (urlDownload): HTTP 404 File not found from {web}/missing.txt"
        in (execution["ComputeState"]["Message"])
    )

    big = {"Type": "urlDownload", "Params": {"URL": f"{web}/big.bin"}}
    finished, execution = run(node, cat_job(wasm, big, "/inputs/big.bin"))
    assert finished["State"]["StateType"] == "Failed"
    assert f"{web}/big.bin is larger than the limit of 64 kB (at least 100 kB)" in execution["ComputeState"]["Message"]


def test_local_directory_inside_and_outside_the_allow_list(
    node: ServeProcess, wasm: Callable[[str], bytes], shared_dir: Path, tmp_path: Path
) -> None:
    allowed = {"Type": "localDirectory", "Params": {"SourcePath": str(shared_dir)}}
    finished, execution = run(node, cat_job(wasm, allowed, "/inputs/readme.txt"))
    assert finished["State"]["StateType"] == "Completed"
    assert execution["RunOutput"]["Stdout"] == "from the node's disk\n"

    outside = {"Type": "local", "Params": {"SourcePath": str(tmp_path)}}
    finished, execution = run(node, cat_job(wasm, outside, "/inputs/x"))
    assert finished["State"]["StateType"] == "Failed"
    assert f"volume {tmp_path} is not allowlisted" in execution["ComputeState"]["Message"]


def test_env_secrets_resolve_on_the_node_and_never_reach_the_api(
    node: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    job = wasm_job(wasm("env"))
    job["Tasks"][0]["Env"] = {"TOKEN": "env:API_TOKEN", "PLAIN": "visible"}
    finished, execution = run(node, job)
    assert finished["State"]["StateType"] == "Completed"
    assert f"TOKEN={SECRET}\n" in execution["RunOutput"]["Stdout"]
    assert "PLAIN=visible\n" in execution["RunOutput"]["Stdout"]
    stored = get_job(node.url, finished["ID"])["Job"]
    assert stored["Tasks"][0]["Env"]["TOKEN"] == "env:API_TOKEN"
    described = json.loads(node.cli("job", "describe", finished["ID"], "--output", "json").stdout)
    for item in described["Executions"]["Items"]:
        item.pop("RunOutput")  # what the job itself printed is its own business
    assert SECRET not in json.dumps(described)


def test_env_secrets_outside_the_allow_list_are_refused(node: ServeProcess, wasm: Callable[[str], bytes]) -> None:
    job = wasm_job(wasm("env"))
    job["Tasks"][0]["Env"] = {"LEAK": "env:NOT_SHARED"}
    job_id = submit(node.url, job)
    finished = wait_for_state(node.url, job_id, timeout=60)
    assert finished["State"]["StateType"] == "Failed"
    history = node.cli("job", "history", job_id, "--output", "json").stdout
    assert "refers to host variable NOT_SHARED, which this node does not allow" in history
    assert "hidden" not in history


def test_s3_results_without_presigning_are_read_with_the_clients_credentials(
    serve_factory: Callable[..., ServeProcess], wasm: Callable[[str], bytes], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    node = ServeProcess(tmp_path / "plain", "--orchestrator", "--compute", env=dict(S3_CREDENTIALS))
    node.config = ["-c", "Publishers.Types.S3.PreSignedURLDisabled=true"]
    node.start()
    try:
        job = wasm_job(wasm("hello"), publisher="")
        job["Tasks"][0]["Publisher"] = {
            "Type": "s3",
            "Params": {"Bucket": s3_bucket.name, "Key": "{jobID}", "Endpoint": s3_bucket.endpoint, "Encoding": "plain"},
        }
        finished, _ = run(node, job)
        assert finished["State"]["StateType"] == "Completed"
        results = httpx.get(f"{node.url}/api/v1/orchestrator/jobs/{finished['ID']}/results").json()["Items"]
        assert results[0]["Type"] == "s3" and results[0]["Params"]["Key"] == f"{finished['ID']}/"

        out = tmp_path / "got"
        out.mkdir()
        node.cli("job", "get", finished["ID"], "--output-dir", str(out))
        assert (out / "stdout").read_text() == "Hello, world!\n"

        failed = node.cli("job", "get", finished["ID"], "--output-dir", str(out), check=False,
                          unset=tuple(S3_CREDENTIALS))  # fmt: skip
        assert failed.returncode == 1
        assert "with this machine's AWS credentials" in failed.stderr
    finally:
        node.stop()
