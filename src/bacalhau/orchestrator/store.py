"""The orchestrator's job store on SQLite: jobs, executions, evaluations, history, nodes and per-node outboxes.

Every change runs as one transaction through :meth:`JobStore.transact`, with a :class:`Tx` that offers the
operations. What a transaction created that other components care about (new evaluations, messages queued for a
node, executions that ended) is announced to listeners only after the commit, so nothing acts on unsaved state.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bacalhau.errors import Conflict, JobNotFound, NotFound, StateConflict
from bacalhau.lib import tracing
from bacalhau.lib.sqlite import Database
from bacalhau.lib.sqlstore import (
    Dialects,
    Migration,
    SqlConnection,
    SqlDatabase,
    Transaction,
    fetch_numbered_texts,
    store_epoch,
)
from bacalhau.models.base import CANONICAL
from bacalhau.models.evaluation import EvalStatus, Evaluation, new_evaluation
from bacalhau.models.execution import Execution
from bacalhau.models.history import Event, JobHistory, JobHistoryType
from bacalhau.models.job import Job
from bacalhau.models.node import NodeState
from bacalhau.models.state import (
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobState,
    JobStateType,
)
from bacalhau.models.timefmt import now_ns
from bacalhau.transport import envelope

T = TypeVar("T")

FIRST_VERSION = 1
UPDATED_FIELDS = ("priority", "count", "constraints", "meta", "labels", "tasks")  # what a new version may change

# The store's schema, one migration per version (see bacalhau.lib.sqlstore), the same list for SQLite and PostgreSQL: a
# store at version N runs N+1 onwards when opened, a new one runs them all. Never edit a migration once released, since
# stores out there already had it: append a new one (SQL both engines read, a function of the connection, or
# Dialects). Add what it means to the upgrade test (tests/unit/test_store_upgrade.py) and, once released, a fixture
# made by that release. PostgreSQL stores begin at version 6: the steps before it concern SQLite files only.
MIGRATIONS: list[Migration] = [
    # 1: the schema as released before stores had versions. Its IF NOT EXISTS clauses make it fit the files
    # that release made (version 0, with these tables) as well as new ones.
    Dialects(
        sqlite="""
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        create_time INTEGER NOT NULL,
        modify_time INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_by_create ON jobs (create_time, id);
    CREATE INDEX IF NOT EXISTS jobs_by_modify ON jobs (modify_time, id);
    CREATE INDEX IF NOT EXISTS jobs_by_namespace ON jobs (namespace, create_time);
    CREATE INDEX IF NOT EXISTS jobs_in_progress ON jobs (state) WHERE state NOT IN ('Completed', 'Failed', 'Stopped');
    CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        compute_state INTEGER NOT NULL,
        create_time INTEGER NOT NULL,
        modify_time INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS executions_by_job ON executions (job_id, create_time);
    CREATE INDEX IF NOT EXISTS executions_live_by_node ON executions (node_id)
        WHERE compute_state NOT IN (4, 8, 9, 10, 11);
    CREATE TABLE IF NOT EXISTS evaluations (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS evaluations_open ON evaluations (status) WHERE status IN ('pending', 'blocked');
    CREATE TABLE IF NOT EXISTS history (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS outbox (
        node_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (node_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS streams (
        node_id TEXT PRIMARY KEY,
        next_seq INTEGER NOT NULL DEFAULT 1,
        acked_seq INTEGER NOT NULL DEFAULT 0,
        applied_seq INTEGER NOT NULL DEFAULT 0,
        peer_epoch TEXT NOT NULL DEFAULT ''
    );
    """,
        postgres="",
    ),
    # 2: job versions (v1.8+): each version of a job kept as it ended, and jobs found by name in their namespace.
    # Executions and history written before carry no JobVersion: they read as the first version (_execution_from_row).
    Dialects(
        sqlite="""
    CREATE TABLE job_versions (
        job_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (job_id, version)
    ) WITHOUT ROWID;
    CREATE INDEX jobs_by_name ON jobs (namespace, json_extract(body, '$.Name'));
    """,
        postgres="",
    ),
    # 3: the name index also orders by creation, as its query does: without that, SQLite preferred the namespace index
    # and read every job of the namespace on each submit.
    Dialects(
        sqlite="""
    DROP INDEX jobs_by_name;
    CREATE INDEX jobs_by_name ON jobs (namespace, json_extract(body, '$.Name'), create_time);
    """,
        postgres="",
    ),
    # 4: the web UI's summary (JobService.summary): jobs counted by state from this index alone, and the jobs that
    # ended in the last hour found by state and time, whatever the store holds.
    Dialects(
        sqlite="""
    CREATE INDEX jobs_by_state ON jobs (state, modify_time);
    """,
        postgres="",
    ),
    # 5: each job's trace (a W3C traceparent, see bacalhau.lib.tracing), kept beside its body so that the job's wire
    # JSON does not change; empty for jobs submitted while tracing was off.
    Dialects(
        sqlite="""
    ALTER TABLE jobs ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
    """,
        postgres="",
    ),
    # 6: a job's name and revision, and an execution's revision, in columns of their own: the revision checks and the
    # lookup by name read them without parsing the body, in SQL both engines read alike. PostgreSQL stores begin here,
    # with the whole schema as it now stands (text keys in the "C" collation: ordered by code point, as SQLite does),
    # and the leader's term (see bacalhau.orchestrator.leadership; one orchestrator per SQLite file has none).
    Dialects(
        sqlite="""
    ALTER TABLE jobs ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET name = COALESCE(json_extract(body, '$.Name'), ''),
        revision = COALESCE(json_extract(body, '$.Revision'), 0);
    ALTER TABLE executions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    UPDATE executions SET revision = COALESCE(json_extract(body, '$.Revision'), 0);
    DROP INDEX jobs_by_name;
    CREATE INDEX jobs_by_name ON jobs (namespace, name, create_time);
    """,
        postgres="""
    CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE jobs (
        id TEXT COLLATE "C" PRIMARY KEY,
        namespace TEXT COLLATE "C" NOT NULL,
        type TEXT COLLATE "C" NOT NULL,
        state TEXT COLLATE "C" NOT NULL,
        create_time BIGINT NOT NULL,
        modify_time BIGINT NOT NULL,
        body TEXT NOT NULL,
        trace_parent TEXT NOT NULL DEFAULT '',
        name TEXT COLLATE "C" NOT NULL DEFAULT '',
        revision BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_by_create ON jobs (create_time, id);
    CREATE INDEX jobs_by_modify ON jobs (modify_time, id);
    CREATE INDEX jobs_by_namespace ON jobs (namespace, create_time);
    CREATE INDEX jobs_in_progress ON jobs (state) WHERE state NOT IN ('Completed', 'Failed', 'Stopped');
    CREATE INDEX jobs_by_name ON jobs (namespace, name, create_time);
    CREATE INDEX jobs_by_state ON jobs (state, modify_time);
    CREATE TABLE executions (
        id TEXT COLLATE "C" PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL,
        node_id TEXT COLLATE "C" NOT NULL,
        compute_state INTEGER NOT NULL,
        create_time BIGINT NOT NULL,
        modify_time BIGINT NOT NULL,
        body TEXT NOT NULL,
        revision BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX executions_by_job ON executions (job_id, create_time);
    CREATE INDEX executions_live_by_node ON executions (node_id) WHERE compute_state NOT IN (4, 8, 9, 10, 11);
    CREATE TABLE evaluations (
        id TEXT COLLATE "C" PRIMARY KEY,
        job_id TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX evaluations_open ON evaluations (status) WHERE status IN ('pending', 'blocked');
    CREATE TABLE history (
        job_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE nodes (node_id TEXT COLLATE "C" PRIMARY KEY, body TEXT NOT NULL);
    CREATE TABLE outbox (
        node_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (node_id, seq)
    );
    CREATE TABLE streams (
        node_id TEXT COLLATE "C" PRIMARY KEY,
        next_seq BIGINT NOT NULL DEFAULT 1,
        acked_seq BIGINT NOT NULL DEFAULT 0,
        applied_seq BIGINT NOT NULL DEFAULT 0,
        peer_epoch TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE job_versions (
        job_id TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (job_id, version)
    );
    CREATE TABLE leadership (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        term BIGINT NOT NULL,
        holder TEXT NOT NULL,
        since BIGINT NOT NULL
    );
    """,
    ),
]

NO_LIMIT = 2**63 - 1  # a LIMIT that takes every row, in both engines (SQLite's -1 means none only to SQLite)

_TERMINAL_STATES = tuple(int(s) for s in ExecutionStateType if s.is_terminal)
_LIVE_CONDITION = f"compute_state NOT IN ({', '.join(map(str, _TERMINAL_STATES))})"


def _like_escaped(text: str) -> str:
    """``text`` matched as it is by LIKE ... ESCAPE '!' (its wildcards and the escape character escaped)."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _job_from_row(body: str) -> Job:
    return Job.model_validate_json(body, context=CANONICAL)


def _execution_from_row(body: str) -> Execution:
    execution = Execution.model_validate_json(body, context=CANONICAL)
    execution.job_version = execution.job_version or FIRST_VERSION  # written before jobs had versions
    return execution


def _history_from_row(body: str) -> JobHistory:
    item = JobHistory.model_validate_json(body, context=CANONICAL)
    item.job_version = item.job_version or FIRST_VERSION
    return item


@dataclass
class CommitEffects:
    """What a committed transaction means for the rest of the orchestrator."""

    evaluations: list[Evaluation] = field(default_factory=list)
    created_executions: list[Execution] = field(default_factory=list)
    outbox: list[tuple[str, int, str]] = field(default_factory=list)  # (node, number, body) of messages committed
    ended_executions: list[Execution] = field(default_factory=list)
    changed_nodes: list[str] = field(default_factory=list)  # the nodes saved or deleted
    # Blocked evaluations planned in this transaction because room was freed (see orchestrator/drain.py), with their
    # new status, and how many executions that planning placed.
    drained: list[Evaluation] = field(default_factory=list)
    drained_placements: int = 0
    # For the metrics: the types of the jobs submitted (a new job or a new version), each job that ended as (type,
    # final state, its create time), and the create time of each evaluation whose plan placed executions.
    submitted_jobs: list[str] = field(default_factory=list)
    ended_jobs: list[tuple[str, str, int]] = field(default_factory=list)
    placements: list[int] = field(default_factory=list)
    # Spans of the work this transaction records, ended once it commits (dropped with a part that is undone).
    spans: list[tracing.Span] = field(default_factory=list)


MAX_ANNOUNCEMENT = 7000  # bytes: PostgreSQL's NOTIFY takes under 8000; a longer one says "read everything again"


@dataclass
class Announcement:
    """What the orchestrators sharing a store tell each other of a commit (PostgreSQL only): the evaluations it made,
    the nodes it queued messages for, and the nodes it saved or deleted; ``resync`` when that was too much to say."""

    origin: str
    evaluations: list[str] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    resync: bool = False

    @classmethod
    def of(cls, origin: str, effects: CommitEffects) -> Announcement:
        return cls(
            origin,
            [evaluation.id for evaluation in effects.evaluations],
            sorted({node_id for node_id, _, _ in effects.outbox}),
            sorted(set(effects.changed_nodes)),
        )

    def text(self) -> str:
        """The announcement as sent ("" when there is nothing to say)."""
        if not (self.evaluations or self.outbox or self.nodes or self.resync):
            return ""
        body = {"Origin": self.origin, "Evaluations": self.evaluations, "Outbox": self.outbox, "Nodes": self.nodes}
        text = json.dumps(body, separators=(",", ":"))
        if len(text.encode()) > MAX_ANNOUNCEMENT:
            text = json.dumps({"Origin": self.origin, "Resync": True}, separators=(",", ":"))
        return text

    @classmethod
    def parse(cls, text: str) -> Announcement | None:
        """An announcement read back; None for text that is not one (bounded: a payload is under 8000 bytes)."""
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return None
        if not isinstance(body, dict) or not isinstance(body.get("Origin"), str):
            return None
        lists = [body.get(key, []) for key in ("Evaluations", "Outbox", "Nodes")]
        if not all(isinstance(items, list) and all(isinstance(item, str) for item in items) for items in lists):
            return None
        evaluations, outbox, nodes = lists
        return cls(body["Origin"], evaluations, outbox, nodes, resync=body.get("Resync") is True)


@dataclass
class StreamState:
    node_id: str
    next_seq: int = 1
    acked_seq: int = 0
    applied_seq: int = 0
    peer_epoch: str = ""


class Tx(Transaction[CommitEffects]):
    """The operations available inside one store transaction."""

    def __init__(self, conn: SqlConnection) -> None:
        super().__init__(conn, CommitEffects())
        self.now = now_ns()
        self._history_seq: dict[str, int] = {}  # the last history number of each job this transaction wrote to

    def forget(self) -> None:
        self._history_seq.clear()

    # ---- jobs
    def insert_job(self, job: Job) -> None:
        cursor = self.conn.execute(
            "INSERT INTO jobs (id, namespace, type, state, create_time, modify_time, body, name, revision) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
            (
                job.id,
                job.namespace,
                job.type,
                job.state.state_type.value,
                job.create_time,
                job.modify_time,
                job.to_json(),
                job.name,
                job.revision,
            ),
        )
        if cursor.rowcount == 0:
            raise Conflict(f"job already exists: {job.id}", component="JobStore")
        self._keep_version(job)
        self.effects.submitted_jobs.append(job.type)

    def _keep_version(self, job: Job) -> None:
        self.conn.execute(
            "INSERT INTO job_versions (job_id, version, body) VALUES (?,?,?) "
            "ON CONFLICT (job_id, version) DO UPDATE SET body = excluded.body",
            (job.id, job.version, job.to_json()),
        )

    def set_trace_parent(self, job_id: str, traceparent: str) -> None:
        """Make ``traceparent`` the trace the job's later work (scheduling, runs, its end) is part of."""
        self.conn.execute("UPDATE jobs SET trace_parent = ? WHERE id = ?", (traceparent, job_id))

    def trace_parent(self, job_id: str) -> str:
        """The job's trace ("" if it has none: submitted while tracing was off)."""
        row = self.conn.execute("SELECT trace_parent FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return str(row[0]) if row else ""

    def jobs_named(self, namespace: str, name: str, limit: int = 2) -> list[Job]:
        rows = self.conn.execute(
            "SELECT body FROM jobs WHERE namespace = ? AND name = ? ORDER BY create_time DESC, id LIMIT ?",
            (namespace, name, limit),
        ).fetchall()
        return [_job_from_row(r[0]) for r in rows]

    def new_version(self, current: Job, spec: Job, message: str) -> Job:
        """Make ``spec``'s fields that a version may change the job's next version, back to Pending.

        The version being replaced is kept as it ends (its final state), so that old versions stay readable."""
        self._keep_version(current)
        updated = current.model_copy(deep=True, update={name: getattr(spec, name) for name in UPDATED_FIELDS})
        updated.version = current.version + 1
        updated.state = JobState(state_type=JobStateType.PENDING, message=message)
        updated.normalize()
        self.save_job(updated)
        self._keep_version(updated)
        self.effects.submitted_jobs.append(updated.type)
        return updated

    def version_of(self, job: Job, version: int) -> Job | None:
        """``job`` as it was at ``version`` (the job itself for 0 or its own version); None when it had no such one."""
        if not version or version == job.version:
            return job
        if version > job.version:  # nothing to look up (and no integer SQLite could not hold)
            return None
        row = self.conn.execute(
            "SELECT body FROM job_versions WHERE job_id = ? AND version = ?", (job.id, version)
        ).fetchone()
        return _job_from_row(row[0]) if row else None

    def get_job(self, job_id: str) -> Job:
        row = self.conn.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _job_from_row(row[0])

    def save_job(self, job: Job) -> None:
        """Write ``job`` as it was read, bumping its revision; a conflict if it changed since it was read."""
        read_revision = job.revision
        job.revision += 1
        job.modify_time = self.now
        cursor = self.conn.execute(
            "UPDATE jobs SET state = ?, modify_time = ?, body = ?, name = ?, revision = ? "
            "WHERE id = ? AND revision = ?",
            (
                job.state.state_type.value,
                job.modify_time,
                job.to_json(),
                job.name,
                job.revision,
                job.id,
                read_revision,
            ),
        )
        if cursor.rowcount == 0:
            raise StateConflict(f"job {job.id} changed since revision {read_revision}", code="ConflictJobRevision")

    def update_job_state(
        self, job: Job | str, new_state: JobStateType, message: str = "", *, details: dict[str, str] | None = None
    ) -> Job:
        """Move a job (by ID, or as read earlier: changed in place, and a conflict if it changed since) to
        ``new_state``."""
        if isinstance(job, str):
            job = self.get_job(job)
        if job.is_terminal:
            raise StateConflict(
                f"job {job.id} is in terminal state {job.state.state_type.value} and cannot transition to "
                f"{new_state.value}"
            )
        job.state.state_type = new_state
        job.state.message = message
        job.state.details = details or {}
        self.save_job(job)
        if new_state.is_terminal:
            self.effects.ended_jobs.append((job.type, new_state.value, job.create_time))
        return job

    def jobs_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (read from the state index alone)."""
        return {
            str(state): int(count)
            for state, count in self.conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        }

    def ended_jobs_per_interval(
        self, states: Sequence[str], now: int, interval: int, intervals: int
    ) -> list[list[int]]:
        """For each of ``states``, how many jobs last changed (ended, for a terminal state) in each of the
        ``intervals`` intervals of ``interval`` nanoseconds before ``now``, oldest first."""
        counts = [[0] * intervals for _ in states]
        marks = ",".join("?" * len(states))
        rows = self.conn.execute(
            f"SELECT state, (? - modify_time) / ?, COUNT(*) FROM jobs "
            f"WHERE state IN ({marks}) AND modify_time > ? AND modify_time <= ? GROUP BY 1, 2",
            (now, interval, *states, now - interval * intervals, now),
        )
        for state, age, count in rows:
            counts[states.index(state)][intervals - 1 - int(age)] = int(count)
        return counts

    # ---- executions
    def insert_execution(self, execution: Execution) -> None:
        execution.revision = execution.revision or 1
        execution.create_time = execution.create_time or self.now
        execution.modify_time = execution.modify_time or self.now
        self.conn.execute(
            "INSERT INTO executions (id, job_id, node_id, compute_state, create_time, modify_time, body, revision) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                execution.id,
                execution.job_id,
                execution.node_id,
                int(execution.state),
                execution.create_time,
                execution.modify_time,
                execution.to_json(),
                execution.revision,
            ),
        )
        self.effects.created_executions.append(execution)

    def live_job_ids_on(self, node_id: str) -> list[str]:
        """The jobs with live executions on one node, found through the index of live executions by node (its
        condition written out as the index states it, which SQLite needs to use a partial index)."""
        sql = f"SELECT DISTINCT job_id FROM executions WHERE node_id = ? AND {_LIVE_CONDITION} ORDER BY job_id"
        return [row[0] for row in self.conn.execute(sql, (node_id,))]

    def get_execution(self, execution_id: str) -> Execution | None:
        row = self.conn.execute("SELECT body FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return _execution_from_row(row[0]) if row else None

    def update_execution(
        self,
        execution: Execution | str,
        *,
        expected_states: Iterable[ExecutionStateType] | None = None,
        expected_desired: Iterable[ExecutionDesiredStateType] | None = None,
        update: Callable[[Execution], None],
    ) -> Execution:
        """Apply ``update`` to an execution (by ID, or as read earlier: changed in place, and a conflict if it changed
        since) if the conditions hold, and save it with its revision bumped."""
        if isinstance(execution, str):
            found = self.get_execution(execution)
            if found is None:
                raise NotFound(f"execution not found: {execution}", component="JobStore")
            execution = found
        execution_id = execution.id
        if expected_states is not None and execution.state not in set(expected_states):
            raise StateConflict(
                f"execution {execution_id} is in state {execution.state.label}", code="ConflictExecutionState"
            )
        if expected_desired is not None and execution.desired not in set(expected_desired):
            raise StateConflict(
                f"execution {execution_id} has desired state {execution.desired.label}", code="ConflictExecutionState"
            )
        previous = execution.state
        read_revision = execution.revision
        update(execution)
        if previous.is_terminal and execution.state != previous:
            raise StateConflict(f"execution {execution_id} is already terminal ({previous.label})")
        execution.revision = read_revision + 1
        execution.modify_time = self.now
        cursor = self.conn.execute(
            "UPDATE executions SET compute_state = ?, modify_time = ?, body = ?, revision = ? "
            "WHERE id = ? AND revision = ?",
            (
                int(execution.state),
                execution.modify_time,
                execution.to_json(),
                execution.revision,
                execution_id,
                read_revision,
            ),
        )
        if cursor.rowcount == 0:
            raise StateConflict(
                f"execution {execution_id} changed since revision {read_revision}", code="ConflictExecutionRevision"
            )
        if execution.is_terminal and not previous.is_terminal:
            self.effects.ended_executions.append(execution)
        return execution

    def job_executions(self, job_id: str) -> list[Execution]:
        rows = self.conn.execute(
            "SELECT body FROM executions WHERE job_id = ? ORDER BY create_time, id", (job_id,)
        ).fetchall()
        return [_execution_from_row(r[0]) for r in rows]

    # ---- evaluations
    def insert_evaluation(self, evaluation: Evaluation) -> None:
        evaluation.create_time = evaluation.create_time or self.now
        evaluation.modify_time = self.now
        self.conn.execute(
            "INSERT INTO evaluations (id, job_id, status, body) VALUES (?,?,?,?)",
            (evaluation.id, evaluation.job_id, evaluation.status, evaluation.to_json()),
        )
        self.effects.evaluations.append(evaluation)

    def new_evaluation(self, job: Job, triggered_by: str, *, wait_until: int = 0, comment: str = "") -> Evaluation:
        evaluation = new_evaluation(job, triggered_by, wait_until=wait_until, comment=comment)
        self.insert_evaluation(evaluation)
        return evaluation

    def set_evaluation_status(self, evaluation: Evaluation, status: EvalStatus, comment: str = "") -> None:
        evaluation.status = status.value
        if comment:
            evaluation.comment = comment
        evaluation.modify_time = self.now
        self.conn.execute(
            "UPDATE evaluations SET status = ?, body = ? WHERE id = ?",
            (evaluation.status, evaluation.to_json(), evaluation.id),
        )

    # ---- history
    def add_history(self, job_id: str, version: int, events: Iterable[Event], execution_id: str = "") -> None:
        seq = self._history_seq.get(job_id)
        if seq is None:
            row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM history WHERE job_id = ?", (job_id,)).fetchone()
            seq = int(row[0])
        level = JobHistoryType.EXECUTION_LEVEL if execution_id else JobHistoryType.JOB_LEVEL
        rows = []
        for event in events:
            seq += 1
            item = JobHistory(
                seq_num=seq,
                type=level,
                job_id=job_id,
                job_version=version,
                execution_id=execution_id,
                event=event,
                time=self.now,
            )
            rows.append((job_id, seq, item.to_json()))
        self.conn.executemany("INSERT INTO history (job_id, seq, body) VALUES (?,?,?)", rows)
        self._history_seq[job_id] = seq

    def shared_secret(self, name: str, size: int) -> bytes:
        """A random secret of ``size`` bytes kept in the store's ``meta`` table under ``name``, made by the first
        process to ask: the same for every orchestrator sharing the store."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (f"secret:{name}",)).fetchone()
        if row:
            return bytes.fromhex(str(row[0]))
        secret = secrets.token_bytes(size)
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (f"secret:{name}", secret.hex()))
        return secret

    # ---- nodes and their message streams
    def save_node(self, node: NodeState, *, keep_membership: bool = False) -> None:
        """Write ``node``; with ``keep_membership``, as approved or rejected as the store has it (a save of what the
        node itself said, or of its liveness, must not undo an operator's action committed meanwhile, by another
        orchestrator sharing the store or by this one)."""
        if keep_membership:
            row = self.conn.execute("SELECT body FROM nodes WHERE node_id = ?", (node.info.node_id,)).fetchone()
            if row is not None:
                stored = NodeState.model_validate_json(row[0], context=CANONICAL).membership
                node = node if stored == node.membership else node.model_copy(update={"membership": stored})
        self.conn.execute(
            "INSERT INTO nodes (node_id, body) VALUES (?, ?) ON CONFLICT (node_id) DO UPDATE SET body = excluded.body",
            (node.info.node_id, node.to_json()),
        )
        self.effects.changed_nodes.append(node.info.node_id)

    def delete_node(self, node_id: str) -> None:
        self.conn.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))
        self.effects.changed_nodes.append(node_id)

    def stream(self, node_id: str) -> StreamState:
        row = self.conn.execute(
            "SELECT next_seq, acked_seq, applied_seq, peer_epoch FROM streams WHERE node_id = ?", (node_id,)
        ).fetchone()
        if row is None:
            return StreamState(node_id)
        return StreamState(node_id, *row)

    def save_stream(self, state: StreamState) -> None:
        self.conn.execute(
            "INSERT INTO streams (node_id, next_seq, acked_seq, applied_seq, peer_epoch) VALUES (?,?,?,?,?) "
            "ON CONFLICT (node_id) DO UPDATE SET next_seq = excluded.next_seq, acked_seq = excluded.acked_seq, "
            "applied_seq = excluded.applied_seq, peer_epoch = excluded.peer_epoch",
            (state.node_id, state.next_seq, state.acked_seq, state.applied_seq, state.peer_epoch),
        )

    def enqueue_message(self, node_id: str, message: dict[str, Any]) -> int:
        """Append a message to a node's outbox; it is sent after commit, in order, until acknowledged."""
        seq = int(
            self.conn.execute(
                "INSERT INTO streams (node_id, next_seq) VALUES (?, 2) "
                "ON CONFLICT (node_id) DO UPDATE SET next_seq = streams.next_seq + 1 RETURNING next_seq - 1",
                (node_id,),
            ).fetchone()[0]
        )
        body = envelope.message_text(message)
        self.conn.execute("INSERT INTO outbox (node_id, seq, body) VALUES (?,?,?)", (node_id, seq, body))
        self.effects.outbox.append((node_id, seq, body))
        return seq


class JobStore:
    """Async facade over the store: a SQLite file (``location`` a path), or a PostgreSQL database several orchestrators
    share (``location`` its URL). Reads go to reader threads, writes through :meth:`transact`."""

    def __init__(self, location: Path | str, *, durable: bool = True) -> None:
        if isinstance(location, Path):
            self.db: SqlDatabase[Any] = Database(location, MIGRATIONS, durable=durable, readers=3)
        else:
            from bacalhau.lib.postgres import PostgresDatabase  # psycopg only where PostgreSQL is used

            self.db = PostgresDatabase(location, MIGRATIONS)
        self._listeners: list[Callable[[CommitEffects], None]] = []
        self.epoch = ""
        # Who this process is among those sharing the store, in what it announces of its commits.
        self.origin = uuid.uuid4().hex
        self._announce: Callable[[SqlConnection, str], None] | None = getattr(self.db, "announce", None)

    @property
    def shared(self) -> bool:
        """Whether other orchestrators may share this store (PostgreSQL), and so lead in turns."""
        return self._announce is not None

    async def open(self) -> None:
        await self.db.open()
        self.epoch = await self.db.write(store_epoch)

    def close(self) -> None:
        self.db.close()

    def on_commit(self, listener: Callable[[CommitEffects], None]) -> None:
        self._listeners.append(listener)

    async def transact(self, fn: Callable[[Tx], T], *, background: bool = False) -> T:
        """Run ``fn`` in one transaction; after it commits, tell listeners what it changed. ``background`` is for
        bulk work no client waits on (see :mod:`bacalhau.lib.sqlstore`)."""

        def run(conn: SqlConnection) -> tuple[T, CommitEffects]:
            tx = Tx(conn)
            result = fn(tx)
            if self._announce is not None:
                text = Announcement.of(self.origin, tx.effects).text()
                if text:
                    self._announce(conn, text)
            return result, tx.effects

        result, effects = await self.db.write(run, background=background)
        for span in effects.spans:
            span.end()
        for listener in self._listeners:
            listener(effects)
        return result

    async def read(self, fn: Callable[[SqlConnection], T]) -> T:
        return await self.db.read(fn)

    # ---- queries
    async def get_job(self, job_id: str) -> Job:
        return await self.db.read(lambda conn: Tx(conn).get_job(job_id))

    async def jobs_named(self, namespace: str, name: str, limit: int = 2) -> list[Job]:
        return await self.db.read(lambda conn: Tx(conn).jobs_named(namespace, name, limit))

    async def version_of(self, job: Job, version: int) -> Job | None:
        return await self.db.read(lambda conn: Tx(conn).version_of(job, version))

    async def job_versions(self, job: Job, *, after: int = 0, limit: int = 0) -> list[Job]:
        """``job``'s versions after version ``after``, oldest first, ``limit`` at most (0: all): the kept ones, and the
        job as it is now for its latest."""

        def query(conn: SqlConnection) -> list[Job]:
            rows = conn.execute(
                "SELECT body FROM job_versions WHERE job_id = ? AND version > ? AND version < ? "
                "ORDER BY version LIMIT ?",
                (job.id, after, job.version, limit or NO_LIMIT),
            ).fetchall()
            return [_job_from_row(r[0]) for r in rows]

        kept = await self.db.read(query)
        if job.version > after and (not limit or len(kept) < limit):
            kept.append(job)
        return kept

    async def find_jobs_by_prefix(self, prefix: str, limit: int = 2) -> list[Job]:
        def query(conn: SqlConnection) -> list[Job]:
            rows = conn.execute(
                "SELECT body FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                (prefix, prefix + "\U0010ffff", limit),
            ).fetchall()
            return [_job_from_row(r[0]) for r in rows]

        return await self.db.read(query)

    async def list_jobs(
        self,
        *,
        namespace: str = "",
        order_by: str = "create_time",
        reverse: bool = False,
        offset: int = 0,
        limit: int = 0,
        after: tuple[int, str] | None = None,
        keep: Callable[[Job], bool] | None = None,
        states: Sequence[str] = (),
        job_type: str = "",
        name: str = "",
    ) -> tuple[list[Job], bool]:
        """A page of jobs and whether more follow: those after the ``after`` (sort key, ID) position when given,
        else from ``offset``. ``keep`` filters in order (used for label selectors); ``states``, ``job_type`` and
        ``name`` (part of the name or of the ID, any case) filter in the query."""
        column = "modify_time" if order_by == "modify_time" else "create_time"
        direction = "DESC" if reverse else "ASC"
        conditions: list[str] = []
        args: list[Any] = []
        if namespace:
            conditions.append("namespace = ?")
            args.append(namespace)
        if states:
            conditions.append(f"state IN ({','.join('?' * len(states))})")
            args += list(states)
        if job_type:
            conditions.append("type = ?")
            args.append(job_type)
        if name:
            conditions.append("(lower(name) LIKE ? ESCAPE '!' OR id LIKE ? ESCAPE '!')")
            pattern = f"%{_like_escaped(name.lower())}%"
            args += [pattern, pattern]
        if after is not None:
            conditions.append(f"({column}, id) {'<' if reverse else '>'} (?, ?)")
            args += list(after)
            offset = 0
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = f"SELECT body FROM jobs {where} ORDER BY {column} {direction}, id {direction}"

        def query(conn: SqlConnection) -> tuple[list[Job], bool]:
            if keep is None:
                page_sql = sql + " LIMIT ? OFFSET ?"
                rows = conn.execute(page_sql, [*args, (limit + 1) if limit else NO_LIMIT, offset]).fetchall()
                jobs = [_job_from_row(r[0]) for r in rows]
            else:
                jobs, skipped = [], 0
                for (body,) in conn.execute(sql, args):
                    job = _job_from_row(body)
                    if not keep(job):
                        continue
                    if skipped < offset:
                        skipped += 1
                        continue
                    jobs.append(job)
                    if limit and len(jobs) > limit:
                        break
            more = bool(limit) and len(jobs) > limit
            return (jobs[:limit] if limit else jobs), more

        return await self.db.read(query)

    async def get_executions(self, job_id: str) -> list[Execution]:
        return await self.db.read(lambda conn: Tx(conn).job_executions(job_id))

    async def jobs_with_executions(self, job_ids: list[str]) -> dict[str, tuple[Job, list[Execution]]]:
        """Each job (absent when unknown) with its executions, oldest first, in one read: what a scheduling round
        needs for its evaluations."""

        def query(conn: SqlConnection) -> dict[str, tuple[Job, list[Execution]]]:
            marks = ",".join("?" * len(job_ids))
            found: dict[str, tuple[Job, list[Execution]]] = {}
            for (body,) in conn.execute(f"SELECT body FROM jobs WHERE id IN ({marks})", job_ids):
                job = _job_from_row(body)
                found[job.id] = (job, [])
            rows = conn.execute(
                f"SELECT job_id, body FROM executions WHERE job_id IN ({marks}) ORDER BY create_time, id", job_ids
            )
            for job_id, body in rows:
                if job_id in found:  # executions of a job that is gone are no round's concern
                    found[job_id][1].append(_execution_from_row(body))
            return found

        return await self.db.read(query)

    async def get_execution(self, execution_id: str) -> Execution | None:
        return await self.db.read(lambda conn: Tx(conn).get_execution(execution_id))

    async def live_executions_by_node(self) -> dict[str, list[Execution]]:
        def query(conn: SqlConnection) -> dict[str, list[Execution]]:
            placeholders = ",".join("?" * len(_TERMINAL_STATES))
            rows = conn.execute(
                f"SELECT body FROM executions WHERE compute_state NOT IN ({placeholders})", _TERMINAL_STATES
            ).fetchall()
            result: dict[str, list[Execution]] = {}
            for (body,) in rows:
                execution = _execution_from_row(body)
                result.setdefault(execution.node_id, []).append(execution)
            return result

        return await self.db.read(query)

    async def live_job_ids_on(self, node_id: str) -> list[str]:
        return await self.db.read(lambda conn: Tx(conn).live_job_ids_on(node_id))

    async def history(self, job_id: str, after_seq: int = 0) -> list[JobHistory]:
        def query(conn: SqlConnection) -> list[JobHistory]:
            rows = conn.execute(
                "SELECT body FROM history WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after_seq)
            ).fetchall()
            return [_history_from_row(r[0]) for r in rows]

        return await self.db.read(query)

    async def evaluations(self, evaluation_ids: Sequence[str]) -> list[Evaluation]:
        """The evaluations of these IDs that exist (read in one query)."""
        if not evaluation_ids:
            return []

        def query(conn: SqlConnection) -> list[Evaluation]:
            marks = ",".join("?" * len(evaluation_ids))
            rows = conn.execute(f"SELECT body FROM evaluations WHERE id IN ({marks})", evaluation_ids).fetchall()
            return [Evaluation.model_validate_json(r[0], context=CANONICAL) for r in rows]

        return await self.db.read(query)

    async def node(self, node_id: str) -> NodeState | None:
        def query(conn: SqlConnection) -> NodeState | None:
            row = conn.execute("SELECT body FROM nodes WHERE node_id = ?", (node_id,)).fetchone()
            return NodeState.model_validate_json(row[0], context=CANONICAL) if row else None

        return await self.db.read(query)

    async def open_evaluations(self) -> list[Evaluation]:
        def query(conn: SqlConnection) -> list[Evaluation]:
            rows = conn.execute("SELECT body FROM evaluations WHERE status IN ('pending', 'blocked')").fetchall()
            return [Evaluation.model_validate_json(r[0], context=CANONICAL) for r in rows]

        return await self.db.read(query)

    async def in_progress_job_ids(self, job_type: str = "") -> list[str]:
        def query(conn: SqlConnection) -> list[str]:
            sql = "SELECT id, type FROM jobs WHERE state NOT IN ('Completed', 'Failed', 'Stopped')"
            return [r[0] for r in conn.execute(sql) if not job_type or r[1] == job_type]

        return await self.db.read(query)

    async def nodes(self) -> list[NodeState]:
        def query(conn: SqlConnection) -> list[NodeState]:
            rows = conn.execute("SELECT body FROM nodes ORDER BY node_id").fetchall()
            return [NodeState.model_validate_json(r[0], context=CANONICAL) for r in rows]

        return await self.db.read(query)

    async def stream(self, node_id: str) -> StreamState:
        return await self.db.read(lambda conn: Tx(conn).stream(node_id))

    async def streams(self, limit: int) -> list[StreamState]:
        """The message streams to nodes, ``limit`` at most, in node order."""

        def query(conn: SqlConnection) -> list[StreamState]:
            rows = conn.execute(
                "SELECT node_id, next_seq, acked_seq, applied_seq, peer_epoch FROM streams ORDER BY node_id LIMIT ?",
                (limit,),
            )
            return [StreamState(*row) for row in rows]

        return await self.db.read(query)

    async def outbox(self, node_id: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        sql = "SELECT seq, body FROM outbox WHERE node_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        return await self.db.read(lambda conn: fetch_numbered_texts(conn, sql, (node_id, after_seq, limit), max_bytes))

    async def acknowledge(self, node_id: str, seq: int) -> None:
        """The node applied every message up to ``seq``: remember it and drop them from the outbox."""

        def ack(tx: Tx) -> None:
            stream = tx.stream(node_id)
            if seq <= stream.acked_seq:
                return
            stream.acked_seq = seq
            tx.save_stream(stream)
            tx.conn.execute("DELETE FROM outbox WHERE node_id = ? AND seq <= ?", (node_id, seq))

        await self.transact(ack)
