"""Traces (bacalhau.lib.tracing): when the OTEL_* environment turns them on, how a job's trace context is kept and
carried, and that foreign trace contexts (HTTP headers, NATS messages) are bounded and garbage ignored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bacalhau.lib import tracing
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.plan import Plan, apply_plan
from bacalhau.orchestrator.scheduler.base import new_execution
from bacalhau.orchestrator.store import JobStore
from bacalhau.transport import messages
from tests.conftest import eventually
from tests.unit.conftest import opened
from tests.unit.test_admission import Node as AdmissionNode
from tests.unit.test_admission import job as admission_job
from tests.unit.test_admission import probed  # noqa: F401 (a fixture)
from tests.unit.test_message_handlers import ComputeSide, compute, noop_execution  # noqa: F401 (a fixture)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT_ID}-01"
GARBAGE: list[object] = [
    "",
    "garbage",
    "x" * 100_000,
    "00-" + "0" * 32 + "-" + "0" * 16 + "-01",
    f"ff-{TRACE_ID}-{PARENT_ID}-01",
    f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",
    f"00-{TRACE_ID}-{PARENT_ID}-01-trailing",
    "\x00\udcff",
]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()
    assert not tracing.ENABLED


def finished(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_METRICS_EXPORTER": "otlp"}, False),
    ],
)
def test_the_standard_environment_turns_traces_on(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on


def test_grpc_without_its_exporter_is_one_warning_and_traces_stay_off(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with caplog.at_level(logging.WARNING, logger=tracing.__name__):
        assert tracing.setup(environ) is False
    assert not tracing.ENABLED
    [record] = caplog.records
    assert "opentelemetry-exporter-otlp-proto-grpc" in record.getMessage()


def test_an_exporter_this_node_lacks_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=tracing.__name__):
        assert tracing.setup({"OTEL_TRACES_EXPORTER": "zipkin"}) is False
    assert "zipkin" in caplog.text and not tracing.ENABLED


def test_off_every_helper_is_a_no_op() -> None:
    assert not tracing.ENABLED
    work = asyncio.sleep(0)
    assert tracing.traced("x", work) is work  # not even wrapped
    work.close()
    assert tracing.start("x", VALID) is tracing.NO_SPAN and tracing.current() is tracing.NO_SPAN
    with tracing.span("x") as span:
        assert span is tracing.NO_SPAN and span.traceparent == ""
    tracing.hand_over("e-1", VALID)
    assert tracing.take_over("e-1") == ""


@pytest.mark.parametrize("value", GARBAGE, ids=range(len(GARBAGE)))
def test_a_foreign_trace_context_that_is_garbage_starts_a_new_trace(spans: InMemorySpanExporter, value: object) -> None:
    parent = tracing.clean_parent(value)
    assert len(parent) <= tracing.MAX_TRACE_PARENT
    tracing.start("job.submit", parent).end()
    [span] = finished(spans, "job.submit")
    assert span.parent is None and trace_id(span) != TRACE_ID


def test_a_valid_trace_context_is_continued(spans: InMemorySpanExporter) -> None:
    outer = tracing.start("outer", VALID)
    assert outer.traceparent.startswith(f"00-{TRACE_ID}-") and outer.traceparent.endswith("-01")
    with tracing.span("inner", outer.traceparent), tracing.span("nested"):
        pass
    outer.end()
    [inner], [nested] = finished(spans, "inner"), finished(spans, "nested")
    assert {trace_id(s) for s in spans.get_finished_spans()} == {TRACE_ID}
    assert nested.parent is not None and inner.context is not None
    assert nested.parent.span_id == inner.context.span_id


def test_messages_carry_a_trace_context_only_when_there_is_one_and_ignore_garbage() -> None:
    execution = noop_execution()
    assert "TraceParent" not in messages.wrap(messages.AskForBid(execution=execution))["Payload"]
    assert "TraceParent" not in messages.wrap(messages.BidAccepted(execution_id="e-1"))["Payload"]
    accepted = messages.BidAccepted(execution_id="e-1", trace_parent=VALID)
    assert messages.wrap(accepted)["Payload"]["TraceParent"] == VALID
    for value in [*GARBAGE, 42, None, ["00"], {"a": 1}, True]:
        body = {"Type": "BidAccepted", "Payload": {"ExecutionID": "e-1", "TraceParent": value}}
        read = messages.unwrap(body)
        assert isinstance(read, messages.BidAccepted) and read.execution_id == "e-1"
        assert len(read.trace_parent) <= tracing.MAX_TRACE_PARENT
        ask = {"Type": "AskForBid", "Payload": {"Execution": execution.to_wire(), "traceparent": value}}
        assert isinstance(messages.unwrap(ask), messages.AskForBid)


def test_hand_overs_waiting_for_work_that_never_starts_are_bounded(spans: InMemorySpanExporter) -> None:
    for number in range(tracing.HANDED_OVER_KEPT + 10):
        tracing.hand_over(f"e-{number}", VALID)
    assert tracing.take_over("e-0") == ""  # the oldest were forgotten
    assert tracing.take_over(f"e-{tracing.HANDED_OVER_KEPT + 9}") == VALID
    assert tracing.take_over(f"e-{tracing.HANDED_OVER_KEPT + 9}") == ""  # taken once


async def test_a_jobs_trace_is_kept_with_it_across_a_restart_and_sent_with_its_bid_requests(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.db"
    spec = Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]})
    async with opened(JobStore(path, durable=False)) as store:
        result = await JobService(store, "n-orch", {"batch": TaskDefaults()}).submit(spec, trace_parent=VALID)
    [submitted] = finished(spans, "job.submit")
    assert trace_id(submitted) == TRACE_ID and submitted.parent is not None
    assert submitted.parent.span_id == int(PARENT_ID, 16)

    async with opened(JobStore(path, durable=False)) as store:  # a restarted orchestrator
        job = await store.get_job(result.job_id)
        assert "TraceParent" not in job.to_json() and "trace" not in job.to_json().lower()  # the wire is unchanged
        [evaluation] = await store.open_evaluations()
        plan = Plan(evaluation, job)
        new_execution(plan, "n-1", direct=False)
        await store.transact(lambda tx: apply_plan(tx, plan))
        [(_, body)] = await store.outbox("n-1", 0, 10, 1 << 20)
    [schedule] = finished(spans, "job.schedule")
    assert trace_id(schedule) == TRACE_ID and schedule.parent is not None and submitted.context is not None
    assert schedule.parent.span_id == submitted.context.span_id
    assert (schedule.attributes or {})[tracing.JOB_ID] == result.job_id
    assert f'"TraceParent":"00-{TRACE_ID}-' in body.replace(" ", "")


async def test_a_plan_undone_leaves_no_span(spans: InMemorySpanExporter, store: JobStore) -> None:
    spec = Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]})
    result = await JobService(store, "n-orch", {"batch": TaskDefaults()}).submit(spec)
    job = await store.get_job(result.job_id)
    [evaluation] = await store.open_evaluations()

    def undone(tx: object) -> None:
        from bacalhau.orchestrator.store import Tx

        assert isinstance(tx, Tx)
        with pytest.raises(RuntimeError), tx.part():
            apply_plan(tx, Plan(evaluation, job))
            raise RuntimeError("conflict")

    await store.transact(undone)
    assert finished(spans, "job.schedule") == []


async def test_a_compute_node_bids_and_runs_in_the_jobs_trace_and_ignores_garbage(
    spans: InMemorySpanExporter,
    compute: ComputeSide,  # noqa: F811 (the fixture imported above)
) -> None:
    async def order(execution_id: str, trace_parent: str) -> None:
        ask = messages.AskForBid(execution=noop_execution(execution_id), wait_for_approval=False)
        body = messages.wrap(ask)
        body["Payload"]["TraceParent"] = trace_parent
        await compute.store.transact(lambda tx: compute.handler.handle(tx, "", body))

    await order("e-1", VALID)
    await order("e-2", "00-not-a-trace-context")
    await eventually(lambda: len(finished(spans, "execution.run")) == 2)
    bids = {(s.attributes or {})[tracing.EXECUTION_ID]: s for s in finished(spans, "execution.bid")}
    runs = {(s.attributes or {})[tracing.EXECUTION_ID]: s for s in finished(spans, "execution.run")}
    assert trace_id(bids["e-1"]) == trace_id(runs["e-1"]) == TRACE_ID
    assert bids["e-1"].parent is not None and bids["e-1"].parent.span_id == int(PARENT_ID, 16)
    assert runs["e-1"].parent is not None and bids["e-1"].context is not None
    assert runs["e-1"].parent.span_id == bids["e-1"].context.span_id  # run at once: under its bid
    assert bids["e-2"].parent is None and trace_id(runs["e-2"]) == trace_id(bids["e-2"]) != TRACE_ID
    assert (await compute.store.get("e-2")) is not None


def test_a_setting_the_sdk_refuses_leaves_traces_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-5")  # the BatchSpanProcessor refuses it
    with caplog.at_level(logging.WARNING, logger=tracing.__name__):
        assert tracing.setup({"OTEL_TRACES_EXPORTER": "console"}) is False
    assert "traces are off" in caplog.text and not tracing.ENABLED


async def test_a_rerun_starts_a_new_trace_and_a_stop_ends_the_jobs(
    spans: InMemorySpanExporter, store: JobStore
) -> None:
    service = JobService(store, "n-orch", {"batch": TaskDefaults()})
    spec = Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]})
    job_id = (await service.submit(spec)).job_id
    first = await store.transact(lambda tx: tx.trace_parent(job_id))
    await store.transact(lambda tx: tx.update_job_state(job_id, JobStateType.COMPLETED))
    await service.rerun(job_id, trace_parent=VALID)
    second = await store.transact(lambda tx: tx.trace_parent(job_id))
    assert first.split("-")[1] != TRACE_ID and second.split("-")[1] == TRACE_ID
    [rerun] = finished(spans, "job.rerun")
    assert rerun.parent is not None and rerun.parent.span_id == int(PARENT_ID, 16)
    assert (rerun.attributes or {})[tracing.JOB_VERSION] == 2

    await service.stop(job_id, "enough")
    [complete] = finished(spans, "job.complete")
    assert trace_id(complete) == TRACE_ID and complete.parent is not None and rerun.context is not None
    assert complete.parent.span_id == rerun.context.span_id
    assert (complete.attributes or {})[tracing.JOB_STATE] == "Stopped"


async def test_a_bid_that_waits_for_admission_control_ends_its_span_when_decided(
    spans: InMemorySpanExporter,
    probed: AdmissionNode,  # noqa: F811 (the fixture imported above)
) -> None:
    for name, execution_id in (("good-1", "e-good"), ("bad-1", "e-bad")):
        execution = Execution(id=execution_id, job_id=name, node_id="n-1", job=admission_job(name))
        body = messages.wrap(messages.AskForBid(execution=execution, trace_parent=VALID))
        await probed.store.transact(lambda tx, body=body: probed.handler.handle(tx, "", body))
    assert finished(spans, "execution.bid") == []  # still deciding
    await probed.until_decided("e-good")
    await probed.until_decided("e-bad")
    bids = {(s.attributes or {})[tracing.EXECUTION_ID]: s for s in finished(spans, "execution.bid")}
    assert (bids["e-good"].attributes or {})["bacalhau.bid.accepted"] is True
    assert (bids["e-bad"].attributes or {})["bacalhau.bid.accepted"] is False
    assert "not this one" in str((bids["e-bad"].attributes or {})["bacalhau.bid.reason"])
    for bid in bids.values():
        assert trace_id(bid) == TRACE_ID and bid.parent is not None and bid.parent.span_id == int(PARENT_ID, 16)
