"""Leading in turns over a shared PostgreSQL store: one leader at a time, a new term at each change, the next one
within moments of the last letting go, and a deposed leader's writes refused (fencing)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from bacalhau.errors import NotLeader
from bacalhau.lib.postgres import LeaderLock, PostgresDatabase
from bacalhau.lib.tasks import cancel, spawn
from bacalhau.orchestrator.leadership import SharedLeadership
from bacalhau.orchestrator.store import JobStore
from tests.postgres import PostgresServer
from tests.unit.conftest import opened

DEADLINE = 10.0


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.02)


class Contender:
    """One orchestrator's leadership, with a record of its terms."""

    def __init__(self, store: JobStore, name: str) -> None:
        assert isinstance(store.db, PostgresDatabase)
        self.store = store
        self.leadership = SharedLeadership(store.db, name)
        self.led = 0
        self.followed = 0
        self.task: asyncio.Task[None] | None = None

    async def lead(self) -> None:
        self.led += 1

    async def follow(self) -> None:
        self.followed += 1

    def start(self) -> None:
        self.task = spawn(self.leadership.run(self.lead, self.follow), "leadership")

    async def stop(self) -> None:
        await cancel(self.task)


@contextlib.asynccontextmanager
async def contenders(url: str, count: int) -> AsyncIterator[list[Contender]]:
    async with contextlib.AsyncExitStack() as stack:
        stores = [await stack.enter_async_context(opened(JobStore(url))) for _ in range(count)]
        everyone = [Contender(store, f"n-{i}") for i, store in enumerate(stores)]
        for contender in everyone:
            contender.start()
        try:
            yield everyone
        finally:
            for contender in everyone:
                await contender.stop()


def leaders(everyone: list[Contender]) -> list[Contender]:
    return [contender for contender in everyone if contender.leadership.leading]


async def test_one_leads_and_the_next_takes_over_when_it_lets_go(postgres_url: str) -> None:
    async with contenders(postgres_url, 3) as everyone:
        await eventually(lambda: len(leaders(everyone)) == 1, "one leader")
        await asyncio.sleep(0.3)  # several campaign rounds of the others: still one
        (first,) = leaders(everyone)
        assert first.led == 1 and (await first.leadership.state()).term == 1
        follower_view = await next(c for c in everyone if c is not first).leadership.state()
        assert (follower_view.leading, follower_view.leader_id, follower_view.term) == (
            False,
            "n-" + str(everyone.index(first)),
            1,
        )

        await first.stop()
        assert first.followed == 1  # told to stop its duties
        await eventually(lambda: len(leaders(everyone)) == 1, "a new leader")
        (second,) = leaders(everyone)
        assert second is not first and (await second.leadership.state()).term == 2


async def test_a_leader_whose_session_ends_stops_leading_and_another_takes_over(postgres_url: str) -> None:
    async with contenders(postgres_url, 2) as everyone:
        await eventually(lambda: len(leaders(everyone)) == 1, "one leader")
        (first,) = leaders(everyone)
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # the session as a partition would end it
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid <> pg_backend_pid()"
            )
        await eventually(lambda: first.followed == 1, "the old leader follows")
        await eventually(lambda: len(leaders(everyone)) == 1, "a leader again")
        assert max(c.led for c in everyone) >= 1 and sum(c.led for c in everyone) == 2


async def test_a_deposed_leaders_writes_are_refused(postgres_url: str) -> None:
    async with opened(JobStore(postgres_url)) as old, opened(JobStore(postgres_url)) as new:
        assert isinstance(old.db, PostgresDatabase) and isinstance(new.db, PostgresDatabase)
        old_lock, new_lock = LeaderLock(old.db, "n-old"), LeaderLock(new.db, "n-new")
        term = await old_lock.try_acquire()
        assert term == 1 and await new_lock.try_acquire() is None
        old.db.guard = old_lock.fence(term)
        await old.transact(lambda tx: tx.enqueue_message("n-1", {"Metadata": {}}))  # it leads: its writes commit

        await old_lock.release()  # its session is gone, and it has not noticed yet
        assert await new_lock.try_acquire() == 2
        with pytest.raises(NotLeader):
            await old.transact(lambda tx: tx.enqueue_message("n-1", {"Metadata": {}}))
        await new.transact(lambda tx: tx.enqueue_message("n-1", {"Metadata": {}}))
        assert [seq for seq, _ in await new.outbox("n-1", 0, 10, 1 << 20)] == [1, 2]
        await new_lock.release()


async def test_leadership_survives_a_database_restart() -> None:
    server = PostgresServer().start()
    try:
        async with contenders(server.create_database("restart"), 2) as everyone:
            await eventually(lambda: len(leaders(everyone)) == 1, "one leader")
            (first,) = leaders(everyone)
            await asyncio.to_thread(server.stop)
            await eventually(lambda: not leaders(everyone), "nobody leads while the database is down")
            assert first.followed == 1
            await asyncio.to_thread(server.start)
            await eventually(lambda: len(leaders(everyone)) == 1, "a leader once it is back")
            (now,) = leaders(everyone)
            assert (await now.leadership.state()).term == 2
    finally:
        server.close()


async def test_an_orchestrator_is_present_while_its_session_lives(postgres_url: str) -> None:
    async with opened(JobStore(postgres_url)) as first, opened(JobStore(postgres_url)) as second:
        assert isinstance(first.db, PostgresDatabase) and isinstance(second.db, PostgresDatabase)
        locks = [LeaderLock(first.db, "n-a"), LeaderLock(second.db, "n-b")]
        for lock in locks:
            await lock.try_acquire()  # each campaigns, and so holds a session
        everyone = ["n-a", "n-b", "n-gone"]
        assert await asyncio.to_thread(first.db.present, everyone) == {"n-a", "n-b"}
        await locks[0].release()
        assert await asyncio.to_thread(second.db.present, everyone) == {"n-b"}
        assert await asyncio.to_thread(second.db.present, everyone) == {"n-b"}  # asking takes nothing away
        await locks[1].release()
