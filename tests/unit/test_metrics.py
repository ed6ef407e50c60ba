"""The parts behind /metrics and /agent/debug, on real stores: what commits tell the orchestrator's metrics, a scrape
that survives a broken part, the bounded buffer of recent errors, and secrets kept out of what is shown."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bacalhau.config import BacalhauConfig
from bacalhau.lib import metrics as metrics_module
from bacalhau.lib.metrics import NodeMetrics
from bacalhau.logs import RecentErrors, recent_errors, setup_logging
from bacalhau.models.evaluation import EvalStatus, EvalTrigger, new_evaluation
from bacalhau.models.job import Job
from bacalhau.models.state import JobStateType
from bacalhau.node import _scrubbed
from bacalhau.orchestrator.broker import EvaluationBroker
from bacalhau.orchestrator.metrics import OrchestratorMetrics
from bacalhau.orchestrator.nodes import NodeManager, NodeManagerConfig
from bacalhau.orchestrator.store import CommitEffects, JobStore, Tx
from tests.unit.test_scheduler import job


def new_job(job_type: str = "batch") -> Job:
    spec = job(job_type=job_type)
    spec.id = f"j-{uuid.uuid4()}"
    spec.name = spec.id
    return spec


def insert(tx: Tx, *jobs: Job) -> None:
    for spec in jobs:
        tx.insert_job(spec)


async def test_commits_tell_what_was_submitted_ended_and_placed(store: JobStore) -> None:
    seen: list[CommitEffects] = []
    store.on_commit(seen.append)
    first, second = new_job(), new_job("ops")
    await store.transact(lambda tx: insert(tx, first, second))
    await store.transact(lambda tx: tx.update_job_state(first.id, JobStateType.RUNNING))
    await store.transact(lambda tx: tx.update_job_state(first.id, JobStateType.STOPPED))
    assert [effects.submitted_jobs for effects in seen] == [["batch", "ops"], [], []]
    assert [effects.ended_jobs for effects in seen] == [[], [], [("batch", "Stopped", first.create_time)]]


def samples(text: bytes) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text.decode()) for sample in family.samples]


def value(found: list[Sample], name: str, **labels: str) -> float:
    matching = [s for s in found if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert matching, f"no sample {name} {labels}"
    return sum(s.value for s in matching)


async def test_orchestrator_metrics_from_commits_and_live_state(store: JobStore) -> None:
    metrics = NodeMetrics()
    broker = EvaluationBroker()
    nodes = NodeManager(store, NodeManagerConfig())
    OrchestratorMetrics(metrics, store, lambda: broker, nodes, dict)
    completed, failed, queued = new_job(), new_job(), new_job()
    await store.transact(lambda tx: insert(tx, completed, failed, queued))
    await store.transact(lambda tx: tx.update_job_state(completed.id, JobStateType.COMPLETED))
    await store.transact(lambda tx: tx.update_job_state(failed.id, JobStateType.FAILED))
    await store.transact(lambda tx: tx.update_job_state(queued.id, JobStateType.QUEUED))
    blocked = new_evaluation(queued, EvalTrigger.JOB_REGISTER.value)
    blocked.status = EvalStatus.BLOCKED.value
    broker.enqueue(blocked)
    ready = new_evaluation(failed, EvalTrigger.JOB_REGISTER.value)
    broker.enqueue(ready)

    found = samples(await metrics.exposition())
    assert value(found, "bacalhau_jobs_submitted_total", type="batch") == 3
    assert value(found, "bacalhau_jobs_completed_total", type="batch") == 1
    assert value(found, "bacalhau_jobs_failed_total", type="batch") == 1
    assert value(found, "bacalhau_jobs_stopped_total", type="batch") == 0
    assert value(found, "bacalhau_job_submit_to_completed_seconds_count", type="batch") == 1
    assert value(found, "bacalhau_jobs", state="Queued") == 1
    assert value(found, "bacalhau_jobs", state="Completed") == 1
    assert value(found, "bacalhau_jobs", state="Running") == 0
    assert value(found, "bacalhau_evaluations", state="blocked") == 1
    assert value(found, "bacalhau_evaluations", state="ready") == 1
    assert value(found, "bacalhau_job_queue_depth") == 1
    assert value(found, "bacalhau_job_queue_oldest_age_seconds") >= 0
    assert value(found, "bacalhau_orchestrator_store_commit_seconds_count") >= 4
    broker.close()


async def test_a_scrape_leaves_out_a_broken_or_late_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "REFRESH_TIMEOUT", 0.05)
    metrics = NodeMetrics()

    def broken() -> list[object]:
        raise RuntimeError("broken collector")

    async def late() -> bytes:
        await asyncio.sleep(10)
        return b"never"

    async def remote() -> bytes:
        return b"# TYPE bacalhau_compute_thing gauge\nbacalhau_compute_thing 2.0"

    metrics.add(broken)  # type: ignore[arg-type]
    metrics.before_scrape(late)  # type: ignore[arg-type]
    metrics.add_remote(late)
    metrics.add_remote(remote)
    found = samples(await metrics.exposition())
    assert value(found, "bacalhau_compute_thing") == 2.0


def test_recent_errors_are_bounded_in_number_and_length() -> None:
    errors = RecentErrors(size=3, length=20)
    logger = logging.getLogger("bacalhau.test.recent")
    logger.addHandler(errors)
    try:
        logger.warning("not an error")
        for number in range(5):
            logger.error("error number %d %s", number, "x" * 100)
        try:
            raise ValueError("why")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(errors)
    records = errors.records()
    assert len(records) == 3
    assert [r["Message"] for r in records[:2]] == ["error number 3 xxxxx", "error number 4 xxxxx"]
    assert records[2]["Message"] == "failed (ValueError: "  # the exception in brief, cut too
    assert all(r["Level"] == "ERROR" and r["Logger"] == "bacalhau.test.recent" for r in records)
    assert all(r["Time"].endswith("Z") for r in records)


def test_the_process_buffer_of_errors_survives_logging_set_up() -> None:
    errors = recent_errors()
    setup_logging("info")
    assert errors in logging.getLogger().handlers
    assert recent_errors() is errors


def test_secrets_are_masked_in_the_config_summary_and_recent_errors(tmp_path: Path) -> None:
    token, password = "orchestrator-token-1234", "a-long-user-password"
    users = [{"Username": "bob", "Password": password, "Capabilities": [{"Actions": ["read:agent"]}]}]
    config = BacalhauConfig.defaults().with_settings(
        {"Orchestrator.Auth.Token": token, "API.Auth.Users": users, "DataDir": str(tmp_path)}
    )
    summary = config.summary()
    assert summary["Orchestrator"]["Auth"]["Token"] == "********"
    assert summary["API"]["Auth"]["Users"][0]["Password"] == "********"
    assert "JobDefaults" not in summary and summary["DataDir"] == str(tmp_path)
    assert set(config.secret_strings()) == {token, password}
    entries = [{"Time": "", "Level": "ERROR", "Logger": "x", "Message": f"could not use {token} or {password}"}]
    assert _scrubbed(entries, config.secret_strings())[0]["Message"] == "could not use ******** or ********"
