"""The PostgreSQL engine of :mod:`bacalhau.lib.sqlstore`, for a store several orchestrators share.

Writes keep SQLite's model: every write transaction first takes one transaction-level advisory lock, so the writes of
every process sharing the store run one at a time, in commit order, as a single SQLite writer's do. That keeps the
store's read-then-write code (revision checks, message numbers, history numbers) correct without retry loops, and
group commit keeps the cost of the lock to one round trip per batch. Reads never wait for the lock: each reader thread
keeps a connection of its own (the pool is the reader threads, as in the SQLite engine), opened again when it broke,
so that a read fails at once, not after a pool's wait, while the database is down.

The schema's version is kept in ``bacalhau_schema``; each step runs in its own transaction under another advisory
lock, so orchestrators starting together upgrade the store once. Advisory locks are keyed by the schema (PostgreSQL's
``search_path``) the store lives in, so stores in different schemas of one database stay independent.

A store that cannot be reached is :class:`~bacalhau.errors.Unavailable` (the API's 503), after bounded waits:
connections time out, TCP keepalives notice a peer that vanished, and the writer reconnects at its next batch.
Text that PostgreSQL cannot hold (a NUL character) is an :class:`~bacalhau.errors.InvalidRequest`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bacalhau.errors import InvalidRequest, NotLeader, StoreTooNew, Unavailable
from bacalhau.lib.sqlstore import Dialects, Migration, ReaderConnections, SqlConnection, SqlCursor, SqlDatabase

T = TypeVar("T")
log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5  # seconds to open a connection (libpq's connect_timeout)
TCP_USER_TIMEOUT_MS = 10_000  # unacknowledged data on a connection for this long: the peer is gone
_CONNECTION_OPTIONS: dict[str, Any] = {
    "autocommit": True,  # transactions are begun and ended explicitly, as in the SQLite engine
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
    "application_name": "bacalhau",
}

# The first key of every advisory lock this store takes (the second is its schema's); "BACA" in ASCII.
LOCK_SPACE = 0x42414341
WRITE_LOCK = 1  # offsets within the space: one write transaction at a time
MIGRATION_LOCK = 2  # one schema upgrade at a time
LEADER_LOCK = 3  # one leading orchestrator at a time (bacalhau.orchestrator.leadership)
PRESENCE_LOCK = 4  # each orchestrator's own, held while it runs (keyed by its node ID too)

_SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS bacalhau_schema (version INTEGER NOT NULL)"


def describe(url: str) -> str:
    """Where ``url`` points, without its password: for logs, errors and ``/agent/debug``."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def check_url(url: str) -> None:
    """Refuse a URL libpq cannot parse (a configuration error, told before anything connects)."""
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # its message may quote the URL, password and all
        raise ValueError(
            "Orchestrator.JobStore.URL is not a PostgreSQL connection URL (expected "
            "postgresql://user:password@host:5432/dbname)"
        ) from None


@functools.lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    """Our SQL's ``?`` parameters in psycopg's ``%s`` style (a literal ``%`` doubled). Store SQL never has a ``?`` or
    ``%`` inside a quoted literal: values are always parameters."""
    return sql.replace("%", "%%").replace("?", "%s")


