"""OpenTelemetry traces: one job is one trace, from its submission through placement, bid, run and publish to its end,
across the orchestrator and the compute node; a client's trace context parents it, garbage is ignored; and without
the OTEL_* environment nothing of OpenTelemetry is loaded.

Two set-ups: a hybrid node in this process with the SDK's in-memory exporter (both halves share the process), and real
``bacalhau serve`` processes configured by the standard environment, exporting OTLP over HTTP to a receiver in this
test, which decodes what each process (the node and its forked compute process) sends.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bacalhau.lib import tracing
from tests.conftest import ServeProcess, wait_until
from tests.fuzz.conftest import InProcessNode
from tests.helpers import submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

ORCHESTRATOR_SPANS = {"job.submit", "job.schedule", "job.complete"}
COMPUTE_SPANS = {"execution.bid", "execution.run", "execution.inputs", "execution.engine", "execution.publish"}
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


# ---- a hybrid node in this process, spans kept in memory


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(spans))
    yield spans
    tracing.shutdown()


@pytest.fixture(scope="module")
def traced_node(exporter: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    node = InProcessNode(tmp_path_factory.mktemp("traces") / "node").start()
    yield node
    node.stop()


def trace_of(exporter: InMemorySpanExporter, job_id: str) -> list[ReadableSpan]:
    """Every span of the trace whose ``job.submit`` span names ``job_id``."""
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name == "job.submit" and (s.attributes or {}).get(tracing.JOB_ID) == job_id]
    assert root.context is not None
    return [s for s in spans if s.context is not None and s.context.trace_id == root.context.trace_id]


def names(spans: list[ReadableSpan]) -> set[str]:
    return {span.name for span in spans}


def test_one_job_is_one_trace_across_orchestrator_and_compute(
    traced_node: InProcessNode, exporter: InMemorySpanExporter, wasm: Callable[[str], bytes]
) -> None:
    job_id = submit(traced_node.url, wasm_job(wasm("hello"), "traced", outputs={"out": "/outputs"}))
    assert wait_for_state(traced_node.url, job_id)["State"]["StateType"] == "Completed"

    def whole() -> list[ReadableSpan] | None:
        spans = trace_of(exporter, job_id)
        return spans if names(spans) >= ORCHESTRATOR_SPANS | COMPUTE_SPANS else None

    spans = wait_until(whole, 10, "the job's trace to hold every span")
    by_id = {span.context.span_id: span for span in spans if span.context is not None}
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "job.submit"
    for span in spans:  # one tree: every span but the root has its parent in the trace
        assert span is root or (span.parent is not None and span.parent.span_id in by_id), span.name
        assert (span.attributes or {}).get(tracing.JOB_ID) in (job_id, None), span.name

    def only(name: str) -> ReadableSpan:
        [found] = [s for s in spans if s.name == name]
        return found

    def parent(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None
        return by_id[span.parent.span_id]

    bid, run = only("execution.bid"), only("execution.run")
    assert parent(bid).name == "job.schedule" and parent(run).name == "job.schedule"
    assert parent(only("execution.engine")) is run and parent(only("execution.publish")) is run
    attributes = dict(run.attributes or {})
    assert attributes[tracing.ENGINE] == "wasm" and attributes[tracing.JOB_TYPE] == "batch"
    assert attributes[tracing.EXECUTION_ID] and attributes[tracing.NODE_ID] == "fuzz"
    assert attributes["bacalhau.exit_code"] == 0
    complete = only("job.complete")
    assert (complete.attributes or {})[tracing.JOB_STATE] == "Completed"
    published = only("execution.publish")  # before the result is reported, and so before the job can complete
    assert complete.start_time is not None and published.end_time is not None
    assert complete.start_time >= published.end_time


def test_a_failed_run_marks_its_spans_failed(
    traced_node: InProcessNode, exporter: InMemorySpanExporter, wasm: Callable[[str], bytes]
) -> None:
    job = wasm_job(wasm("hello"), "traced", publisher="")
    job["Tasks"][0]["InputSources"][0]["Source"]["Params"]["URL"] = "data:,not-webassembly"
    job_id = submit(traced_node.url, job)
    assert wait_for_state(traced_node.url, job_id)["State"]["StateType"] == "Failed"

    def failed() -> list[ReadableSpan] | None:
        spans = [s for s in trace_of(exporter, job_id) if s.name in ("execution.run", "job.complete")]
        return spans if len(spans) >= 2 else None

    for span in wait_until(failed, 10, "the failed run and the job's end in its trace"):
        assert not span.status.is_ok, span.name


def test_a_client_trace_context_parents_the_job_and_garbage_is_ignored(
    traced_node: InProcessNode, exporter: InMemorySpanExporter, wasm: Callable[[str], bytes]
) -> None:
    url = f"{traced_node.url}/api/v1/orchestrator/jobs"
    job = {"Job": wasm_job(wasm("hello"), "traced", publisher="")}
    response = httpx.put(url, json=job, headers={"traceparent": CLIENT_PARENT}, timeout=10)
    assert response.status_code == 200, response.text
    [submitted] = [s for s in trace_of(exporter, response.json()["JobID"]) if s.name == "job.submit"]
    assert submitted.context is not None and f"{submitted.context.trace_id:032x}" == CLIENT_TRACE
    assert submitted.parent is not None and submitted.parent.span_id == 0x00F067AA0BA902B7

    garbage = [
        "x" * 10_000,
        "00-" + "0" * 32 + "-" + "0" * 16 + "-01",  # all-zero IDs are invalid
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is forbidden
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "\u00e9\u00e9",
        "",
    ]
    for header in garbage:
        headers = [(b"traceparent", header.encode())]
        response = httpx.put(url, json=job, headers=headers, timeout=10)
        assert response.status_code == 200, (header[:40], response.text)
        [root] = [s for s in trace_of(exporter, response.json()["JobID"]) if s.name == "job.submit"]
        assert root.parent is None and root.context is not None
        assert f"{root.context.trace_id:032x}" != CLIENT_TRACE


# ---- real processes, configured by the OTEL_* environment, exporting OTLP over HTTP


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on loopback: every span it was sent, with the exporting process's ID."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.add(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value or a.value.int_value for a in span.attributes}
                    found.append(
                        {
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": attributes,
                            "pid": resource["process.pid"].int_value,
                            "service": resource["service.name"].string_value,
                        }
                    )
        with self._lock:
            self.spans += found

    def job_trace(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            spans = list(self.spans)
        roots = [s for s in spans if s["name"] == "job.submit" and s["attributes"].get(tracing.JOB_ID) == job_id]
        return [s for s in spans if roots and s["trace_id"] == roots[0]["trace_id"]]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_hybrid_node_and_its_compute_process_export_one_trace_per_job_and_flush_at_shutdown(
    receiver: OtlpReceiver, tmp_path: Path, wasm: Callable[[str], bytes]
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "bacalhau-test",
        # Nothing is exported before the end: what arrives was flushed when each process stopped.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    node = ServeProcess(tmp_path / "node", "--orchestrator", "--compute", env=env).start()
    try:
        job_id = submit(node.url, wasm_job(wasm("hello"), "traced", outputs={"out": "/outputs"}))
        assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    finally:
        assert node.stop() == 0
    spans = receiver.job_trace(job_id)
    assert {s["name"] for s in spans} >= ORCHESTRATOR_SPANS | COMPUTE_SPANS, spans
    assert {s["service"] for s in spans} == {"bacalhau-test"}
    assert node.process is not None
    orchestrator_pids = {s["pid"] for s in spans if s["name"] in ORCHESTRATOR_SPANS}
    compute_pids = {s["pid"] for s in spans if s["name"] in COMPUTE_SPANS}
    assert orchestrator_pids == {node.process.pid}
    assert len(compute_pids) == 1 and compute_pids != orchestrator_pids  # the forked compute process's own exporter
    ids = {s["span_id"] for s in spans}
    assert [s["name"] for s in spans if s["parent"] not in ids] == ["job.submit"]


def test_a_job_queued_before_an_orchestrator_restart_carries_on_in_its_trace_after_it(
    receiver: OtlpReceiver, tmp_path: Path, wasm: Callable[[str], bytes]
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    node = ServeProcess(tmp_path / "node", "--orchestrator", env=env).start()  # no compute node: the job waits
    try:
        job = wasm_job(wasm("hello"), "later", publisher="", timeouts={"QueueTimeout": 600})
        job_id = submit(node.url, job)
        wait_for_state(node.url, job_id, ("Queued",))
    finally:
        assert node.stop() == 0
    before = node.process.pid if node.process else 0
    node.args = ["--orchestrator", "--compute"]  # the same data dir, now with a compute half
    node.start()
    try:
        assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    finally:
        assert node.stop() == 0
    spans = receiver.job_trace(job_id)
    assert {s["name"] for s in spans} >= {"job.submit", "execution.bid", "execution.run", "job.complete"}, spans
    [submitted] = [s for s in spans if s["name"] == "job.submit"]
    [complete] = [s for s in spans if s["name"] == "job.complete"]
    assert submitted["pid"] == before and complete["pid"] not in (before, 0)  # two orchestrator processes, one trace


def test_grpc_asked_for_but_not_installed_is_one_warning_and_the_node_runs(
    tmp_path: Path, wasm: Callable[[str], bytes]
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    node = ServeProcess(tmp_path / "node", "--orchestrator", "--compute", env=env).start()
    try:
        job_id = submit(node.url, wasm_job(wasm("hello"), "untraced", publisher=""))
        assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    finally:
        assert node.stop() == 0
    log = node.log()
    assert "opentelemetry-exporter-otlp-proto-grpc" in log and "Traceback" not in log
    assert log.count("OTEL_EXPORTER_OTLP_PROTOCOL=grpc") == 2  # once per process: the node and its compute process


def test_a_collector_that_is_down_neither_fails_jobs_nor_holds_up_the_stop(
    tmp_path: Path, wasm: Callable[[str], bytes]
) -> None:
    with socket.socket() as closed:  # a port with nothing listening: every export is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    node = ServeProcess(tmp_path / "node", "--orchestrator", "--compute", env=env).start()
    try:
        job_id = submit(node.url, wasm_job(wasm("hello"), "unexported", publisher=""))
        assert wait_for_state(node.url, job_id)["State"]["StateType"] == "Completed"
    finally:
        started = time.monotonic()
        code = node.stop(timeout=30)
    assert code == 0 and time.monotonic() - started < 2 * tracing.SHUTDOWN_TIMEOUT + 5
    assert "Traceback" not in node.log()


# ---- off by default


NODE_WITHOUT_OTEL = """
import asyncio, json, sys
import fastapi  # what FastAPI (0.165+) itself imports of OpenTelemetry's API, whatever we do
baseline = {name for name in sys.modules if name.startswith("opentelemetry")}

