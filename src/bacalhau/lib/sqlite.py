"""The SQLite engine of :mod:`bacalhau.lib.sqlstore`: a file in WAL mode, one writer connection, reader connections.

The file's ``PRAGMA user_version`` says how many migrations it has had. At open, the writer runs the ones it has not,
each in its own transaction with the version bump, so a crash mid-upgrade leaves the file at the last version it
completed. A file whose version is beyond the list was written by a newer release: it is refused
(:class:`~bacalhau.errors.StoreTooNew`) before anything writes to it. Only one process opens a store (the data dir
lock), so nothing else migrates it meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from bacalhau.errors import StoreTooNew
from bacalhau.lib.sqlstore import Dialects, Migration, ReaderConnections, SqlConnection, SqlDatabase

T = TypeVar("T")
log = logging.getLogger(__name__)


class Database(SqlDatabase[sqlite3.Connection]):
    def __init__(self, path: Path, migrations: Sequence[Migration], *, durable: bool = True, readers: int = 2) -> None:
        super().__init__(path.stem, migrations, readers=readers)
        self.path = path
        self._synchronous = "FULL" if durable else "NORMAL"
        self._reader_connections: ReaderConnections[sqlite3.Connection] = ReaderConnections()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await super().open()

    def _connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA cache_size = -16000")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > self.schema_version:
                raise StoreTooNew(str(self.path), version, self.schema_version)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if 0 < version < self.schema_version:
                log.info("upgrading %s from schema version %d to %d", self.path, version, self.schema_version)
            for number in range(version + 1, self.schema_version + 1):
                _migrate(conn, number, self._migrations[number - 1])
        except BaseException:
            conn.close()
            raise
        return conn

    def _sql(self, conn: sqlite3.Connection) -> SqlConnection:
        return cast(SqlConnection, conn)

    def _begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def _commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def _rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def _failed(self, conn: sqlite3.Connection, exc: BaseException) -> BaseException | None:
        # A write's own error leaves the transaction open (its savepoint undone); one that ended it fails them all.
        return exc if isinstance(exc, sqlite3.Error) and not conn.in_transaction else None

    def _close_writer(self, conn: sqlite3.Connection) -> None:
        conn.close()

    def _run_read(self, fn: Callable[[SqlConnection], T]) -> T:
        conn = self._reader_connections.current or self._reader_connections.keep(self._connect(readonly=True))
        return fn(cast(SqlConnection, conn))

    def _close_readers(self) -> None:
        self._reader_connections.close_all()

    def info(self) -> dict[str, Any]:
        """The file's size on disk (with its write-ahead log) and its schema version, for ``/agent/debug``."""
        size = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        return {"Type": "sqlite", "Path": str(self.path), "SizeBytes": size, "SchemaVersion": self.schema_version}


def _migrate(conn: sqlite3.Connection, number: int, migration: Migration) -> None:
    """Run migration ``number`` and set the file's version to it, in one transaction: all of it or none."""
    if isinstance(migration, Dialects):
        migration = migration.sqlite
    try:
        if isinstance(migration, str):  # executescript commits what is pending first: the transaction is in the script
            conn.executescript(f"BEGIN IMMEDIATE;\n{migration}\n;PRAGMA user_version = {number};\nCOMMIT;")
        else:
            conn.execute("BEGIN IMMEDIATE")
            migration(cast(SqlConnection, conn))
            if not conn.in_transaction:
                raise RuntimeError(f"schema migration {number} ended its transaction before the version bump")
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
