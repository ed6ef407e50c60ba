"""Job versions (v1.8+): update by name, the no-change refusal and --force, rerun, diff, name resolution and the
version filters of the reads, on a real SQLite job store; and what the schedulers do with an earlier version's
executions."""

from __future__ import annotations

from typing import Any

import pytest

from bacalhau.errors import Conflict, InvalidRequest, JobNotFound, NotFound
from bacalhau.models.evaluation import Evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType, JobStateType
from bacalhau.orchestrator.jobdiff import spec_diff
from bacalhau.orchestrator.jobs import HistoryQuery, JobService, TaskDefaults, VersionFilter
from bacalhau.orchestrator.plan import Plan
from bacalhau.orchestrator.scheduler.base import SchedulerConfig
from bacalhau.orchestrator.scheduler.batch import BatchServiceScheduler
from bacalhau.orchestrator.scheduler.daemon import DaemonScheduler
from bacalhau.orchestrator.selection import CapacityTracker, NodeSelector
from bacalhau.orchestrator.store import JobStore, Tx
from tests.unit.test_scheduler import Nodes, execution, node
from tests.unit.test_scheduler import job as scheduled_job


@pytest.fixture
def service(store: JobStore) -> JobService:
    return JobService(store, "n-orchestrator", {"batch": TaskDefaults(), "daemon": TaskDefaults()})


def spec(name: str = "my-job", *, job_type: str = "batch", **task: Any) -> Job:
    return Job.model_validate(
        {"Name": name, "Type": job_type, "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}, **task}]}
    )


async def finish(store: JobStore, job_id: str, state: JobStateType = JobStateType.COMPLETED) -> None:
    await store.transact(lambda tx: tx.update_job_state(job_id, state))


# ---- update by name


async def test_a_changed_spec_with_a_known_name_is_the_next_version_of_that_job(
    service: JobService, store: JobStore
) -> None:
    first = await service.submit(spec(Env={"A": "1"}))
    await finish(store, first.job_id)
    second = await service.submit(spec(Env={"A": "2"}))
    assert second.job_id == first.job_id
    job = await store.get_job(first.job_id)
    assert (job.version, job.state.state_type, job.state.message) == (
        2,
        JobStateType.PENDING,
        "Job update requested by user",
    )
    assert job.task.env["A"] == "2"
    history = await store.history(job.id)
    assert [(h.job_version, h.event.message) for h in history if h.type.value == "JobLevel"][-1] == (2, "Job updated")
    evaluations = {e.triggered_by for e in await store.open_evaluations()}
    assert "job-update" in evaluations


async def test_an_unchanged_spec_is_refused_unless_forced(service: JobService, store: JobStore) -> None:
    first = await service.submit(spec())
    with pytest.raises(InvalidRequest) as refused:
        await service.submit(spec())
    assert refused.value.message == (
        f"no changes detected for new job spec. Job Name: 'my-job', Job Id: '{first.job_id}'"
    )
    assert refused.value.hint == "Use the --force flag to override this warning"
    assert (await store.get_job(first.job_id)).version == 1
    forced = await service.submit(spec(), force=True)
    assert forced.job_id == first.job_id and (await store.get_job(first.job_id)).version == 2


async def test_a_new_version_may_not_change_the_job_type(service: JobService) -> None:
    await service.submit(spec(job_type="batch"))
    with pytest.raises(InvalidRequest, match="cannot make it a daemon job"):
        await service.submit(spec(job_type="daemon"))


async def test_names_are_per_namespace(service: JobService) -> None:
    first = await service.submit(spec())
    other = spec()
    other.namespace = "elsewhere"
    second = await service.submit(other)
    assert first.job_id != second.job_id
    assert (await service.get_job("my-job")).id == first.job_id
    assert (await service.get_job("my-job", namespace="elsewhere")).id == second.job_id


async def test_every_version_stays_readable(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec(Env={"V": "1"}))).job_id
    await finish(store, job_id, JobStateType.FAILED)
    await service.submit(spec(Env={"V": "2"}))
    versions, token = await service.versions("my-job")
    assert [(j.version, j.task.env["V"]) for j in versions] == [(1, "1"), (2, "2")] and token == ""
    first_page, token = await service.versions("my-job", limit=1)
    second_page, last = await service.versions("my-job", next_token=token)
    assert [j.version for j in first_page + second_page] == [1, 2] and last == ""
    assert versions[0].state.state_type == JobStateType.FAILED  # kept as that version ended
    assert (await service.get_job(job_id, version=1)).task.env["V"] == "1"
    assert (await service.get_job(job_id, version=2)).version == 2
    for missing in (3, 2**63 - 1):
        with pytest.raises(NotFound, match=f"job version {missing} not found"):
            await service.get_job(job_id, version=missing)


# ---- rerun


