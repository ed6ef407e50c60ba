"""The job service behind the API: submit, stop, and every read of jobs, executions, history and results."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from pydantic import ValidationError

from bacalhau.config.keys import lookup_key
from bacalhau.errors import Conflict, InvalidRequest, JobNotFound, MalformedRequest, NotFound
from bacalhau.lib import tracing
from bacalhau.lib.sqlstore import SqlConnection
from bacalhau.models.base import CANONICAL, describe_validation_error
from bacalhau.models.evaluation import EvalTrigger
from bacalhau.models.execution import Execution
from bacalhau.models.history import JobHistory, JobHistoryType
from bacalhau.models.ids import is_full_id, new_job_id
from bacalhau.models.job import (
    DEFAULT_NAMESPACE,
    META_CLIENT_INSTALLATION_ID,
    META_CLIENT_INSTANCE_ID,
    META_ORCHESTRATOR_ID,
    META_ORCHESTRATOR_ID_LEGACY,
    Job,
    JobType,
)
from bacalhau.models.limits import DEFAULT_MAX_COUNT, MAX_MESSAGE_LENGTH
from bacalhau.models.paging import InvalidPagingToken, PagingToken
from bacalhau.models.plugins import unknown_plugin_types
from bacalhau.models.spec import SpecConfig
from bacalhau.models.state import ExecutionStateType, JobState, JobStateType
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator import events
from bacalhau.orchestrator.jobdiff import spec_diff
from bacalhau.orchestrator.legacy_wasm import convert_legacy_wasm
from bacalhau.orchestrator.plan import job_span_attributes
from bacalhau.orchestrator.store import FIRST_VERSION, JobStore, Tx

DEFAULT_HISTORY_LIMIT = 100


def _configured(resource: str) -> str:
    """The config table's default amount of a resource for a task (the same for every job type)."""
    return str(lookup_key(f"JobDefaults.Batch.Task.Resources.{resource}").default)


@dataclass
class TaskDefaults:
    """``JobDefaults.<Type>`` in the config: what a task gets when it leaves a field empty."""

    cpu: str = field(default_factory=partial(_configured, "CPU"))
    memory: str = field(default_factory=partial(_configured, "Memory"))
    disk: str = ""
    gpu: str = ""
    publisher: str = ""
    execution_timeout: int = 0
    total_timeout: int = 0
    queue_timeout: int = 0
    priority: int = 0


@dataclass
class SubmitResult:
    job_id: str
    evaluation_id: str
    warnings: list[str]


@dataclass(frozen=True)
class VersionFilter:
    """Which versions of a job a read concerns: ``version`` when set, else every version when ``every``, else the
    latest."""

    version: int = 0
    every: bool = False

    def keeps(self, item_version: int, latest_version: int) -> bool:
        if self.version:
            return item_version == self.version
        return self.every or item_version == latest_version


@dataclass
class RerunResult:
    job_id: str
    job_version: int
    evaluation_id: str


@dataclass
class HistoryQuery:
    namespace: str = ""
    versions: VersionFilter = field(default_factory=VersionFilter)
    since: int = 0
    event_type: str = "all"
    execution_id: str = ""
    limit: int = 0
    next_token: str = ""


@dataclass
class HistoryPage:
    items: list[JobHistory] = field(default_factory=list)
    next_token: str = ""


SUMMARY_INTERVAL = 60 * 1_000_000_000  # the dashboard counts the jobs that ended per minute
SUMMARY_INTERVALS = 60  # over the last hour


@dataclass
class JobSummary:
    by_state: dict[str, int]
    now: int  # Unix nanoseconds: the end of the last interval
    interval: int  # nanoseconds
    completed: list[int]  # jobs completed in each interval, oldest first
    failed: list[int]


MAX_CANDIDATES = 10  # the jobs an ambiguous reference names


def _ambiguous(job_ref: str, candidates: list[Job]) -> Conflict:
    names = ", ".join(job.id for job in candidates[:MAX_CANDIDATES])
    more = ", ..." if len(candidates) > MAX_CANDIDATES else ""
    return Conflict(
        f"multiple jobs found for id {job_ref}: {names}{more}",
        code="MultipleJobsFound",
        component="JobStore",
        hint="Use full job ID",
    )


