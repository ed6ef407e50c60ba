"""The submission pipeline, stop and reads, on a real SQLite job store."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from bacalhau.errors import Conflict, InvalidRequest, JobNotFound, StateConflict
from bacalhau.models.history import Event
from bacalhau.models.job import Job
from bacalhau.models.paging import PagingToken
from bacalhau.models.state import JobStateType
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.jobs import HistoryQuery, JobService, TaskDefaults
from bacalhau.orchestrator.store import JobStore, Tx


@pytest.fixture
def service(store: JobStore) -> JobService:
    return JobService(store, "n-orchestrator", {"batch": TaskDefaults()})


def spec(**fields: Any) -> Job:
    return Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}], **fields})


async def test_submit_stores_job_history_and_evaluation_together(service: JobService, store: JobStore) -> None:
    result = await service.submit(spec())
    job = await store.get_job(result.job_id)
    assert job.id.startswith("j-") and job.name == job.id and job.namespace == "default"
    assert job.state.state_type == JobStateType.PENDING and job.revision == 1 and job.count == 1
    assert job.task.resources_config.cpu == "500m" and job.task.resources_config.memory == "512mb"
    assert job.meta["bacalhau.org/orchestrator.id"] == job.meta["bacalhau.org/requester.id"] == "n-orchestrator"
    assert [h.event.message for h in await store.history(job.id)] == ["Job submitted"]
    [evaluation] = await store.open_evaluations()
    assert evaluation.id == result.evaluation_id and evaluation.triggered_by == "job-register"
    assert result.warnings == []


async def test_sanitisation_resets_client_fields_with_warnings(service: JobService, store: JobStore) -> None:
    result = await service.submit(
        spec(ID="x", State={"StateType": "Running"}, Revision=5, Meta={"bacalhau.org/foo": "1", "mine": "2"})
    )
    assert result.warnings == [
        "job state is ignored when submitting a job",
        "job revision is ignored when submitting a job",
        "job ID is ignored when submitting a batch job",
        'job meta key "bacalhau.org/foo" is reserved and will be ignored',
    ]
    job = await store.get_job(result.job_id)
    assert job.id != "x" and "bacalhau.org/foo" not in job.meta and job.meta["mine"] == "2"


async def test_invalid_jobs_store_nothing(service: JobService, store: JobStore) -> None:
    for bad in (spec(Type="Batch"), spec(Tasks=[]), spec(Tasks=[{"Name": "main", "Engine": {"Type": "nope"}}])):
        with pytest.raises(InvalidRequest):
            await service.submit(bad)
    with pytest.raises(InvalidRequest, match="publisher must be set if result paths are set") as error:
        await service.submit(
            spec(Tasks=[{"Name": "main", "Engine": {"Type": "wasm"}, "ResultPaths": [{"Name": "out", "Path": "/out"}]}])
        )
    assert (error.value.code, error.value.component) == ("BadRequest", "JobStore")
    jobs, _ = await service.list_jobs()
    assert jobs == [] and await store.open_evaluations() == []


async def test_jobs_resolve_by_unique_prefix(service: JobService) -> None:
    job_id = (await service.submit(spec())).job_id
    assert (await service.get_job(job_id[:10])).id == job_id
    with pytest.raises(JobNotFound):
        await service.get_job("j-ffffffff")


async def test_stop_semantics(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec())).job_id
    evaluation_id = await service.stop(job_id, "enough")
    assert evaluation_id
    job = await store.get_job(job_id)
    assert job.state.state_type == JobStateType.STOPPED and job.state.message == "enough"
    assert (await store.history(job_id))[-1].event.message == "Job requested to stop before completion"
    assert await service.stop(job_id, "again") == ""

    done = (await service.submit(spec())).job_id
    await store.transact(lambda tx: tx.update_job_state(done, JobStateType.COMPLETED))
    with pytest.raises(Conflict, match="cannot stop job in state Completed"):
        await service.stop(done, "late")

    failed = (await service.submit(spec())).job_id
    await store.transact(lambda tx: tx.update_job_state(failed, JobStateType.FAILED))
    with pytest.raises(StateConflict, match="terminal state Failed") as error:
        await service.stop(failed, "late")
    assert error.value.code == "ConflictJobState"


async def test_a_job_read_earlier_is_updated_only_if_unchanged_since(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec())).job_id
    first, second = await store.get_job(job_id), await store.get_job(job_id)
    await store.transact(lambda tx: tx.update_job_state(first, JobStateType.RUNNING))
    assert first.revision == 2
    with pytest.raises(StateConflict, match="changed since revision 1") as error:
        await store.transact(lambda tx: tx.update_job_state(second, JobStateType.COMPLETED))
    assert error.value.code == "ConflictJobRevision"
    stored = await store.get_job(job_id)
    assert stored.revision == 2 and stored.state.state_type == JobStateType.RUNNING


async def test_list_pages_follow_tokens_without_repeats(service: JobService) -> None:
    ids = [(await service.submit(spec())).job_id for _ in range(7)]
    page, token = await service.list_jobs(limit=5, order_by="created_at")
    assert [j.id for j in page] == ids[:5]
    assert PagingToken.decode(token) == PagingToken("created_at", False, 5, 5, (page[-1].create_time, ids[4]))
    rest, last = await service.list_jobs(limit=1, next_token=token)
    assert [j.id for j in rest] == ids[5:] and last == ""
    newest, _ = await service.list_jobs(limit=2, reverse=True)
    assert [j.id for j in newest] == ids[::-1][:2]


async def test_history_paging_and_filters(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec())).job_id
    await service.stop(job_id, "done")
    first = await service.history(job_id, HistoryQuery(limit=1))
    assert [h.seq_num for h in first.items] == [1]
    assert PagingToken.decode(first.next_token).offset == 2
    second = await service.history(job_id, HistoryQuery(next_token=first.next_token))
    assert [h.seq_num for h in second.items] == [2] and second.next_token == ""
    assert (await service.history(job_id, HistoryQuery(event_type="execution"))).items == []
    with pytest.raises(InvalidRequest):
        await service.history(job_id, HistoryQuery(event_type="foo"))


async def test_outbox_messages_are_numbered_and_dropped_once_acknowledged(store: JobStore) -> None:
    seqs = await store.transact(lambda tx: [tx.enqueue_message("n-1", {"Type": "Ping", "n": i}) for i in range(3)])
    assert seqs == [1, 2, 3]
    assert [seq for seq, _ in await store.outbox("n-1", 0, 10, 1 << 20)] == [1, 2, 3]
    await store.acknowledge("n-1", 2)
    assert [seq for seq, _ in await store.outbox("n-1", 0, 10, 1 << 20)] == [3]
    assert (await store.stream("n-1")).acked_seq == 2


async def test_a_failing_write_leaves_the_store_unchanged(store: JobStore, service: JobService) -> None:
    job_id = (await service.submit(spec())).job_id

    def half_done(tx: Any) -> None:
        tx.add_history(job_id, 1, [])
        tx.conn.execute("INSERT INTO nodes (node_id, body) VALUES ('n-x', '{}')")
        raise sqlite3.IntegrityError("boom")

    with pytest.raises(sqlite3.IntegrityError):
        await store.transact(half_done)
    assert await store.nodes() == []


async def test_history_numbers_stay_contiguous_when_a_part_fails(service: JobService, store: JobStore) -> None:
    """A transaction remembers each job's last history number; a failed part must not leave a gap behind it."""
    job_id = (await service.submit(spec())).job_id

    def work(tx: Tx) -> None:
        tx.add_history(job_id, 1, [Event(message="first")])
        with pytest.raises(RuntimeError), tx.part():
            tx.add_history(job_id, 1, [Event(message="undone")])
            raise RuntimeError("this part fails")
        tx.add_history(job_id, 1, [Event(message="second")])

    await store.transact(work)
    history = await store.history(job_id)
    assert [(h.seq_num, h.event.message) for h in history] == [(1, "Job submitted"), (2, "first"), (3, "second")]