async def test_rerun_makes_a_new_version_of_the_latest_or_a_chosen_spec(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec(Env={"V": "1"}))).job_id
    with pytest.raises(Conflict, match="cannot rerun job in state Pending") as refused:
        await service.rerun(job_id)
    assert refused.value.hint == "try to use the job run command instead of the job rerun command"
    await finish(store, job_id)
    await service.submit(spec(Env={"V": "2"}))
    await finish(store, job_id)

    again = await service.rerun("my-job", reason="flaky input")
    assert (again.job_id, again.job_version) == (job_id, 3)
    await finish(store, job_id)
    older = await service.rerun(job_id[:8], version=1)
    assert older.job_version == 4
    job = await store.get_job(job_id)
    assert (job.version, job.task.env["V"], job.state.message) == (4, "1", "job rerun")
    reruns = [h for h in await store.history(job_id) if h.event.message == "Job rerun requested"]
    assert [(h.job_version, h.event.details["Reason"]) for h in reruns] == [(3, "flaky input"), (4, "job rerun")]
    await finish(store, job_id)
    with pytest.raises(NotFound):
        await service.rerun(job_id, version=9)


# ---- diff


async def test_the_diff_shows_what_a_resubmission_would_change(service: JobService) -> None:
    await service.submit(spec(Env={"A": "1"}, Resources={"Memory": "1GB"}))
    unchanged, _ = await service.diff(spec(Env={"A": "1"}, Resources={"Memory": "1gb"}))
    assert unchanged == ""
    text, _ = await service.diff(spec(Env={"A": "2"}, Resources={"Memory": "1gb"}))
    assert "--- my-job (version 1)" in text and "+++ my-job (submitted)" in text
    changed = [line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ["-    A: '1'", "+    A: '2'"]
    with pytest.raises(JobNotFound):
        await service.diff(spec("nobody"))


def test_fields_the_orchestrator_owns_are_no_change() -> None:
    stored, submitted = spec(), spec()
    stored.id, stored.version, stored.revision, stored.create_time = "j-1", 3, 7, 123
    stored.meta = {"bacalhau.org/orchestrator.id": "n-1", "mine": "x"}
    submitted.meta = {"mine": "x"}
    assert spec_diff(stored, submitted) == ""
    submitted.meta = {"mine": "y"}
    assert spec_diff(stored, submitted) != ""


# ---- references and version filters


async def test_a_reference_is_an_id_then_a_name_then_an_id_prefix(service: JobService) -> None:
    named = (await service.submit(spec("report"))).job_id
    assert (await service.get_job(named)).id == named
    assert (await service.get_job("report")).id == named
    assert (await service.get_job(named[:9])).id == named
    with pytest.raises(JobNotFound):
        await service.get_job("nothing-by-this-name")
    for _ in range(2):
        await service.submit(spec(""))
    with pytest.raises(Conflict, match="multiple jobs found for id j-: j-") as ambiguous:
        await service.get_job("j-")
    assert ambiguous.value.code == "MultipleJobsFound"


def test_version_filters() -> None:
    latest = VersionFilter()
    assert latest.keeps(3, 3) and not latest.keeps(2, 3)
    assert VersionFilter(2).keeps(2, 3) and not VersionFilter(2).keeps(3, 3)
    assert VersionFilter(every=True).keeps(1, 3)


async def test_reads_concern_the_latest_version_unless_asked(service: JobService, store: JobStore) -> None:
    job_id = (await service.submit(spec(Env={"V": "1"}))).job_id

    async def add_execution(version: int, name: str) -> None:
        new = Execution(id=name, job_id=job_id, node_id="n-1", job_version=version)
        await store.transact(lambda tx: tx.insert_execution(new))

    await add_execution(1, "e-one")
    await finish(store, job_id)
    await service.submit(spec(Env={"V": "2"}))
    await add_execution(2, "e-two")
    assert [e.id for e in await service.executions(job_id)] == ["e-two"]
    assert [e.id for e in await service.executions(job_id, versions=VersionFilter(1))] == ["e-one"]
    assert {e.id for e in await service.executions(job_id, versions=VersionFilter(every=True))} == {"e-one", "e-two"}
    latest = await service.history(job_id, HistoryQuery())
    assert {h.job_version for h in latest.items} == {2}
    every = await service.history(job_id, HistoryQuery(versions=VersionFilter(every=True)))
    assert {h.job_version for h in every.items} == {1, 2}


async def test_executions_and_history_written_before_versions_read_as_the_first(store: JobStore) -> None:
    def legacy(tx: Tx) -> None:
        tx.conn.execute(
            "INSERT INTO executions (id, job_id, node_id, compute_state, create_time, modify_time, body) "
            """VALUES ('e-old', 'j-old', 'n-1', 1, 1, 1, '{"ID": "e-old", "JobID": "j-old", "Revision": 1}')"""
        )
        tx.conn.execute("""INSERT INTO history (job_id, seq, body) VALUES ('j-old', 1, '{"SeqNum": 1}')""")

    await store.transact(legacy)
    assert [e.job_version for e in await store.get_executions("j-old")] == [1]
    assert [h.job_version for h in await store.history("j-old")] == [1]


# ---- scheduling a new version


def _plan(scheduler: BatchServiceScheduler | DaemonScheduler, job: Job, executions: list[Execution]) -> Plan:
    plan = Plan(Evaluation(id="eval", job_id=job.id, type=job.type, triggered_by="job-update"), job)
    scheduler.build(plan, executions)
    return plan


def _versioned(execution_: Execution, version: int) -> Execution:
    execution_.job_version = version
    return execution_


def test_a_new_batch_version_stops_the_old_versions_executions_and_runs_afresh() -> None:
    job = scheduled_job(count=2)
    job.version = 2
    old = [
        _versioned(execution("n1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, partition=0), 1),
        _versioned(execution("n2", ExecutionStateType.COMPLETED, ExecutionDesiredStateType.STOPPED, partition=1), 1),
    ]
    scheduler = BatchServiceScheduler(
        Nodes(node("n1"), node("n2")), NodeSelector(CapacityTracker(), randomness=0), SchedulerConfig()
    )
    plan = _plan(scheduler, job, old)
    assert {(u.execution.id, u.event.message) for u in plan.updated.values()} == {
        ("e-n1-1", "Execution stopped for job update")
    }
    assert sorted(e.partition_index for e in plan.new_executions) == [0, 1]  # the completed partition runs again
    assert {e.job_version for e in plan.new_executions} == {2}
    assert plan.desired_job_state is None


def test_a_new_daemon_version_replaces_its_executions_on_every_node() -> None:
    job = scheduled_job(job_type="daemon")
    job.version = 2
    running = [
        _versioned(execution(n, ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING), 1) for n in ("n1", "n2")
    ]
    scheduler = DaemonScheduler(
        Nodes(node("n1"), node("n2")), NodeSelector(CapacityTracker(), randomness=0), SchedulerConfig()
    )
    plan = _plan(scheduler, job, running)
    assert {u.execution.node_id for u in plan.updated.values()} == {"n1", "n2"}
    assert {u.desired for u in plan.updated.values()} == {ExecutionDesiredStateType.STOPPED}
    assert sorted((e.node_id, e.job_version) for e in plan.new_executions) == [("n1", 2), ("n2", 2)]


def _full_nodes(*executions_: Execution) -> tuple[Nodes, NodeSelector]:
    """Nodes of half a CPU, each held by the given executions (half a CPU each): none has room for more."""
    tracker = CapacityTracker()
    by_node: dict[str, list[Execution]] = {}
    for item in executions_:
        by_node.setdefault(item.node_id, []).append(item)
    tracker.load(by_node)
    return Nodes(node("n1", cpu=0.5), node("n2", cpu=0.5)), NodeSelector(tracker, randomness=0)


def test_a_new_daemon_version_takes_the_room_its_old_executions_leave() -> None:
    """The old version's executions are stopped by the very plan that places the new ones: their capacity is free
    for it (it is released when the plan commits). Counting it as taken left a daemon update Pending for good."""
    job = scheduled_job(job_type="daemon")
    job.version = 2
    running = [
        _versioned(execution(n, ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING), 1) for n in ("n1", "n2")
    ]
    nodes, selector = _full_nodes(*running)
    plan = _plan(DaemonScheduler(nodes, selector, SchedulerConfig()), job, running)
    assert {u.execution.node_id for u in plan.updated.values()} == {"n1", "n2"}
    assert sorted((e.node_id, e.job_version) for e in plan.new_executions) == [("n1", 2), ("n2", 2)]


def test_a_new_batch_version_is_placed_at_once_where_its_old_executions_ran() -> None:
    """Not queued ("node busy") behind the executions the same plan stops."""
    job = scheduled_job(count=2)
    job.version = 2
    running = [
        _versioned(execution(n, ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING, partition=p), 1)
        for p, n in enumerate(("n1", "n2"))
    ]
    nodes, selector = _full_nodes(*running)
    plan = _plan(BatchServiceScheduler(nodes, selector, SchedulerConfig()), job, running)
    assert sorted((e.node_id, e.partition_index) for e in plan.new_executions if e.job_version == 2) in (
        [("n1", 0), ("n2", 1)],
        [("n1", 1), ("n2", 0)],
    )
    assert not plan.job_events, "no 'Job queued'"


def test_capacity_held_by_executions_that_keep_running_still_counts() -> None:
    """Only what the plan stops is freed: a node still busy with another job's execution stays busy."""
    job = scheduled_job(job_type="daemon")
    job.version = 2
    other = execution("n2", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING)
    other.id, other.job_id = "e-other", "j-other"
    old = _versioned(execution("n1", ExecutionStateType.RUNNING, ExecutionDesiredStateType.RUNNING), 1)
    nodes, selector = _full_nodes(old, other)
    plan = _plan(DaemonScheduler(nodes, selector, SchedulerConfig()), job, [old])
    assert [(e.node_id, e.job_version) for e in plan.new_executions] == [("n1", 2)]