def _version_not_found(job_id: str, version: int) -> NotFound:
    return NotFound(f"job version {version} not found for job {job_id}", component="JobStore")


def _paging_token(text: str) -> PagingToken:
    """A client's ``next_token``: a bad one is the client's mistake (a 400)."""
    try:
        return PagingToken.decode(text)
    except InvalidPagingToken as exc:
        raise MalformedRequest(str(exc)) from exc


def _check_reason(reason: str) -> None:
    if len(reason) > MAX_MESSAGE_LENGTH:
        raise InvalidRequest(f"a reason may be at most {MAX_MESSAGE_LENGTH} characters", component="APIServer")


def validation_error(messages: list[str]) -> MalformedRequest:
    """The original's submit-time validation failure: every problem found, one per line."""
    return MalformedRequest("\n".join(messages))


class JobService:
    def __init__(
        self,
        store: JobStore,
        orchestrator_id: str,
        defaults: dict[str, TaskDefaults],
        transform_result: Callable[[Execution], SpecConfig] = lambda execution: execution.published_result,
        max_count: int = DEFAULT_MAX_COUNT,
    ) -> None:
        self._store = store
        self._max_count = max_count
        self._orchestrator_id = orchestrator_id
        self._defaults = defaults
        self._transform_result = transform_result

    # ---- writes
    async def submit(
        self,
        job: Job,
        client_headers: dict[str, str] | None = None,
        *,
        force: bool = False,
        trace_parent: str = "",
    ) -> SubmitResult:
        """Store a new job, or a new version of the job with the same name in the same namespace (unless the spec
        did not change and ``force`` is not set). When tracing, the submission is the root of the trace that the job's
        later work joins (under the client's own ``trace_parent``, if it sent one)."""
        if tracing.ENABLED:
            with tracing.span("job.submit", trace_parent, **{tracing.NODE_ID: self._orchestrator_id}) as span:
                result = await self._submit(job, client_headers or {}, force, span)
                span.set(job_id=result.job_id, evaluation_id=result.evaluation_id, job_type=job.type)
                return result
        return await self._submit(job, client_headers or {}, force, tracing.NO_SPAN)

    async def _submit(self, job: Job, client_headers: dict[str, str], force: bool, span: tracing.Span) -> SubmitResult:
        warnings = self._prepare(job, client_headers)

        def store(tx: Tx) -> tuple[str, str]:
            existing = tx.jobs_named(job.namespace, job.name)
            if len(existing) > 1:
                raise _ambiguous(job.name, existing)
            if not existing:
                tx.insert_job(job)
                tx.add_history(job.id, job.version, [events.job_submitted()])
                if span.traceparent:
                    tx.set_trace_parent(job.id, span.traceparent)
                return job.id, tx.new_evaluation(job, EvalTrigger.JOB_REGISTER.value).id
            current = existing[0]
            self._check_update(current, job, force)
            updated = tx.new_version(current, job, "Job update requested by user")
            tx.add_history(updated.id, updated.version, [events.job_updated()])
            if span.traceparent:  # a new version is a new submission: its work is a trace of its own
                tx.set_trace_parent(updated.id, span.traceparent)
                span.set(job_version=updated.version)
            return updated.id, tx.new_evaluation(updated, EvalTrigger.JOB_UPDATE.value).id

        job_id, evaluation_id = await self._store.transact(store)
        return SubmitResult(job_id, evaluation_id, warnings)

    async def diff(self, job: Job) -> tuple[str, list[str]]:
        """The diff between the stored job of this spec's name and the spec, as a resubmission would see it."""
        warnings = self._prepare(job, {})
        existing = await self._store.jobs_named(job.namespace, job.name)
        if not existing:
            raise JobNotFound(job.name)
        if len(existing) > 1:
            raise _ambiguous(job.name, existing)
        return spec_diff(existing[0], job), warnings

    async def rerun(
        self, job_ref: str, *, namespace: str = "", version: int = 0, reason: str = "", trace_parent: str = ""
    ) -> RerunResult:
        """Run a job again as a new version: its latest spec, or the spec of ``version`` (when tracing, in a trace of
        its own, whose root is this request)."""
        if tracing.ENABLED:
            with tracing.span("job.rerun", trace_parent, **{tracing.NODE_ID: self._orchestrator_id}) as span:
                result = await self._rerun(job_ref, namespace, version, reason, span)
                span.set(job_id=result.job_id, job_version=result.job_version, evaluation_id=result.evaluation_id)
                return result
        return await self._rerun(job_ref, namespace, version, reason, tracing.NO_SPAN)

    async def _rerun(self, job_ref: str, namespace: str, version: int, reason: str, span: tracing.Span) -> RerunResult:
        _check_reason(reason)
        job = await self.get_job(job_ref, namespace=namespace)

        def rerun(tx: Tx) -> RerunResult:
            current = tx.get_job(job.id)
            state = current.state.state_type
            if state in (JobStateType.PENDING, JobStateType.QUEUED, JobStateType.UNDEFINED):
                raise Conflict(
                    f"cannot rerun job in state {state.value}",
                    code="ConflictJobState",
                    component="JobStore",
                    hint="try to use the job run command instead of the job rerun command",
                )
            spec = tx.version_of(current, version)
            if spec is None:
                raise _version_not_found(current.id, version)
            updated = tx.new_version(current, spec, "job rerun")
            tx.add_history(updated.id, updated.version, [events.job_rerun(reason or "job rerun")])
            if span.traceparent:
                tx.set_trace_parent(updated.id, span.traceparent)
            evaluation = tx.new_evaluation(updated, EvalTrigger.JOB_RERUN.value)
            return RerunResult(updated.id, updated.version, evaluation.id)

        return await self._store.transact(rerun)

    def _prepare(self, job: Job, headers: dict[str, str]) -> list[str]:
        """Check, complete and sanitise a submitted spec as the orchestrator stores it; its warnings."""
        errors = job.validate_submission() or self._unknown_types(job)
        if errors:
            raise validation_error(errors)
        self._check_count(job)
        job.normalize()
        warnings = job.sanitize_submission()
        if headers.get("installation_id"):
            job.meta[META_CLIENT_INSTALLATION_ID] = headers["installation_id"]
        if headers.get("instance_id"):
            job.meta[META_CLIENT_INSTANCE_ID] = headers["instance_id"]
        if not job.id:
            job.id = new_job_id()
        if not job.name:
            job.name = job.id
        job.meta[META_ORCHESTRATOR_ID] = self._orchestrator_id
        job.meta[META_ORCHESTRATOR_ID_LEGACY] = self._orchestrator_id
        self._apply_defaults(job)
        try:
            convert_legacy_wasm(job)
        except ValidationError as exc:
            raise validation_error(
                [f"invalid legacy WASM engine parameters: {describe_validation_error(exc)}"]
            ) from None

        now = now_ns()
        job.state = JobState(state_type=JobStateType.PENDING)
        job.revision = 1
        job.version = FIRST_VERSION
        job.create_time = job.modify_time = now
        job.normalize()
        stored_errors = job.validate_job() or self._beyond_bounds(job)
        if stored_errors:
            raise InvalidRequest("\n".join(stored_errors), component="JobStore")
        return warnings

    @staticmethod
    def _check_update(current: Job, submitted: Job, force: bool) -> None:
        if current.type != submitted.type:
            raise InvalidRequest(
                f"job {current.name} is a {current.type} job: a new version cannot make it a {submitted.type} job",
                component="JobStore",
                hint="give the new job another name, or stop and rename the existing one",
            )
        if not force and not spec_diff(current, submitted):
            raise InvalidRequest(
                f"no changes detected for new job spec. Job Name: '{current.name}', Job Id: '{current.id}'",
                component="JobStore",
                hint="Use the --force flag to override this warning",
            )

    def _check_count(self, job: Job) -> None:
        if job.count is not None and job.count > self._max_count:
            raise MalformedRequest(
                f"job count {job.count} exceeds the maximum of {self._max_count} partitions per job",
                hint="split the work into several jobs, or ask the operator to raise Orchestrator.JobLimits.MaxCount",
            )

    @staticmethod
    def _beyond_bounds(job: Job) -> list[str]:
        """The wire models' bounds, checked again on the job as it will be stored: what this service added to it
        (meta, defaults, converted legacy parameters) must fit them too, or the job could not be read back."""
        try:
            Job.model_validate(job.to_wire(), context=CANONICAL)
        except ValidationError as exc:
            return [f"the job as completed by the orchestrator exceeds a limit: {describe_validation_error(exc)}"]
        return []

    @staticmethod
    def _unknown_types(job: Job) -> list[str]:
        """Plugin names no node can provide are refused now, rather than failing the job at scheduling."""
        errors = []
        for task in job.tasks:
            sources = [s.source.type for s in task.input_sources if s.source and s.source.type]
            unknown = unknown_plugin_types(task.engine_spec.type, task.publisher_spec.type, sources)
            if unknown:
                errors.append(f"task {task.name} validation failed: " + "\n".join(unknown))
        return errors

    def _apply_defaults(self, job: Job) -> None:
        defaults = self._defaults.get(job.type) or TaskDefaults()
        if job.priority == 0:
            job.priority = defaults.priority
        for task in job.tasks:
            resources = task.resources_config
            resources.cpu = resources.cpu or defaults.cpu
            resources.memory = resources.memory or defaults.memory
            resources.disk = resources.disk or defaults.disk
            resources.gpu = resources.gpu or defaults.gpu
            task.resources = resources
            if job.type not in (JobType.BATCH.value, JobType.OPS.value):
                continue
            if task.publisher_spec.is_empty() and defaults.publisher:
                task.publisher = SpecConfig(type=defaults.publisher)
            timeouts = task.timeouts_config
            if timeouts.execution_timeout <= 0:
                timeouts.execution_timeout = defaults.execution_timeout
            if timeouts.total_timeout <= 0:
                timeouts.total_timeout = defaults.total_timeout
            if timeouts.queue_timeout <= 0:
                timeouts.queue_timeout = defaults.queue_timeout
            task.timeouts = timeouts

    async def stop(self, job_ref: str, reason: str, *, namespace: str = "") -> str:
        """Stop a job; returns the evaluation ID ("" when it was already stopped)."""
        _check_reason(reason)
        job = await self.get_job(job_ref, namespace=namespace)

        def stop(tx: Tx) -> str:
            current = tx.get_job(job.id)
            state = current.state.state_type
            if state == JobStateType.STOPPED:
                return ""
            if state == JobStateType.COMPLETED:
                raise Conflict(f"cannot stop job in state {state.value}", code="")
            tx.update_job_state(current.id, JobStateType.STOPPED, reason)
            tx.add_history(current.id, current.version, [events.job_stopped(reason)])
            if tracing.ENABLED:
                self._trace_stop(tx, current, reason)
            return tx.new_evaluation(current, EvalTrigger.JOB_CANCEL.value).id

        return await self._store.transact(stop)

    def _trace_stop(self, tx: Tx, job: Job, reason: str) -> None:
        """The end of a stopped job's trace: ``job.complete``, ended when the stop commits."""
        attributes = {
            **job_span_attributes(job, self._orchestrator_id),
            tracing.JOB_STATE: JobStateType.STOPPED.value,
            "bacalhau.job.stop_reason": reason,
        }
        tx.effects.spans.append(tracing.start_span("job.complete", tx.trace_parent(job.id), attributes))

    # ---- reads
    async def get_job(self, job_ref: str, *, namespace: str = "", version: int = 0) -> Job:
        """A job by full ID, name (in ``namespace``, the default one when empty) or unique ID prefix, in that order;
        its ``version`` when asked."""
        job = await self._resolve(job_ref, namespace)
        found = await self._store.version_of(job, version) if version else job  # no store read for the latest
        if found is None:
            raise _version_not_found(job.id, version)
        return found

    async def _resolve(self, job_ref: str, namespace: str) -> Job:
        if not job_ref:
            raise JobNotFound(job_ref)
        if is_full_id(job_ref):
            try:
                return await self._store.get_job(job_ref)
            except JobNotFound:
                pass
        named = await self._store.jobs_named(namespace or DEFAULT_NAMESPACE, job_ref)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise _ambiguous(job_ref, named)
        matches = await self._store.find_jobs_by_prefix(job_ref, limit=MAX_CANDIDATES + 1)
        if not matches:
            raise JobNotFound(job_ref)
        if len(matches) > 1:
            raise _ambiguous(job_ref, matches)
        return matches[0]

    async def versions(
        self, job_ref: str, *, namespace: str = "", limit: int = 0, next_token: str = ""
    ) -> tuple[list[Job], str]:
        """A job's versions, oldest first, a page of ``limit`` at a time (0: all of them), and the next page's token."""
        job = await self.get_job(job_ref, namespace=namespace)
        after = 0
        if next_token:
            token = _paging_token(next_token)
            after, limit = token.offset, token.limit
        page = await self._store.job_versions(job, after=after, limit=limit)
        more = bool(page) and page[-1].version < job.version
        return page, PagingToken("version", False, limit, page[-1].version).encode() if more else ""

    async def list_jobs(
        self,
        *,
        namespace: str = "",
        order_by: str = "",
        reverse: bool = False,
        limit: int = 0,
        next_token: str = "",
        keep: Callable[[Job], bool] | None = None,
        states: Sequence[str] = (),
        job_type: str = "",
        name: str = "",
    ) -> tuple[list[Job], str]:
        """A page of jobs and the next page's token. ``keep`` (a label selector), ``states``, ``job_type`` and ``name``
        (part of the name or ID) filter; a token is valid only with the same filters."""
        if next_token:
            token = _paging_token(next_token)
            order_by, reverse, limit, offset = token.sort_by, token.reverse, token.limit, token.offset
            after = token.after
        else:
            offset, after = 0, None
        if order_by in ("", "created_at"):
            column = "create_time"
        elif order_by == "modified_at":
            column = "modify_time"
        else:
            raise InvalidRequest(
                f"OrderBy {order_by} not supported for listJobs",
                component="JobStore",
                hint="order by created_at or modified_at",
            )
        jobs, more = await self._store.list_jobs(
            namespace="" if namespace == "*" else namespace,
            order_by=column,
            reverse=reverse,
            offset=offset,
            limit=limit,
            after=after,
            keep=keep,
            states=states,
            job_type=job_type,
            name=name,
        )
        token_out = ""
        if more:
            last = jobs[-1]
            position = (last.modify_time if column == "modify_time" else last.create_time, last.id)
            token_out = PagingToken(order_by or "created_at", reverse, limit, offset + limit, position).encode()
        return jobs, token_out

    async def summary(self) -> JobSummary:
        """What the web UI's dashboard shows: jobs by state, and the jobs that completed or failed in each minute of
        the last hour. Two indexed queries, whatever the store holds."""
        now = now_ns()
        ended = (JobStateType.COMPLETED.value, JobStateType.FAILED.value)

        def read(conn: SqlConnection) -> JobSummary:
            tx = Tx(conn)
            completed, failed = tx.ended_jobs_per_interval(ended, now, SUMMARY_INTERVAL, SUMMARY_INTERVALS)
            return JobSummary(tx.jobs_by_state(), now, SUMMARY_INTERVAL, completed, failed)

        return await self._store.read(read)

    async def executions(
        self,
        job_ref: str,
        *,
        namespace: str = "",
        versions: VersionFilter | None = None,
        order_by: str = "",
        reverse: bool = False,
        limit: int = 0,
    ) -> list[Execution]:
        job = await self.get_job(job_ref, namespace=namespace)
        wanted = versions or VersionFilter()
        executions = [e for e in await self._store.get_executions(job.id) if wanted.keeps(e.job_version, job.version)]
        if order_by in ("", "created_at", "create_time"):
            executions.sort(key=lambda e: (e.create_time, e.id), reverse=reverse)
        elif order_by in ("modified_at", "modify_time"):
            executions.sort(key=lambda e: (e.modify_time, e.id), reverse=reverse)
        else:
            raise InvalidRequest(f"invalid order_by: {order_by}", component="APIServer")
        return executions[:limit] if limit else executions

    async def history(self, job_ref: str, query: HistoryQuery) -> HistoryPage:
        if query.event_type not in ("", "all", "job", "execution"):
            raise MalformedRequest(f"invalid event type: {query.event_type}")
        if query.since < 0:
            raise MalformedRequest("since must be greater than or equal to 0")
        job = await self.get_job(job_ref, namespace=query.namespace)
        offset, limit = 0, query.limit
        if query.next_token:
            try:
                token = PagingToken.decode(query.next_token)
            except InvalidPagingToken as exc:
                raise InvalidRequest(f"invalid next token: {exc}", component="JobStore") from exc
            offset = token.offset
            limit = limit or token.limit
        limit = limit or DEFAULT_HISTORY_LIMIT

        records = await self._store.history(job.id, after_seq=max(offset - 1, 0))
        page: list[JobHistory] = []
        scanned_to = -1
        for index, item in enumerate(records):
            scanned_to = index
            if self._keep(item, query, job.version):
                page.append(item)
                if len(page) == limit:
                    break
        more_records = scanned_to < len(records) - 1
        ongoing = not job.is_terminal
        if query.execution_id and ongoing:
            ongoing = await self._execution_ongoing(job.id, query.execution_id)
        token_out = ""
        if more_records or ongoing:
            next_offset = page[-1].seq_num + 1 if page else (records[-1].seq_num + 1 if records else offset)
            token_out = PagingToken("", False, query.limit, next_offset).encode()
        return HistoryPage(page, token_out)

    @staticmethod
    def _keep(item: JobHistory, query: HistoryQuery, latest_version: int) -> bool:
        if not query.versions.keeps(item.job_version, latest_version):
            return False
        if query.event_type == "job" and item.type != JobHistoryType.JOB_LEVEL:
            return False
        if query.event_type == "execution" and item.type != JobHistoryType.EXECUTION_LEVEL:
            return False
        if query.execution_id and not item.execution_id.startswith(query.execution_id):
            return False
        return not (query.since and item.time // 1_000_000_000 < query.since)

    async def _execution_ongoing(self, job_id: str, execution_prefix: str) -> bool:
        for execution in await self._store.get_executions(job_id):
            if execution.id.startswith(execution_prefix):
                return not execution.is_terminal
        return False

    async def execution_for_logs(
        self, job_ref: str, execution_id: str = "", *, namespace: str = "", version: int = 0
    ) -> Execution:
        """The execution whose logs to show: the one asked for, else the latest one not discarded (of ``version``
        when given, else of any version)."""
        job = await self.get_job(job_ref, namespace=namespace)
        wanted = VersionFilter(version, every=True)
        executions = [e for e in await self._store.get_executions(job.id) if wanted.keeps(e.job_version, job.version)]
        if execution_id:
            matches = [e for e in executions if e.id.startswith(execution_id)]
            if len(matches) != 1:
                raise NotFound(f"execution {execution_id} not found for job {job.id}", component="JobStore")
            return matches[0]
        candidates = [e for e in executions if not e.state.is_discarded]
        if not candidates:
            which = f"version {version} of job {job.id}" if version else f"job {job.id}"
            # The logs travel over a WebSocket, whose errors carry a message alone: the advice goes in it.
            advice = " (cancelled and rejected executions are left out: name one with --execution-id)"
            raise NotFound(f"no executions found for {which}{advice if executions else ''}", component="JobStore")
        return max(candidates, key=lambda e: (e.modify_time, e.id))

    async def results(self, job_ref: str, *, namespace: str = "", version: int = 0) -> list[SpecConfig]:
        """What the completed executions of a job's latest version (or of ``version``) published."""
        job = await self.get_job(job_ref, namespace=namespace)
        wanted = VersionFilter(version)
        if job.type not in (JobType.BATCH.value, JobType.OPS.value):  # the original answers 500: a client's mistake
            raise InvalidRequest(f"job type {job.type} does not support results", component="JobStore")
        executions = await self._store.get_executions(job.id)
        published = [
            e
            for e in executions
            if e.state == ExecutionStateType.COMPLETED
            and e.published_result.type
            and wanted.keeps(e.job_version, job.version)
        ]
        return [await asyncio.to_thread(self._transform_result, execution) for execution in published]