# ---- the web UI's reads


MINUTE = 60 * 1_000_000_000


async def test_the_summary_counts_jobs_by_state_and_those_that_ended_per_minute(
    service: JobService, store: JobStore
) -> None:
    ids = [(await service.submit(spec())).job_id for _ in range(7)]
    now = now_ns()
    # (state, ended this long ago): two in the last minute, one 59.5 minutes ago, one beyond the hour.
    ended = [
        ("Completed", 1),
        ("Failed", MINUTE // 2),
        ("Completed", 5 * MINUTE + 1),
        ("Completed", 59 * MINUTE + MINUTE // 2),
    ]
    ended += [("Completed", 61 * MINUTE), ("Running", 0)]

    def arrange(tx: Tx) -> None:
        for job_id, (state, age) in zip(ids, ended, strict=False):
            tx.conn.execute("UPDATE jobs SET state = ?, modify_time = ? WHERE id = ?", (state, now - age, job_id))

    await store.transact(arrange)
    summary = await service.summary()
    assert summary.by_state == {"Completed": 4, "Failed": 1, "Running": 1, "Pending": 1}
    assert summary.interval == MINUTE and len(summary.completed) == len(summary.failed) == 60
    assert summary.now >= now
    # Oldest first: what ended within the last minute is the last interval (the clock moved on a little since).
    assert sum(summary.completed) == 3 and sum(summary.failed) == 1
    assert summary.completed[-1] == 1 and summary.failed[-1] == 1
    assert summary.completed[-6] == 1 and summary.completed[0] == 1


async def test_the_ui_list_filters_by_state_type_and_name_newest_first(service: JobService, store: JobStore) -> None:
    first = (await service.submit(spec(Name="nightly-Report"))).job_id
    second = (await service.submit(spec(Name="other"))).job_id
    third = (await service.submit(spec(Name="report-2", Type="ops"))).job_id
    await store.transact(lambda tx: tx.update_job_state(second, JobStateType.RUNNING))

    async def listed(**filters: Any) -> list[str]:
        jobs, _ = await service.list_jobs(namespace="*", reverse=True, **filters)
        return [job.id for job in jobs]

    assert await listed() == [third, second, first]
    assert await listed(states=["Running"]) == [second]
    assert await listed(states=["Pending", "Running"]) == [third, second, first]
    assert await listed(job_type="ops") == [third]
    assert await listed(name="REPORT") == [third, first]  # any case, any part of the name
    assert await listed(name=second[2:10]) == [second]  # or of the ID
    assert await listed(name="report", job_type="batch") == [first]
    assert await listed(name="%") == []  # the text is no pattern
    page, token = await service.list_jobs(namespace="*", reverse=True, limit=1, name="report")
    rest, last = await service.list_jobs(namespace="*", next_token=token, name="report")
    assert [job.id for job in page + rest] == [third, first] and last == ""
