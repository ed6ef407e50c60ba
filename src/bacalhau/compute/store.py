"""The compute node's own store: its executions, its outbox to the orchestrator, and its stream positions.

The compute node alone writes an execution's observed state. Each state change and the report it owes the
orchestrator are written in one transaction, so a crash can delay a report but never lose it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bacalhau.lib import tracing
from bacalhau.lib.sqlite import Database
from bacalhau.lib.sqlstore import Migration, SqlConnection, Transaction, fetch_numbered_texts, store_epoch
from bacalhau.models.base import CANONICAL
from bacalhau.models.execution import Execution
from bacalhau.transport import envelope

T = TypeVar("T")

# The store's schema, one migration per version (see bacalhau.lib.sqlstore): a file at version N runs N+1 onwards when
# opened, a new file runs them all. Never edit a migration once released, since files out there already had it:
# append a new one (a SQL script, or a function of the connection for what SQL alone cannot do). Add what it means
# to the upgrade test (tests/unit/test_store_upgrade.py) and, once released, a fixture made by that release.
MIGRATIONS: list[Migration] = [
    # 1: the schema as released before stores had versions. Its IF NOT EXISTS clauses make it fit the files
    # that release made (version 0, with these tables) as well as new ones.
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        state INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS executions_active ON executions (state) WHERE state NOT IN (4, 8, 9, 10, 11);
    CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS stream (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        applied_seq INTEGER NOT NULL DEFAULT 0,
        orchestrator_epoch TEXT NOT NULL DEFAULT ''
    );
    INSERT OR IGNORE INTO stream (id) VALUES (1);
    """,
    # 2: the host ports each execution holds (compute/ports.py), so that none is given twice, even across a restart.
    """
    CREATE TABLE ports (port INTEGER PRIMARY KEY, execution_id TEXT NOT NULL);
    CREATE INDEX ports_by_execution ON ports (execution_id);
    """,
]


def _execution(body: str) -> Execution:
    return Execution.model_validate_json(body, context=CANONICAL)


@dataclass
class ComputeEffects:
    outbox: list[tuple[int, str]] = field(default_factory=list)  # (number, body) of reports committed
    to_run: list[Execution] = field(default_factory=list)
    to_cancel: list[str] = field(default_factory=list)
    to_admit: list[Execution] = field(default_factory=list)  # bids waiting for admission control's probes
    spans: list[tracing.Span] = field(default_factory=list)  # ended once the transaction commits


class ComputeTx(Transaction[ComputeEffects]):
    def __init__(self, conn: SqlConnection) -> None:
        super().__init__(conn, ComputeEffects())

    def get(self, execution_id: str) -> Execution | None:
        row = self.conn.execute("SELECT body FROM executions WHERE id = ?", (execution_id,)).fetchone()
        return _execution(row[0]) if row else None

    def insert(self, execution: Execution) -> None:
        self.conn.execute(
            "INSERT INTO executions (id, job_id, state, body) VALUES (?,?,?,?)",
            (execution.id, execution.job_id, int(execution.state), execution.to_json()),
        )

    def save(self, execution: Execution) -> None:
        self.conn.execute(
            "UPDATE executions SET state = ?, body = ? WHERE id = ?",
            (int(execution.state), execution.to_json(), execution.id),
        )

    # ---- host ports held by executions (compute/ports.py)
    def held_ports(self, execution_id: str) -> list[int]:
        rows = self.conn.execute("SELECT port FROM ports WHERE execution_id = ? ORDER BY port", (execution_id,))
        return [int(row[0]) for row in rows]

    def all_held_ports(self) -> set[int]:
        return {int(row[0]) for row in self.conn.execute("SELECT port FROM ports")}

    def hold_port(self, port: int, execution_id: str) -> None:
        self.conn.execute("INSERT INTO ports (port, execution_id) VALUES (?, ?)", (port, execution_id))

    def report(self, message: dict[str, Any]) -> None:
        """Queue a message for the orchestrator, delivered in order after commit."""
        body = envelope.message_text(message)
        seq = int(self.conn.execute("INSERT INTO outbox (body) VALUES (?) RETURNING seq", (body,)).fetchone()[0])
        self.effects.outbox.append((seq, body))

    def run_after_commit(self, execution: Execution) -> None:
        self.effects.to_run.append(execution)

    def admit_after_commit(self, execution: Execution) -> None:
        """Ask admission control about the execution once its request is durable (its bid waits for the answer)."""
        self.effects.to_admit.append(execution)

    def cancel_after_commit(self, execution_id: str) -> None:
        """Stop the execution's run, if one is in progress, once its cancellation is durable."""
        self.effects.to_cancel.append(execution_id)


