"""End to end: ``job get`` of a job that ran on several compute nodes (Count > 1): merged, raw, or one path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServeProcess
from tests.e2e.cluster import Cluster
from tests.helpers import submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    stack = Cluster(tmp_path_factory.mktemp("cluster"))
    stack.start_orchestrator()
    stack.add_computes("c1", "c2", "c3")
    yield stack
    stack.stop()


@pytest.fixture
def orchestrator(cluster: Cluster) -> ServeProcess:
    """The node that the CLI talks to."""
    assert cluster.orchestrator is not None
    return cluster.orchestrator


def test_job_get_merges_several_executions_or_keeps_them_raw(
    orchestrator: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    job_id = submit(orchestrator.url, wasm_job(wasm("hello"), "x", Count=3))
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Completed"

    merged = tmp_path / "merged"
    merged.mkdir()
    orchestrator.cli("job", "get", job_id, "--output-dir", str(merged), "--download-timeout-secs", "1m")
    assert sorted(p.name for p in merged.iterdir()) == ["exitCode", "stderr", "stdout"]
    assert (merged / "stdout").read_text() == "Hello, world! x\n" * 3
    assert (merged / "exitCode").read_text() == "000"

    raw = tmp_path / "raw"
    raw.mkdir()
    orchestrator.cli("job", "get", job_id, "--output-dir", str(raw), "--raw")
    folders = sorted((raw / "raw").iterdir())
    assert len(folders) == 3 and all(f.name.startswith("e-") for f in folders)
    assert [(f / "stdout").read_text() for f in folders] == ["Hello, world! x\n"] * 3

    only = tmp_path / "only"
    only.mkdir()
    orchestrator.cli("job", "get", f"{job_id}/stdout", "--output-dir", str(only))
    assert [p.name for p in only.iterdir()] == ["stdout"]

    bad = orchestrator.cli("job", "get", job_id, "--download-timeout-secs", "soon", check=False)
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr


def test_results_that_cannot_merge_say_to_use_raw(
    orchestrator: ServeProcess, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    job = wasm_job(wasm("files"), "write", "/outputs/same.txt", "x", outputs={"outputs": "/outputs"}, Count=2)
    job_id = submit(orchestrator.url, job)
    assert wait_for_state(orchestrator.url, job_id)["State"]["StateType"] == "Completed"
    out = tmp_path / "out"
    out.mkdir()
    failed = orchestrator.cli("job", "get", job_id, "--output-dir", str(out), check=False)
    assert failed.returncode == 1
    assert f"cannot merge results as output already exists: {out}/outputs/same.txt" in failed.stderr
    assert "--raw" in failed.stderr
