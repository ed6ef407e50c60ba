"""SQLite behind asyncio: one writer thread with group commit, a small pool of reader threads.

Every write is a function run inside a transaction on the writer thread. Writes that queue up while a commit is in
flight are applied together in the next transaction (each under its own savepoint, so one failing write does not
undo the others) and made durable by a single commit. A write's awaiter resumes only after its commit, so callers
can acknowledge a change knowing it is on disk.

Background writes (bulk work no client waits on, e.g. applying a burst of node reports) go into each commit a few at
a time, after every other waiting write: a job submitted during a burst waits for one commit, not for the burst.

A store's schema is an ordered list of migrations; the file's ``PRAGMA user_version`` says how many it has had. At
open, the writer runs the ones it has not, each in its own transaction with the version bump, so a crash mid-upgrade
leaves the file at the last version it completed. A file whose version is beyond the list was written by a newer
release: it is refused (:class:`~bacalhau.errors.StoreTooNew`) before anything writes to it. Only one process opens a
store (the data dir lock), so nothing else migrates it meanwhile.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from bacalhau.errors import StoreTooNew

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
E = TypeVar("E", bound="DataclassInstance")
log = logging.getLogger(__name__)

_MAX_BATCH = 512
_BACKGROUND_PER_COMMIT = 1
_STOP = object()
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
Migration: TypeAlias = str | Callable[[sqlite3.Connection], None]
"""One step of a store's schema: a SQL script, or a function given the connection inside the step's transaction.
Neither may end that transaction (no BEGIN or COMMIT in a script; no ``executescript`` in a function, as it commits)."""


class Database:
    def __init__(self, path: Path, migrations: Sequence[Migration], *, durable: bool = True, readers: int = 2) -> None:
        self.path = path
        self._migrations = tuple(migrations)
        self._synchronous = "FULL" if durable else "NORMAL"
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix=f"sqlite-read-{path.stem}")
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # Told how long each COMMIT took, in seconds, on the writer thread (the metrics' SQLite commit latency).
        self.observe_commit: Callable[[float], None] | None = None

    def _connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA cache_size = -16000")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_writer(self) -> sqlite3.Connection:
        """The writer's connection, on a file brought up to the latest version (checked before any write)."""
        conn = self._connect()
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(self._migrations):
                raise StoreTooNew(str(self.path), version, len(self._migrations))
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            if 0 < version < len(self._migrations):
                log.info("upgrading %s from schema version %d to %d", self.path, version, len(self._migrations))
            for number in range(version + 1, len(self._migrations) + 1):
                _migrate(conn, number, self._migrations[number - 1])
        except BaseException:
            conn.close()
            raise
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(asyncio.get_running_loop(), ready), name=f"sqlite-write-{self.path.stem}"
        )
        self._writer.daemon = True
        self._writer.start()
        await ready

    def close(self) -> None:
        """Finish queued writes, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_connections:
                conn.close()
            self._reader_connections.clear()

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, background: bool = False) -> T:
        """Run ``fn`` in a write transaction; return its result once the transaction is committed."""
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future, background))
        return await future

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a reader connection (sees every committed write)."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, fn)

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(readonly=True)
            self._local.conn = conn
            with self._lock:
                self._reader_connections.append(conn)
        return fn(conn)

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._open_writer()
        except BaseException as exc:  # report set-up failures to the opener
            failed: list[Outcome] = [(ready, None, exc)]
            loop.call_soon_threadsafe(_settle, failed)
            return
        opened: list[Outcome] = [(ready, None, None)]
        loop.call_soon_threadsafe(_settle, opened)
        try:
            self._serve_writes(conn, loop)
        finally:
            conn.close()

    def _serve_writes(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        held: collections.deque[Any] = collections.deque()  # background writes left for later commits
        stopping = False
        while not stopping or held:
            incoming = [] if stopping else self._take(block=not held)
            if _STOP in incoming:
                stopping = True  # finish what is queued, then stop
                incoming = [item for item in incoming if item is not _STOP]
            held.extend(item for item in incoming if item[2])
            batch = [item for item in incoming if not item[2]]
            share = len(held) if stopping else _BACKGROUND_PER_COMMIT
            batch += [held.popleft() for _ in range(min(share, len(held)))]
            if not batch:
                continue
            outcomes = self._apply(conn, batch)
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, outcomes)

    def _take(self, *, block: bool) -> list[Any]:
        """What is queued (waiting for something to arrive when ``block``)."""
        items = [self._queue.get()] if block else []
        while len(items) < _MAX_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def info(self) -> dict[str, Any]:
        """The file's size on disk (with its write-ahead log) and its schema version, for ``/agent/debug``."""
        size = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        return {"Path": str(self.path), "SizeBytes": size, "SchemaVersion": len(self._migrations)}

    def _apply(self, conn: sqlite3.Connection, batch: list[Any]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        alone = len(batch) == 1  # savepoints keep one write's failure from undoing the others; alone, none needed
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future, _ in batch:
                try:
                    with contextlib.nullcontext() if alone else savepoint(conn, "op"):
                        result = fn(conn)
                except BaseException as exc:
                    outcomes.append((future, None, exc))
                else:
                    outcomes.append((future, result, None))
            if alone and outcomes[0][2] is not None:
                conn.execute("ROLLBACK")
            else:
                started = time.perf_counter()
                conn.execute("COMMIT")
                if self.observe_commit is not None:
                    self.observe_commit(time.perf_counter() - started)
        except sqlite3.Error as exc:
            log.error("sqlite transaction failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(future, None, exc) for _, future, _ in batch]
        return outcomes


def _migrate(conn: sqlite3.Connection, number: int, migration: Migration) -> None:
    """Run migration ``number`` and set the file's version to it, in one transaction: all of it or none."""
    try:
        if isinstance(migration, str):  # executescript commits what is pending first: the transaction is in the script
            conn.executescript(f"BEGIN IMMEDIATE;\n{migration}\n;PRAGMA user_version = {number};\nCOMMIT;")
        else:
            conn.execute("BEGIN IMMEDIATE")
            migration(conn)
            if not conn.in_transaction:
                raise RuntimeError(f"schema migration {number} ended its transaction before the version bump")
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """Undo the block's writes (and only those) if it raises."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


class Transaction(Generic[E]):
    """Base of the stores' transaction objects: the connection, and ``effects``, a dataclass saying what the commit
    will mean to the rest of the process (told to listeners once it is durable). Its fields are lists that are only
    appended to, or plain values, so that a part is undone by cutting each list back to its length before it."""

    def __init__(self, conn: sqlite3.Connection, effects: E) -> None:
        self.conn = conn
        self.effects = effects

    def forget(self) -> None:
        """Drop what the transaction remembers of the rows it wrote (a part that failed has undone some of them)."""

    @contextlib.contextmanager
    def part(self) -> Iterator[None]:
        """A part of the transaction that can fail alone: its writes and its effects are undone if it raises, and
        the rest of the transaction goes on (e.g. one message of a batch applied in one commit)."""
        effects = vars(self.effects)
        marks = {name: len(value) if isinstance(value, list) else value for name, value in effects.items()}
        try:
            with savepoint(self.conn, "part"):
                yield
        except BaseException:
            for name, mark in marks.items():
                if isinstance(effects[name], list):
                    del effects[name][mark:]
                else:
                    effects[name] = mark
            self.forget()
            raise


def store_epoch(conn: sqlite3.Connection) -> str:
    """A random identity kept in the store's ``meta`` table, so peers notice when a store was wiped and replaced."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
    if row:
        return str(row[0])
    epoch = uuid.uuid4().hex
    conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
    return epoch


def fetch_numbered_texts(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...], max_bytes: int
) -> list[tuple[int, str]]:
    """A query's (number, text) rows, up to and including the one whose text brings the total to ``max_bytes``; the
    rows after it are never loaded (an outbox of big messages is not read whole to send a few)."""
    rows: list[tuple[int, str]] = []
    size = 0
    with contextlib.closing(conn.execute(sql, params)) as cursor:
        for number, text in cursor:
            rows.append((int(number), text))
            size += len(text)
            if size >= max_bytes:
                break
    return rows


def _settle(outcomes: list[Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