class ExecutionStore:
    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.db = Database(path, MIGRATIONS, durable=durable, readers=2)
        self.epoch = ""
        self._listeners: list[Callable[[ComputeEffects], None]] = []

    async def open(self) -> None:
        await self.db.open()
        self.epoch = await self.db.write(store_epoch)

    def close(self) -> None:
        self.db.close()

    def on_commit(self, listener: Callable[[ComputeEffects], None]) -> None:
        self._listeners.append(listener)

    async def transact(self, fn: Callable[[ComputeTx], T]) -> T:
        def run(conn: SqlConnection) -> tuple[T, ComputeEffects]:
            tx = ComputeTx(conn)
            return fn(tx), tx.effects

        result, effects = await self.db.write(run)
        for span in effects.spans:
            span.end()
        for listener in self._listeners:
            listener(effects)
        return result

    async def get(self, execution_id: str) -> Execution | None:
        return await self.db.read(lambda conn: ComputeTx(conn).get(execution_id))

    async def active(self) -> list[Execution]:
        def query(conn: SqlConnection) -> list[Execution]:
            rows = conn.execute("SELECT body FROM executions WHERE state NOT IN (4, 8, 9, 10, 11)").fetchall()
            return [_execution(r[0]) for r in rows]

        return await self.db.read(query)

    async def release_ports(self, execution_id: str = "") -> None:
        """Free the ports of one execution, or (no ID) of every execution that is not active: after a restart."""
        sql = "DELETE FROM ports WHERE execution_id = ?"
        args: tuple[str, ...] = (execution_id,)
        if not execution_id:
            active = "SELECT id FROM executions WHERE state NOT IN (4, 8, 9, 10, 11)"
            sql = f"DELETE FROM ports WHERE execution_id NOT IN ({active})"
            args = ()
        await self.db.write(lambda conn: conn.execute(sql, args))

    # ---- the stream to the orchestrator (peer is always the orchestrator)
    async def outbox(self, peer: str, after_seq: int, limit: int, max_bytes: int) -> list[tuple[int, str]]:
        sql = "SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"
        return await self.db.read(lambda conn: fetch_numbered_texts(conn, sql, (after_seq, limit), max_bytes))

    async def acknowledge(self, peer: str, seq: int) -> None:
        await self.db.write(lambda conn: conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,)))

    # ---- the stream from the orchestrator
    async def applied(self) -> tuple[int, str]:
        def query(conn: SqlConnection) -> tuple[int, str]:
            row = conn.execute("SELECT applied_seq, orchestrator_epoch FROM stream WHERE id = 1").fetchone()
            return int(row[0]), str(row[1])

        return await self.db.read(query)

    @staticmethod
    def record_applied(tx: ComputeTx, seq: int) -> None:
        tx.conn.execute("UPDATE stream SET applied_seq = max(applied_seq, ?) WHERE id = 1", (seq,))

    async def set_orchestrator_epoch(self, epoch: str) -> None:
        """A different orchestrator store: its message numbers start again."""
        await self.db.write(
            lambda conn: conn.execute(
                "UPDATE stream SET applied_seq = 0, orchestrator_epoch = ? WHERE id = 1 AND orchestrator_epoch != ?",
                (epoch, epoch),
            )
        )