from bacalhau.config import load_config
from bacalhau.lib import tracing
from bacalhau.node import Node

config = load_config(data_dir=sys.argv[1], environ={}, overrides=[
    "Orchestrator.Enabled=true", "Compute.Enabled=true", "API.Host=127.0.0.1", "API.Port=0",
    "Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0", "Publishers.Types.Local.Port=0",
])

async def main() -> None:
    node = Node(config, name="plain")
    await node.start()
    assert not tracing.ENABLED
    await node.stop()

asyncio.run(main())
loaded = {name for name in sys.modules if name.startswith(("opentelemetry", "google.protobuf"))}
print(json.dumps(sorted(loaded - baseline)))
"""

COMPUTE_AND_ORCHESTRATOR_WITHOUT_OTEL = """
import json, sys
import bacalhau.compute.node, bacalhau.hybrid, bacalhau.orchestrator.service, bacalhau.transport.messages
from bacalhau.lib import tracing

assert not tracing.setup()
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


def run_without_otel(code: str, otel_env: dict[str, str], *args: str) -> list[str]:
    """The modules ``code`` printed, run in a fresh interpreter with only ``otel_env`` of the OTEL_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "BACALHAU_"))}
    result = subprocess.run(
        [sys.executable, "-c", code, *args], env={**env, **otel_env}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


OFF = [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}]


@pytest.mark.parametrize("otel_env", OFF, ids=["unset", "sdk-disabled"])
def test_without_the_otel_environment_a_node_loads_no_more_of_opentelemetry_than_fastapi_does(
    tmp_path: Path, otel_env: dict[str, str]
) -> None:
    assert run_without_otel(NODE_WITHOUT_OTEL, otel_env, str(tmp_path / "node")) == []


@pytest.mark.parametrize("otel_env", OFF, ids=["unset", "sdk-disabled"])
def test_without_the_otel_environment_orchestrator_and_compute_load_nothing_of_opentelemetry(
    otel_env: dict[str, str],
) -> None:
    assert run_without_otel(COMPUTE_AND_ORCHESTRATOR_WITHOUT_OTEL, otel_env) == []