def _signed32(value: int) -> int:
    """An unsigned 32-bit number as PostgreSQL's int4 (an advisory lock key) takes it."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _check_text(parameters: Sequence[Any]) -> None:
    for value in parameters:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidRequest("text must not contain NUL characters", component="JobStore")


_SAVEPOINT, _RELEASE = "SAVEPOINT ", "RELEASE SAVEPOINT "


class _NoRows:
    """What a deferred command gives back: it has no rows (and its outcome is known when it is sent)."""

    rowcount = -1

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def close(self) -> None:
        pass


class _Sql:
    """A psycopg connection as store code uses it (see :class:`~bacalhau.lib.sqlstore.SqlConnection`).

    Savepoints cost a round trip each to set and to release, and a write transaction sets many (one per write of a
    batch, one per message of a stream's batch): they are deferred, and sent in one pipeline with the next statement
    (:meth:`psycopg.Connection.pipeline`: one round trip for all). A savepoint released before anything ran under it is
    never sent. A commit or rollback ends them all, sent or not."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._deferred: list[str] = []

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> SqlCursor:
        if sql.startswith((_SAVEPOINT, _RELEASE)):
            self._defer(sql)
            return _NoRows()
        _check_text(parameters)
        if not self._deferred:
            return self._conn.execute(_translate(sql), parameters)
        with self._conn.pipeline():  # errors are raised as it ends: this statement's, or a deferred one's
            self._send_deferred()
            cursor = self._conn.execute(_translate(sql), parameters)
        return cursor

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> SqlCursor:
        for row in parameters:
            _check_text(row)
        cursor = self._conn.cursor()
        with self._conn.pipeline():
            self._send_deferred()
            cursor.executemany(_translate(sql), parameters)
        return cursor

    def _defer(self, sql: str) -> None:
        if sql.startswith(_RELEASE) and self._deferred and self._deferred[-1] == _SAVEPOINT + sql[len(_RELEASE) :]:
            self._deferred.pop()  # set and released with nothing in between: as if never set
            return
        self._deferred.append(sql)

    def _send_deferred(self) -> None:
        for command in self._deferred:
            self._conn.execute(command.encode())
        self._deferred.clear()


@dataclass
class _Writer:
    """The writer's connection, replaced after it broke (at the next batch)."""

    conn: psycopg.Connection[Any]


class PostgresDatabase(SqlDatabase[_Writer]):
    def __init__(self, url: str, migrations: Sequence[Migration], *, readers: int = 4, name: str = "jobs") -> None:
        super().__init__(name, migrations, readers=readers)
        self.url = url
        self.where = describe(url)
        self._schema_key = 0  # the second key of this store's advisory locks, learnt at open
        self._reader_connections: ReaderConnections[psycopg.Connection[Any]] = ReaderConnections()
        # Run at the start of each write transaction, after the write lock (a leader's fencing check).
        self.guard: Callable[[SqlConnection], None] | None = None

    # ---- connections
    def connect(self) -> psycopg.Connection[Any]:
        """A new connection of this store's (for the callers that need a session of their own: leadership)."""
        try:
            return psycopg.connect(self.url, **_CONNECTION_OPTIONS)
        except psycopg.OperationalError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: BaseException) -> Unavailable:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Unavailable(
            f"the job store at {self.where} cannot be reached: {message}",
            code="DatastoreFailure",
            component="JobStore",
            hint="check that PostgreSQL is running and reachable (Orchestrator.JobStore.URL)",
        )

    @property
    def channel(self) -> str:
        """The name processes sharing this store announce their commits on (``NOTIFY``): one per schema."""
        return f"bacalhau_{self._schema_key & 0xFFFFFFFF:08x}"

    def announce(self, sql: SqlConnection, text: str) -> None:
        """Tell the other processes, once the transaction commits (and only if it does)."""
        sql.execute("SELECT pg_notify(?, ?)", (self.channel, text))

    def presence_keys(self, node_id: str) -> tuple[int, int]:
        """The lock an orchestrator holds while it runs: its schema's and its node ID's."""
        return LOCK_SPACE + PRESENCE_LOCK, _signed32(zlib.crc32(f"{self._schema_key}\x00{node_id}".encode()))

    def present(self, node_ids: list[str]) -> set[str]:
        """Which of these orchestrators hold their presence lock (run, with a session to the store): a lock this
        process can take is nobody's, and is let go at once."""

        def check(sql: SqlConnection) -> set[str]:
            alive = set()
            for node_id in node_ids:
                keys = self.presence_keys(node_id)
                if sql.execute("SELECT pg_try_advisory_lock(?, ?)", keys).fetchone()[0]:
                    sql.execute("SELECT pg_advisory_unlock(?, ?)", keys)
                else:
                    alive.add(node_id)
            return alive

        return self._run_read(check)

    def lock_keys(self, offset: int) -> tuple[int, int]:
        """The two keys of this store's advisory lock ``offset`` (WRITE_LOCK, MIGRATION_LOCK, LEADER_LOCK)."""
        return LOCK_SPACE + offset, self._schema_key

    # ---- the engine's part of SqlDatabase
    def _open_writer(self) -> _Writer:
        conn = self.connect()
        try:
            schema = str(conn.execute("SELECT current_schema()").fetchone()[0])  # type: ignore[index]
            self._schema_key = _signed32(zlib.crc32(schema.encode()))
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return _Writer(conn)

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Bring the schema to the latest version, a step per transaction, under the migration lock."""
        number = 0
        while True:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", self.lock_keys(MIGRATION_LOCK))
                conn.execute(_SCHEMA_TABLE)
                row = conn.execute("SELECT version FROM bacalhau_schema").fetchone()
                if row is None:
                    conn.execute("INSERT INTO bacalhau_schema (version) VALUES (0)")
                version = int(row[0]) if row else 0
                if version > self.schema_version:
                    raise StoreTooNew(self.where, version, self.schema_version)
                if version == self.schema_version:
                    return
                if number == 0 and version:
                    log.info("upgrading %s from schema version %d to %d", self.where, version, self.schema_version)
                number = version + 1
                migration = self._migrations[number - 1]
                if isinstance(migration, Dialects):
                    migration = migration.postgres
                if isinstance(migration, str):
                    if migration.strip():
                        conn.execute(migration.encode())  # a script of several statements, sent as it is
                else:
                    migration(_Sql(conn))
                conn.execute("UPDATE bacalhau_schema SET version = %s", (number,))

    def _sql(self, conn: _Writer) -> SqlConnection:
        return _Sql(conn.conn)

    def _begin(self, conn: _Writer) -> None:
        if conn.conn.closed:
            conn.conn = self.connect()
        conn.conn.execute("BEGIN")
        conn.conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", self.lock_keys(WRITE_LOCK))
        if self.guard is not None:
            self.guard(_Sql(conn.conn))

    def _commit(self, conn: _Writer) -> None:
        conn.conn.execute("COMMIT")

    def _rollback(self, conn: _Writer) -> None:
        if not conn.conn.closed:
            conn.conn.execute("ROLLBACK")

    def _failed(self, conn: _Writer, exc: BaseException) -> BaseException | None:
        if isinstance(exc, Unavailable):
            return exc
        if isinstance(exc, psycopg.OperationalError) or conn.conn.closed or conn.conn.broken:
            if not conn.conn.closed:
                conn.conn.close()  # a new one at the next batch
            return self.unreachable(exc)
        return None

    def _close_writer(self, conn: _Writer) -> None:
        conn.conn.close()

    def _run_read(self, fn: Callable[[SqlConnection], T]) -> T:
        conn = self._reader_connections.current
        if conn is not None and not conn.closed:
            try:
                return fn(_Sql(conn))
            except psycopg.OperationalError:
                conn.close()  # it broke while idle (a restarted server, say): once more, on a new one
        conn = self._reader_connections.keep(self.connect())
        try:
            return fn(_Sql(conn))
        except psycopg.OperationalError as exc:
            conn.close()
            raise self.unreachable(exc) from None

    def _close_readers(self) -> None:
        self._reader_connections.close_all()

    def info(self) -> dict[str, Any]:
        """Where the store is (no password), its size and its schema version, for ``/agent/debug``."""
        try:
            size = self._run_read(
                lambda sql: int(sql.execute("SELECT pg_database_size(current_database())").fetchone()[0])
            )
        except Unavailable:
            size = -1
        return {"Type": "postgres", "URL": self.where, "SizeBytes": size, "SchemaVersion": self.schema_version}


_TERM_UPSERT = (
    "INSERT INTO leadership (id, term, holder, since) VALUES (1, 1, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET term = leadership.term + 1, holder = excluded.holder, since = excluded.since "
    "RETURNING term"
)
# The server drops a session whose client stopped answering after about this long (its own keepalives), which frees
# the leader lock of an orchestrator cut off from the database for the others.
_SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3; "
    f"SET tcp_user_timeout = {TCP_USER_TIMEOUT_MS}"
)


async def _connect_async(db: PostgresDatabase) -> psycopg.AsyncConnection[Any]:
    try:
        conn = await psycopg.AsyncConnection.connect(db.url, **_CONNECTION_OPTIONS)
        await conn.execute(_SERVER_KEEPALIVES.encode())
    except psycopg.OperationalError as exc:
        raise db.unreachable(exc) from None
    return conn


class LeaderLock:
    """The leader's advisory lock, held by a session of its own for as long as that session lives, and the fencing
    term that comes with each taking of it (``leadership.term``, one more at each new leader).

    A leader's writes check the term (:meth:`fence`) inside the write lock, so that once another process has taken
    the lock and a new term, nothing the old leader still tries can commit."""

    def __init__(self, db: PostgresDatabase, holder: str) -> None:
        self._db = db
        self._holder = holder
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def try_acquire(self) -> int | None:
        """The new term if this process now leads; None if another does. Unavailable if the database is."""
        if self._conn is None or self._conn.closed:
            self._conn = await self._session()
        conn = self._conn
        try:
            row = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._db.lock_keys(LEADER_LOCK))
            ).fetchone()
            if not row or not row[0]:
                return None
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", self._db.lock_keys(WRITE_LOCK))
                term = await (await conn.execute(_TERM_UPSERT, (self._holder, time.time_ns()))).fetchone()
            return int(term[0]) if term else None
        except psycopg.OperationalError as exc:
            await self.release()
            raise self._db.unreachable(exc) from None

    async def _session(self) -> psycopg.AsyncConnection[Any]:
        """A session of this orchestrator's, holding its presence lock for as long as it lives."""
        conn = await _connect_async(self._db)
        try:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", self._db.presence_keys(self._holder))
            row = await cursor.fetchone()
        except psycopg.OperationalError as exc:
            await conn.close()
            raise self._db.unreachable(exc) from None
        if not row or not row[0]:
            log.warning("another running orchestrator is named %s: give each orchestrator its own name", self._holder)
        return conn

    async def holding(self, timeout: float) -> bool:
        """Whether the session that holds the lock is still alive (answering within ``timeout`` seconds)."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            await asyncio.wait_for(conn.execute("SELECT 1"), timeout)
        except (psycopg.OperationalError, TimeoutError):
            await self.release()
            return False
        return True

    async def release(self) -> None:
        """Let the lock go (with the session that holds it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    def fence(self, term: int) -> Callable[[SqlConnection], None]:
        """A write guard (:attr:`PostgresDatabase.guard`): refuses a transaction unless ``term`` is the latest."""

        def check(sql: SqlConnection) -> None:
            row = sql.execute("SELECT term FROM leadership WHERE id = 1").fetchone()
            if row is None or int(row[0]) != term:
                raise NotLeader(f"this orchestrator no longer leads (its term {term} has ended)")

        return check


def current_leader(sql: SqlConnection) -> tuple[int, str, int] | None:
    """The latest term, its leader's node ID and when it began (Unix nanoseconds); None before the first leader."""
    row = sql.execute("SELECT term, holder, since FROM leadership WHERE id = 1").fetchone()
    return (int(row[0]), str(row[1]), int(row[2])) if row else None


class ChangeFeed:
    """What other processes committed to the store, as they announce it (``NOTIFY`` on the store's channel): calls
    ``on_change`` with each announcement's text, and with None whenever some may have been missed (at start and after
    the listening session was lost), which means "read what you need again"."""

    def __init__(self, db: PostgresDatabase, on_change: Callable[[str | None], None], retry: float = 1.0) -> None:
        self._db = db
        self._on_change = on_change
        self._retry = retry

    async def run(self) -> None:
        while True:
            try:
                conn = await _connect_async(self._db)
                try:
                    await conn.execute(f"LISTEN {self._db.channel}".encode())
                    self._on_change(None)
                    async for notice in conn.notifies():
                        self._on_change(notice.payload)
                finally:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
            except (Unavailable, psycopg.OperationalError) as exc:
                log.debug("change feed of %s lost: %s", self._db.where, exc)
            await asyncio.sleep(self._retry)
