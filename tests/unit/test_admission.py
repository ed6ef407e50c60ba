"""Job admission control: each rule as the original words it, the probes against a real script and a real HTTP
server (bounded in time and output, job data never through a shell), and bids that wait for the probes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bacalhau.compute.admission import (
    AdmissionConfig,
    JobAdmission,
    exec_probe,
    http_probe,
    probe_request,
)
from bacalhau.compute.bidder import Bidder
from bacalhau.compute.buffer import ExecutorBuffer
from bacalhau.compute.capacity import CapacityTracker
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.handler import OrchestratorMessageHandler
from bacalhau.compute.inputs.inline import InlineInput
from bacalhau.compute.inputs.localdir import LocalDirectoryInput
from bacalhau.compute.inputs.urldownload import UrlDownloadInput
from bacalhau.compute.logs import LogStore
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.runner import ExecutionRunner, RunnerConfig, no_default_network
from bacalhau.compute.secrets import EnvResolver
from bacalhau.compute.store import ExecutionStore
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.resources import Resources
from bacalhau.models.spec import Network, NetworkConfig
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages
from tests.gpu_tools import script

NETWORKED = "rejected bid: this node does not run jobs that require network access"
STATELESS = "rejected bid: this node does not accept jobs without any input volumes"


def job(name: str = "j", network: str = "", inputs: list[dict[str, Any]] | None = None) -> Job:
    task: dict[str, Any] = {"Name": "main", "Engine": {"Type": "noop"}}
    if network:
        task["Network"] = {"Type": network}
    if inputs:
        task["InputSources"] = inputs
    spec = Job.model_validate({"ID": f"j-{name}", "Name": name, "Type": "batch", "Tasks": [task]})
    spec.normalize()
    return spec


INLINE = {"Target": "/in", "Source": {"Type": "inline", "Params": {"URL": "data:,hi"}}}
URL = {"Target": "/url", "Source": {"Type": "urlDownload", "Params": {"URL": "http://example.com/x"}}}


# ---- the rules that need only the job


@pytest.mark.parametrize("network", ["Full", "Host", "Bridge", "HTTP"])
def test_networked_jobs_are_refused_when_the_owner_says_so(network: str) -> None:
    strict = JobAdmission(AdmissionConfig(reject_networked_jobs=True), {})
    assert strict.reasons_now(job(network=network)) == [NETWORKED]
    assert JobAdmission(AdmissionConfig(), {}).reasons_now(job(network=network)) == []


@pytest.mark.parametrize("network", ["", "None", "Default"])
def test_jobs_without_a_network_or_leaving_it_to_the_node_pass(network: str) -> None:
    assert JobAdmission(AdmissionConfig(reject_networked_jobs=True), {}).reasons_now(job(network=network)) == []


def test_a_default_network_becomes_none_on_a_node_that_takes_no_networked_jobs() -> None:
    assert no_default_network(NetworkConfig(type=Network.DEFAULT)).type == Network.NONE
    assert no_default_network(NetworkConfig(type=Network.NONE)).type == Network.NONE


def test_stateless_jobs_are_refused_when_the_owner_says_so() -> None:
    strict = JobAdmission(AdmissionConfig(reject_stateless_jobs=True), {})
    assert strict.reasons_now(job()) == [STATELESS]
    assert strict.reasons_now(job(inputs=[INLINE])) == []
    assert JobAdmission(AdmissionConfig(), {}).reasons_now(job()) == []


# ---- locality


def test_locality_local_takes_only_jobs_whose_inputs_are_here(tmp_path: Path) -> None:
    here = tmp_path / "data"
    here.mkdir()
    inputs = {
        "inline": InlineInput(),
        "urlDownload": UrlDownloadInput(),
        "localDirectory": LocalDirectoryInput([f"{tmp_path}/**"]),
    }
    local = JobAdmission(AdmissionConfig(locality="local"), inputs)

    def directory(path: Path, **params: Any) -> dict[str, Any]:
        return {"Target": "/d", "Source": {"Type": "localDirectory", "Params": {"SourcePath": str(path), **params}}}

    assert asyncio.run(local.ask(job(inputs=[INLINE, directory(here)]))) == []
    assert asyncio.run(local.ask(job())) == []
    assert asyncio.run(local.ask(job(inputs=[INLINE, URL, directory(tmp_path / "missing")]))) == [
        "rejected bid: this node does not have all input data locally (2 inputs require downloading)"
    ]
    creatable = directory(tmp_path / "new", ReadWrite=True, CreateAs="dir")
    assert asyncio.run(local.ask(job(inputs=[creatable]))) == []
    assert asyncio.run(local.ask(job(inputs=[directory(Path("/etc"))]))) != []  # not allow-listed
    anywhere = JobAdmission(AdmissionConfig(), inputs)
    assert asyncio.run(anywhere.ask(job(inputs=[URL]))) == []


# ---- the exec probe


def test_probe_request_is_the_originals_shape() -> None:
    request = json.loads(probe_request(job("shape")))
    assert list(request) == ["Job"] and request["Job"]["ID"] == "j-shape" and request["Job"]["Tasks"][0]["Name"]


def test_exec_probe_exit_code_decides(tmp_path: Path) -> None:
    probe = script(tmp_path, "probe", 'grep -q \'"Name":"good"\' && exit 0; echo "only good jobs here" >&2; exit 1')
    assert asyncio.run(exec_probe(str(probe), probe_request(job("good")))) == []
    assert asyncio.run(exec_probe(str(probe), probe_request(job("bad")))) == [
        "rejected bid: this node does not accept this job: only good jobs here"
    ]
    quiet = script(tmp_path, "quiet", "exit 3")
    assert asyncio.run(exec_probe(str(quiet), probe_request(job()))) == [
        f'rejected bid: this node does not accept jobs where external command "{quiet}" returns exit code 3'
    ]


def test_exec_probe_gets_the_request_in_its_environment_too(tmp_path: Path) -> None:
    probe = script(tmp_path, "probe", 'case "$BACALHAU_JOB_SELECTION_PROBE_DATA" in *j-env*) exit 0;; esac; exit 1')
    assert asyncio.run(exec_probe(str(probe), probe_request(job("env")))) == []


def test_exec_probe_is_bounded_in_time_and_output(tmp_path: Path) -> None:
    hang = script(tmp_path, "hang", "sleep 60")
    started = time.monotonic()
    [reason] = asyncio.run(exec_probe(str(hang), probe_request(job()), timeout=0.5))
    assert "does not answer within 0.5s" in reason
    assert time.monotonic() - started < 5
    chatty = script(tmp_path, "chatty", "head -c 5000000 /dev/zero | tr '\\0' x >&2; exit 1")
    [reason] = asyncio.run(exec_probe(str(chatty), probe_request(job()), timeout=10))
    assert len(reason) < 70 * 1024
    deaf = script(tmp_path, "deaf", "exit 0")  # reads nothing of a large request
    big = job(inputs=[{"Target": f"/i{i}", "Source": {"Type": "inline", "Params": {"URL": "data:," + "x" * 5000}}}
                      for i in range(100)])  # fmt: skip
    assert asyncio.run(exec_probe(str(deaf), probe_request(big), timeout=10)) == []


def test_job_data_never_reaches_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    probe = script(tmp_path, "probe", "cat > /dev/null; exit 0")
    hostile = job(f"x$(touch {marker})`touch {marker}`;touch {marker}")
    assert asyncio.run(exec_probe(str(probe), probe_request(hostile))) == []
    assert not marker.exists()


# ---- the HTTP probe


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """A real HTTP server: it records what it is sent and answers as ``behaviour`` says."""
    seen: list[dict[str, Any]] = []
    behaviour: dict[str, Any] = {"status": 200, "body": b"", "type": "text/plain", "delay": 0.0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            seen.append({"type": self.headers["Content-Type"], "body": json.loads(self.rfile.read(length))})
            time.sleep(behaviour["delay"])
            self.send_response(behaviour["status"])
            self.send_header("Content-Type", behaviour["type"])
            self.send_header("Content-Length", str(len(behaviour["body"])))
            self.end_headers()
            self.wfile.write(behaviour["body"])

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/probe", seen, behaviour
    server.shutdown()
    server.server_close()


def test_http_probe(endpoint: tuple[str, list[dict[str, Any]], dict[str, Any]]) -> None:
    url, seen, behaviour = endpoint
    request = probe_request(job("web"))
    assert asyncio.run(http_probe(url, request)) == []
    assert seen[0]["type"] == "application/json" and seen[0]["body"]["Job"]["ID"] == "j-web"
    behaviour["status"] = 403
    assert asyncio.run(http_probe(url, request)) == [
        f'rejected bid: this node does not accept jobs where url "{url}" returns HTTP status code 403'
    ]
    behaviour.update(status=200, type="application/json", body=b'{"ShouldBid": false, "Reason": "no room today"}')
    assert asyncio.run(http_probe(url, request)) == ["rejected bid: no room today"]
    behaviour["body"] = b'{"shouldBid": true, "reason": "welcome"}'
    assert asyncio.run(http_probe(url, request)) == []
    behaviour["body"] = b"[not json"
    assert "does not parse" in asyncio.run(http_probe(url, request))[0]
    behaviour["body"] = b'{"ShouldBid": false, "Reason": "' + b"x" * 200_000 + b'"}'
    assert "answered more than" in asyncio.run(http_probe(url, request))[0]


def test_http_probe_is_bounded_in_time(endpoint: tuple[str, list[dict[str, Any]], dict[str, Any]]) -> None:
    url, _, behaviour = endpoint
    behaviour["delay"] = 3.0
    started = time.monotonic()
    [reason] = asyncio.run(http_probe(url, probe_request(job()), timeout=0.5))
    assert "did not answer" in reason and time.monotonic() - started < 2.5


def test_an_unreachable_endpoint_refuses() -> None:
    [reason] = asyncio.run(http_probe("http://127.0.0.1:9/probe", probe_request(job())))
    assert reason.startswith('rejected bid: the admission endpoint "http://127.0.0.1:9/probe" did not answer')


# ---- bids that wait for the probes


class Node:
    def __init__(self, store: ExecutionStore, handler: OrchestratorMessageHandler, buffer: ExecutorBuffer) -> None:
        self.store, self.handler, self.buffer = store, handler, buffer

    async def ask(self, spec: Job, execution_id: str) -> None:
        execution = Execution(id=execution_id, job_id=spec.id, node_id="n-1", job=spec)
        body = messages.wrap(messages.AskForBid(execution=execution))
        await self.store.transact(lambda tx: self.handler.handle(tx, "", body))

    async def state(self, execution_id: str) -> Execution:
        execution = await self.store.get(execution_id)
        assert execution is not None
        return execution

    async def until_decided(self, execution_id: str) -> Execution:
        deadline = time.monotonic() + 10
        while (execution := await self.state(execution_id)).state == ExecutionStateType.NEW:
            assert time.monotonic() < deadline, "the bid was never decided"
            await asyncio.sleep(0.02)
        return execution


@pytest.fixture
async def probed(tmp_path: Path) -> AsyncIterator[Node]:
    probe = script(tmp_path, "probe", "grep -q '\"Name\":\"good' && exit 0; echo 'not this one' >&2; exit 1")
    store = ExecutionStore(tmp_path / "executions.db", durable=False)
    await store.open()
    maximum = Resources(cpu=2, memory=2**30, disk=2**30)
    executors, inputs, publishers = {"noop": NoopExecutor()}, {"inline": InlineInput()}, {"noop": NoopPublisher()}
    logs = LogStore(tmp_path / "executions", tmp_path / "logs", 60)
    runner = ExecutionRunner(store, executors, inputs, publishers, RunnerConfig(tmp_path / "x", logs, EnvResolver([])))  # type: ignore[arg-type]
    buffer = ExecutorBuffer(runner, CapacityTracker(maximum))
    admission = JobAdmission(AdmissionConfig(reject_networked_jobs=True, probe_exec=str(probe)), inputs)
    bidder = Bidder(executors, inputs, publishers, maximum, EnvResolver([]), admission)  # type: ignore[arg-type]
    handler = OrchestratorMessageHandler(store, bidder, buffer)
    try:
        yield Node(store, handler, buffer)
    finally:
        await handler.stop()
        await buffer.stop()
        store.close()


async def test_a_bid_waits_for_the_probe_then_is_decided_and_reported(probed: Node) -> None:
    await probed.ask(job("good-1"), "e-good")
    await probed.ask(job("bad-1"), "e-bad")
    assert (await probed.until_decided("e-good")).state == ExecutionStateType.ASK_FOR_BID_ACCEPTED
    refused = await probed.until_decided("e-bad")
    assert refused.state == ExecutionStateType.ASK_FOR_BID_REJECTED
    assert refused.compute_state.message == "rejected bid: this node does not accept this job: not this one"
    reports = [json.loads(body) for _, body in await probed.store.outbox("", 0, 10, 1 << 20)]
    assert len(reports) == 2
    assert any("not this one" in json.dumps(report) for report in reports)  # with the reason, for the history


async def test_a_rule_that_needs_only_the_job_decides_without_the_probe(probed: Node) -> None:
    await probed.ask(job("good-net", network="Full"), "e-net")
    refused = await probed.state("e-net")  # at once
    assert refused.state == ExecutionStateType.ASK_FOR_BID_REJECTED and refused.compute_state.message == NETWORKED


async def test_a_bid_stopped_while_its_probe_runs_stays_stopped(probed: Node) -> None:
    await probed.ask(job("good-2"), "e-stop")
    body = messages.wrap(messages.BidRejected(execution_id="e-stop"))
    await probed.store.transact(lambda tx: probed.handler.handle(tx, "", body))
    deadline = time.monotonic() + 10
    while probed.handler._admitting:  # the probe answers, and its answer finds the bid stopped
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert (await probed.state("e-stop")).state == ExecutionStateType.BID_REJECTED


async def test_a_bid_left_undecided_by_a_stop_is_decided_when_asked_again(probed: Node) -> None:
    await probed.ask(job("good-3"), "e-again")
    await probed.handler.stop()  # as the node stops, before the probe answered
    assert (await probed.state("e-again")).state == ExecutionStateType.NEW
    probed.handler.admit(await probed.state("e-again"))  # what the node does at its next start
    assert (await probed.until_decided("e-again")).state == ExecutionStateType.ASK_FOR_BID_ACCEPTED
