"""``/metrics`` on real nodes: after a known sequence of jobs the counters, gauges and histograms hold what happened,
the compute half of a hybrid node (a child process) exports its own, labels stay bounded, and API users need
read:agent to scrape. And ``/api/v1/agent/debug`` with ``bacalhau agent debug``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bacalhau.orchestrator.store import MIGRATIONS
from tests.api.support import noop_job, queued_job, stop
from tests.conftest import ServeProcess, wait_until
from tests.e2e.cluster import Cluster
from tests.helpers import data_url, get_job, submit, wait_for_state

pytestmark = pytest.mark.e2e

COMPLETED_JOBS = 3
NOT_WASM = b"\x00asm-but-not-really: a module no engine can load"
NODE_TOKEN = "metrics-node-token-that-is-secret"


def scrape(url: str, **kwargs: Any) -> list[Sample]:
    response = httpx.get(f"{url}/metrics", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(response.text))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), "a metric family is exported twice"
    return [sample for family in families for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    found = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, f"no sample {name} {labels}"
    return sum(s.value for s in found)


def failing_wasm_job() -> dict[str, Any]:
    """A WebAssembly job whose module (inline, ``len(NOT_WASM)`` bytes) no engine can load: its execution fails."""
    sources = [{"Target": "/app/main.wasm", "Source": {"Type": "inline", "Params": {"URL": data_url(NOT_WASM)}}}]
    task = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/main.wasm"}},
        "InputSources": sources,
    }
    return {"Type": "batch", "Count": 1, "Tasks": [task]}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path_factory.mktemp("metrics") / "node", "--orchestrator", "--compute")
    serve.config += ["-c", f"Orchestrator.Auth.Token={NODE_TOKEN}", "-c", "Orchestrator.Scheduler.MaxRetries=0"]
    serve.start()
    yield serve
    serve.stop()


@pytest.fixture(scope="module")
def history(node: ServeProcess) -> dict[str, Any]:
    """The known sequence, run once: completed noop jobs, a failed WebAssembly job, a queued job then stopped; with
    the queue as scraped while that job waited."""
    completed = [submit(node.url, noop_job()) for _ in range(COMPLETED_JOBS)]
    failed = submit(node.url, failing_wasm_job())
    for job_id in completed:
        assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    assert wait_for_state(node.url, failed)["State"]["StateType"] == "Failed"
    queued = submit(node.url, queued_job())
    wait_for_state(node.url, queued, ("Queued",))

    def queue_seen() -> list[Sample] | None:
        samples = scrape(node.url)
        return samples if value(samples, "bacalhau_job_queue_depth") == 1 else None

    while_queued = wait_until(queue_seen, 10, "the queued job in the broker's queue")
    assert stop(node.url, queued).status_code == 200
    assert wait_for_state(node.url, queued)["State"]["StateType"] == "Stopped"
    return {"completed": completed, "failed": failed, "queued": queued, "while_queued": while_queued}


def test_job_counters_and_gauges_after_a_known_sequence(node: ServeProcess, history: dict[str, Any]) -> None:
    samples = scrape(node.url)
    assert value(samples, "bacalhau_jobs_submitted_total", type="batch") == COMPLETED_JOBS + 2
    assert value(samples, "bacalhau_jobs_completed_total", type="batch") == COMPLETED_JOBS
    assert value(samples, "bacalhau_jobs_failed_total", type="batch") == 1
    assert value(samples, "bacalhau_jobs_stopped_total", type="batch") == 1
    assert value(samples, "bacalhau_jobs_submitted_total", type="service") == 0
    assert value(samples, "bacalhau_jobs", state="Completed") == COMPLETED_JOBS
    assert value(samples, "bacalhau_jobs", state="Failed") == 1
    assert value(samples, "bacalhau_jobs", state="Stopped") == 1
    assert value(samples, "bacalhau_jobs", state="Running") == 0
    assert value(samples, "bacalhau_jobs", state="Queued") == 0

    queued = history["while_queued"]
    assert value(queued, "bacalhau_jobs", state="Queued") == 1
    assert value(queued, "bacalhau_evaluations", state="blocked") == 1
    assert value(queued, "bacalhau_job_queue_oldest_age_seconds") > 0
    assert value(samples, "bacalhau_job_queue_depth") == 0
    assert value(samples, "bacalhau_job_queue_oldest_age_seconds") == 0


def test_latency_histograms_after_a_known_sequence(node: ServeProcess, history: dict[str, Any]) -> None:
    samples = scrape(node.url)
    assert value(samples, "bacalhau_job_submit_to_completed_seconds_count", type="batch") == COMPLETED_JOBS
    assert value(samples, "bacalhau_job_submit_to_completed_seconds_sum", type="batch") > 0
    inf = value(samples, "bacalhau_job_submit_to_completed_seconds_bucket", type="batch", le="+Inf")
    assert inf == COMPLETED_JOBS
    # One placement per job that found a node: the completed ones and the failed one (no retries); never the one
    # that waited, which was stopped before any room appeared.
    assert value(samples, "bacalhau_placement_latency_seconds_count") == COMPLETED_JOBS + 1
    assert value(samples, "bacalhau_orchestrator_store_commit_seconds_count") > 0


def test_the_compute_process_exports_its_own_metrics(node: ServeProcess, history: dict[str, Any]) -> None:
    samples = scrape(node.url)
    assert value(samples, "bacalhau_compute_executions_total", engine="noop", outcome="completed") == COMPLETED_JOBS
    assert value(samples, "bacalhau_compute_executions_total", engine="wasm", outcome="failed") == 1
    assert value(samples, "bacalhau_compute_executions_total", engine="wasm", outcome="completed") == 0
    assert value(samples, "bacalhau_compute_input_download_bytes_total", source="inline") == len(NOT_WASM)
    assert value(samples, "bacalhau_compute_executions_active", state="running") == 0
    assert value(samples, "bacalhau_compute_capacity_cpu_cores", kind="total") > 0
    assert value(samples, "bacalhau_compute_capacity_memory_bytes", kind="used") == 0
    assert value(samples, "bacalhau_compute_store_commit_seconds_count") > 0


def test_nodes_and_streams(node: ServeProcess, history: dict[str, Any]) -> None:
    node_id = httpx.get(f"{node.url}/api/v1/agent/node").json()["NodeID"]
    samples = scrape(node.url)
    assert value(samples, "bacalhau_nodes", approval="APPROVED", connection="CONNECTED") == 1
    assert value(samples, "bacalhau_nodes", approval="PENDING") == 0
    assert value(samples, "bacalhau_node_executions_running", node_id=node_id) == 0

    def caught_up() -> bool:
        return value(scrape(node.url), "bacalhau_stream_lag_messages", node_id=node_id) == 0

    wait_until(caught_up, 10, "the node to acknowledge every message")


def test_request_latency_is_labelled_by_route_template(node: ServeProcess, history: dict[str, Any]) -> None:
    """Requests for many distinct jobs (and paths that match nothing) make one series each, never one per path."""
    for _ in range(20):
        assert httpx.get(f"{node.url}/api/v1/orchestrator/jobs/j-{uuid.uuid4()}").status_code == 404
        assert httpx.get(f"{node.url}/no/such/{uuid.uuid4().hex}").status_code == 404
    get_job(node.url, history["completed"][0])
    samples = [s for s in scrape(node.url) if s.name == "bacalhau_api_request_duration_seconds_count"]
    routes = {s.labels["route"] for s in samples}
    assert "/api/v1/orchestrator/jobs/{job_id}" in routes and "unmatched" in routes
    assert not [route for route in routes if "j-" in route or "/no/such" in route], routes
    by_status = {
        s.labels["status"]: s.value
        for s in samples
        if s.labels["route"] == "/api/v1/orchestrator/jobs/{job_id}" and s.labels["method"] == "GET"
    }
    assert by_status["404"] >= 20 and by_status["200"] >= 1
    assert value(samples, "bacalhau_api_request_duration_seconds_count", route="unmatched", status="404") >= 20
    assert len(samples) < 100, "request series must stay few"


def test_agent_debug(node: ServeProcess, history: dict[str, Any]) -> None:
    response = httpx.get(f"{node.url}/api/v1/agent/debug", timeout=10)
    assert response.status_code == 200
    assert NODE_TOKEN not in response.text
    debug = response.json()
    assert debug["Node"]["UptimeSeconds"] > 0 and debug["Node"]["Orchestrator"] and debug["Node"]["Compute"]
    orchestrator = debug["Orchestrator"]
    assert set(orchestrator["Broker"]) >= {"Ready", "Inflight", "Blocked", "Waiting", "Timers"}
    assert orchestrator["Broker"]["Blocked"] == 0
    [stream] = orchestrator["Streams"]
    assert stream["NodeID"] == debug["Node"]["NodeID"] and stream["Committed"] > 0
    assert stream["Lag"] == stream["Committed"] - stream["Acked"]
    assert orchestrator["Store"]["SchemaVersion"] == len(MIGRATIONS) and orchestrator["Store"]["SizeBytes"] > 0
    compute = debug["Compute"]  # asked of the compute process
    assert compute["Connected"] is True and compute["Store"]["SchemaVersion"] >= 1
    assert compute["Capacity"]["Total"]["CPU"] > 0
    assert debug["Config"]["Orchestrator"]["Auth"]["Token"] == "********"
    assert debug["Config"]["Orchestrator"]["Scheduler"]["MaxRetries"] == 0
    assert "JobDefaults" not in debug["Config"]  # only what was set
    assert isinstance(debug["RecentErrors"], list)


def test_agent_debug_command(node: ServeProcess, history: dict[str, Any]) -> None:
    shown = json.loads(node.cli("agent", "debug", "--output", "json").stdout)
    assert shown["Node"]["NodeID"] and shown["Orchestrator"]["Store"]["SchemaVersion"] == len(MIGRATIONS)
    as_yaml = yaml.safe_load(node.cli("agent", "debug").stdout)
    assert set(as_yaml) == set(shown)
    assert NODE_TOKEN not in node.cli("agent", "debug", "--output", "json", "--pretty").stdout


def test_a_compute_node_serves_its_own_metrics(tmp_path_factory: pytest.TempPathFactory) -> None:
    cluster = Cluster(tmp_path_factory.mktemp("metrics-cluster"))
    try:
        cluster.start_orchestrator()
        compute = cluster.add_compute("worker")
        samples = scrape(compute.url)
        assert value(samples, "bacalhau_compute_capacity_cpu_cores", kind="total") == 1
        assert not [s for s in samples if s.name.startswith("bacalhau_jobs")], "a compute node has no jobs"
        orchestrator = scrape(cluster.url)
        assert not [s for s in orchestrator if s.name.startswith("bacalhau_compute_")]
        assert value(orchestrator, "bacalhau_nodes", approval="APPROVED", connection="CONNECTED") == 2
        debug = httpx.get(f"{compute.url}/api/v1/agent/debug", timeout=10).json()
        assert "Orchestrator" not in debug and debug["Compute"]["Connected"] is True
    finally:
        for serve in [*cluster.computes.values(), cluster.orchestrator]:
            if serve is not None:
                serve.stop()


READER = ("metricsreader", "metrics-reader-password")
JOBS_ONLY = ("jobsonly", "jobs-only-password")


def test_scraping_needs_read_agent_when_users_are_configured(tmp_path_factory: pytest.TempPathFactory) -> None:
    users = [
        {"Username": READER[0], "Password": READER[1], "Capabilities": [{"Actions": ["read:agent"]}]},
        {"Username": JOBS_ONLY[0], "Password": JOBS_ONLY[1], "Capabilities": [{"Actions": ["read:job"]}]},
    ]
    serve = ServeProcess(tmp_path_factory.mktemp("metrics-auth") / "node", "--orchestrator", "--compute")
    serve.with_config({"API": {"Auth": {"Users": users}}}).start()
    try:
        assert httpx.get(f"{serve.url}/metrics").status_code == 401
        assert httpx.get(f"{serve.url}/metrics", auth=JOBS_ONLY).status_code == 403
        assert httpx.get(f"{serve.url}/api/v1/agent/debug", auth=JOBS_ONLY).status_code == 403
        samples = scrape(serve.url, auth=READER)
        assert value(samples, "bacalhau_compute_capacity_cpu_cores", kind="total") > 0
        refused = [
            s
            for s in samples
            if s.name == "bacalhau_api_request_duration_seconds_count" and s.labels["status"] in ("401", "403")
        ]
        assert {s.labels["route"] for s in refused} == {"/metrics", "/api/v1/agent/debug"}
        debug = httpx.get(f"{serve.url}/api/v1/agent/debug", auth=READER)
        assert debug.status_code == 200 and READER[1] not in debug.text and JOBS_ONLY[1] not in debug.text
    finally:
        serve.stop()


def test_a_stuck_compute_process_leaves_only_its_part_out(hybrid: ServeProcess) -> None:
    """A scrape waits a few seconds at most for the compute process, then answers with the rest; a late answer is
    not mistaken for the next one's."""
    assert hybrid.process is not None
    [child] = [p for p in psutil.Process(hybrid.process.pid).children() if p.name() != "nats-server"]
    child.suspend()
    try:
        samples = scrape(hybrid.url)
        assert value(samples, "bacalhau_jobs_submitted_total", type="batch") == 0
        assert not [s for s in samples if s.name.startswith("bacalhau_compute_")]
        debug = httpx.get(f"{hybrid.url}/api/v1/agent/debug", timeout=10).json()
        assert "did not answer" in debug["Compute"]["Error"]
    finally:
        child.resume()
    samples = scrape(hybrid.url)
    assert value(samples, "bacalhau_compute_capacity_cpu_cores", kind="total") > 0
    assert value(scrape(hybrid.url), "bacalhau_compute_executions_active", state="running") == 0
