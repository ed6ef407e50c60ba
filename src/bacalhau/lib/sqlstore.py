"""A SQL store behind asyncio, whatever the engine: one writer thread with group commit, a pool of readers.

Every write is a function run inside a transaction on the writer thread. Writes that queue up while a commit is in
flight are applied together in the next transaction (each under its own savepoint, so one failing write does not
undo the others) and made durable by a single commit. A write's awaiter resumes only after its commit, so callers
can acknowledge a change knowing it is stored.

Background writes (bulk work no client waits on, e.g. applying a burst of node reports) go into each commit a few at
a time, after every other waiting write: a job submitted during a burst waits for one commit, not for the burst.

The engines (SQLite in :mod:`bacalhau.lib.sqlite`, PostgreSQL in :mod:`bacalhau.lib.postgres`) give their
connections, how a transaction begins and ends, and how the schema is brought up to date. The functions given to
:meth:`SqlDatabase.write` and :meth:`SqlDatabase.read` see a :class:`SqlConnection` and write SQL both engines read
alike: ``?`` for parameters, no engine's own functions.

A store's schema is an ordered list of migrations, the same list for every engine: a step is SQL both run, a
function of the connection, or :class:`Dialects` where the engines need different words for the same step.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
E = TypeVar("E", bound="DataclassInstance")
C = TypeVar("C")
log = logging.getLogger(__name__)

_MAX_BATCH = 512
_BACKGROUND_PER_COMMIT = 1
_STOP = object()
Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class SqlCursor(Protocol):
    """What a query gives back, in both engines."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class SqlConnection(Protocol):
    """A connection as store code uses it: statements with ``?`` parameters."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> SqlCursor: ...

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> SqlCursor: ...


@dataclass(frozen=True)
class Dialects:
    """One schema step said for each engine: ``sqlite`` and ``postgres`` are SQL scripts ("" where the step has
    nothing to do in that engine)."""

    sqlite: str
    postgres: str


Migration: TypeAlias = str | Callable[[SqlConnection], None] | Dialects
"""One step of a store's schema: a SQL script, a function given the connection inside the step's transaction, or
:class:`Dialects`. None may end that transaction (no BEGIN or COMMIT in a script)."""


class Closable(Protocol):
    def close(self) -> None: ...


R = TypeVar("R", bound=Closable)


class ReaderConnections(Generic[R]):
    """Each reader thread's own connection (a thread's new one replaces its old), all of them closed at the end."""

    def __init__(self) -> None:
        self._by_thread: dict[int, R] = {}
        self._lock = threading.Lock()

    @property
    def current(self) -> R | None:
        return self._by_thread.get(threading.get_ident())

    def keep(self, conn: R) -> R:
        with self._lock:
            self._by_thread[threading.get_ident()] = conn
        return conn

    def close_all(self) -> None:
        with self._lock:
            for conn in self._by_thread.values():
                conn.close()
            self._by_thread.clear()


class SqlDatabase(abc.ABC, Generic[C]):
    """The writer thread and reader pool shared by the engines; ``C`` is the engine's own connection type."""

    def __init__(self, name: str, migrations: Sequence[Migration], *, readers: int) -> None:
        self.name = name
        self._migrations = tuple(migrations)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix=f"store-read-{name}")
        self._closed = False
        # Told how long each COMMIT took, in seconds, on the writer thread (the metrics' commit latency).
        self.observe_commit: Callable[[float], None] | None = None

    @property
    def schema_version(self) -> int:
        """The version a store is at once open: one per migration."""
        return len(self._migrations)

    # ---- what an engine provides
    @abc.abstractmethod
    def _open_writer(self) -> C:
        """The writer's connection, on a store brought up to the latest version (checked before any write)."""

    @abc.abstractmethod
    def _sql(self, conn: C) -> SqlConnection:
        """What the functions given to :meth:`write` see of the writer's connection."""

    @abc.abstractmethod
    def _begin(self, conn: C) -> None: ...

    @abc.abstractmethod
    def _commit(self, conn: C) -> None: ...

    @abc.abstractmethod
    def _rollback(self, conn: C) -> None: ...

    @abc.abstractmethod
    def _failed(self, conn: C, exc: BaseException) -> BaseException | None:
        """If ``exc`` (raised by the engine while a transaction was open) failed the whole transaction, the error to
        give every write of the batch; None when it concerns only the write that raised it."""

    @abc.abstractmethod
    def _close_writer(self, conn: C) -> None: ...

    @abc.abstractmethod
    def _run_read(self, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` on a reader connection (on a reader thread)."""

    @abc.abstractmethod
    def _close_readers(self) -> None: ...

    @abc.abstractmethod
    def info(self) -> dict[str, Any]:
        """Where the store is and its schema version, for ``/agent/debug`` (no secret)."""

    # ---- the shared machinery
    async def open(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(asyncio.get_running_loop(), ready), name=f"store-write-{self.name}"
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
        self._close_readers()

    async def write(self, fn: Callable[[SqlConnection], T], *, background: bool = False) -> T:
        """Run ``fn`` in a write transaction; return its result once the transaction is committed."""
        if self._closed:
            raise RuntimeError(f"database {self.name} is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future, background))
        return await future

    async def read(self, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` on a reader connection (sees every committed write)."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, fn)

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
            self._close_writer(conn)

    def _serve_writes(self, conn: C, loop: asyncio.AbstractEventLoop) -> None:
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

    def _apply(self, conn: C, batch: list[Any]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        alone = len(batch) == 1  # savepoints keep one write's failure from undoing the others; alone, none needed
        try:
            self._begin(conn)
            sql = self._sql(conn)  # after begin: an engine may have replaced a connection that broke
            for fn, future, _ in batch:
                try:
                    with contextlib.nullcontext() if alone else savepoint(sql, "op"):
                        result = fn(sql)
                except BaseException as exc:
                    whole = self._failed(conn, exc)
                    if whole is not None:
                        raise whole from exc
                    outcomes.append((future, None, exc))
                else:
                    outcomes.append((future, result, None))
            if alone and outcomes[0][2] is not None:
                self._rollback(conn)
            else:
                started = time.perf_counter()
                self._commit(conn)
                if self.observe_commit is not None:
                    self.observe_commit(time.perf_counter() - started)
        except BaseException as exc:
            whole = self._failed(conn, exc) or exc
            log.error("%s: transaction failed: %s", self.name, whole)
            with contextlib.suppress(BaseException):
                self._rollback(conn)
            return [(future, None, whole) for _, future, _ in batch]
        return outcomes


@contextlib.contextmanager
def savepoint(conn: SqlConnection, name: str) -> Iterator[None]:
    """Undo the block's writes (and only those) if it raises."""
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
        conn.execute(f"RELEASE SAVEPOINT {name}")
        raise
    conn.execute(f"RELEASE SAVEPOINT {name}")


class Transaction(Generic[E]):
    """Base of the stores' transaction objects: the connection, and ``effects``, a dataclass saying what the commit
    will mean to the rest of the process (told to listeners once it is durable). Its fields are lists that are only
    appended to, or plain values, so that a part is undone by cutting each list back to its length before it."""

    def __init__(self, conn: SqlConnection, effects: E) -> None:
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


def store_epoch(conn: SqlConnection) -> str:
    """A random identity kept in the store's ``meta`` table, so peers notice when a store was wiped and replaced."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
    if row:
        return str(row[0])
    epoch = uuid.uuid4().hex
    conn.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
    return epoch


def fetch_numbered_texts(conn: SqlConnection, sql: str, params: Sequence[Any], max_bytes: int) -> list[tuple[int, str]]:
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
