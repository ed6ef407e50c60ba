"""Docker jobs end to end: a hybrid node with the engine, driven by the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import docker
from tests.conftest import ServeProcess, wait_until
from tests.docker.conftest import IMAGE, containers_labelled
from tests.helpers import executions, get_job, wait_for_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def docker_node(docker_host: str, serve_factory: Callable[..., ServeProcess]) -> ServeProcess:
    return serve_factory("--orchestrator", "--compute", name="docker-node")


def test_the_node_advertises_docker_only_with_an_engine(docker_node: ServeProcess) -> None:
    node = json.loads(docker_node.cli("agent", "node", "--output", "json").stdout)
    assert "docker" in node["ComputeNodeInfo"]["ExecutionEngines"]


def test_docker_run_then_describe_get_and_logs(docker_node: ServeProcess, engine: docker.DockerClient) -> None:
    run = docker_node.cli("docker", "run", "-o", "outputs:/outputs", IMAGE, "--", "sh", "-c",
                          "echo hello from docker; echo result > /outputs/r.txt")  # fmt: skip
    assert "Completed successfully" in run.stdout
    job_id = run.stdout.split("Job ID: ")[1].split()[0]
    assert "hello from docker" in docker_node.cli("job", "describe", job_id).stdout
    docker_node.cli("job", "get", job_id)
    results = docker_node.data_dir.parent / f"job-{job_id}"
    assert (results / "stdout").read_text() == "hello from docker\n"
    assert (results / "outputs" / "r.txt").read_text() == "result\n"
    assert (results / "exitCode").read_text() == "0"
    assert docker_node.cli("job", "logs", job_id).stdout == "hello from docker\n"
    assert containers_labelled(engine, f"bacalhau-jobID={job_id}") == []


def test_logs_follow_a_running_container(docker_node: ServeProcess) -> None:
    script = "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done"
    job_id = docker_node.cli("docker", "run", "--wait=false", IMAGE, "--", "sh", "-c", script).stdout.strip()
    wait_for_state(docker_node.url, job_id, ("Running",))
    followed = docker_node.cli("job", "logs", "-f", job_id)
    assert followed.stdout == "".join(f"tick {i}\n" for i in range(1, 6))
    assert wait_for_state(docker_node.url, job_id)["State"]["StateType"] == "Completed"


def test_stopping_a_docker_job_removes_its_container(docker_node: ServeProcess, engine: docker.DockerClient) -> None:
    job_id = docker_node.cli("docker", "run", "--wait=false", IMAGE, "--", "sleep", "600").stdout.strip()
    wait_until(lambda: containers_labelled(engine, f"bacalhau-jobID={job_id}"), 30, "the container to start")
    docker_node.cli("job", "stop", job_id)
    wait_until(lambda: not containers_labelled(engine, f"bacalhau-jobID={job_id}"), 30, "the container to go")
    assert get_job(docker_node.url, job_id)["Job"]["State"]["StateType"] == "Stopped"


def test_a_timeout_kills_the_container_and_fails_the_job(
    docker_node: ServeProcess, engine: docker.DockerClient
) -> None:
    job_id = docker_node.cli(
        "docker", "run", "--wait=false", "--timeout", "2", IMAGE, "--", "sleep", "600"
    ).stdout.strip()
    assert wait_for_state(docker_node.url, job_id, timeout=60)["State"]["StateType"] == "Failed"
    wait_until(lambda: not containers_labelled(engine, f"bacalhau-jobID={job_id}"), 30, "the container to go")


def test_exceeding_the_memory_limit_fails_cleanly(docker_node: ServeProcess) -> None:
    job_id = docker_node.cli("docker", "run", "--wait=false", "--memory", "32mb", IMAGE, "--",
                             "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1").stdout.strip()  # fmt: skip
    job = wait_for_state(docker_node.url, job_id, timeout=60)
    assert job["State"]["StateType"] == "Failed"
    assert "memory limit exceeded" in job["State"]["Message"]
    assert any("memory limit exceeded" in e["ComputeState"]["Message"] for e in executions(docker_node.url, job_id))


def test_an_http_network_job_is_refused_with_the_reason_and_never_runs(
    docker_node: ServeProcess, engine: docker.DockerClient
) -> None:
    """It used to run on an unrestricted bridge: a silent downgrade of what the job asked for."""
    run = docker_node.cli(
        "docker", "run", "--network", "http", "--domain", "example.com", IMAGE, "--", "true", check=False
    )
    assert run.returncode == 1, run.stdout + run.stderr
    job_id = run.stdout.split("Job ID: ")[1].split()[0]
    job = wait_for_state(docker_node.url, job_id)
    assert job["State"]["StateType"] == "Failed"
    assert "network type HTTP" in job["State"]["Message"] + docker_node.cli("job", "describe", job_id).stdout
    assert containers_labelled(engine, f"bacalhau-jobID={job_id}") == []
