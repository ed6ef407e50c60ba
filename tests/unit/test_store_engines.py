"""What the PostgreSQL store adds to the SQLite one: several processes share it (their writes run one at a time, their
upgrades once), it can go away and come back, and text it cannot hold is refused as a bad request.

Each test opens stores of its own on one fresh database; "another orchestrator" is a second JobStore on it, with its
own connections, as a second process would have."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bacalhau.config import load_config
from bacalhau.errors import ConfigurationError, InvalidRequest, StateConflict, StoreTooNew, Unavailable
from bacalhau.lib.postgres import describe
from bacalhau.models.job import Job
from bacalhau.node import store_url
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.store import MAX_ANNOUNCEMENT, MIGRATIONS, Announcement, CommitEffects, JobStore, Tx
from tests.postgres import PostgresServer
from tests.unit.conftest import opened


def spec(**fields: Any) -> Job:
    return Job.model_validate({"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "wasm"}}], **fields})


@pytest.fixture
async def two_stores(postgres_url: str) -> AsyncIterator[tuple[JobStore, JobStore]]:
    async with opened(JobStore(postgres_url)) as first, opened(JobStore(postgres_url)) as second:
        yield first, second


async def test_stores_opened_together_upgrade_the_database_once(postgres_url: str) -> None:
    stores = [JobStore(postgres_url) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert len({store.epoch for store in stores}) == 1  # one store, whichever process made it
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT version FROM bacalhau_schema").fetchall() == [(len(MIGRATIONS),)]
    finally:
        for store in stores:
            store.close()


async def test_a_database_from_a_newer_release_is_refused_untouched(postgres_url: str) -> None:
    async with opened(JobStore(postgres_url)):
        pass
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE bacalhau_schema SET version = %s", (len(MIGRATIONS) + 1,))
    store = JobStore(postgres_url)
    with pytest.raises(StoreTooNew):
        await store.open()
    store.close()


async def test_message_numbers_stay_unique_and_in_order_across_processes(two_stores: tuple[JobStore, JobStore]) -> None:
    first, second = two_stores
    message = {"Metadata": {}, "Payload": {}}
    numbers = await asyncio.gather(
        *(store.transact(lambda tx: tx.enqueue_message("n-1", message)) for store in (first, second) * 25)
    )
    assert sorted(numbers) == list(range(1, 51))
    assert [seq for seq, _ in await first.outbox("n-1", 0, 100, 1 << 20)] == list(range(1, 51))


async def test_a_job_read_by_two_processes_is_written_by_one_of_them(two_stores: tuple[JobStore, JobStore]) -> None:
    first, second = two_stores
    job_id = (await JobService(first, "n-o1", {"batch": TaskDefaults()}).submit(spec(Name="shared"))).job_id
    copies = [await first.get_job(job_id), await second.get_job(job_id)]
    outcomes = await asyncio.gather(
        first.transact(lambda tx: tx.save_job(copies[0])),
        second.transact(lambda tx: tx.save_job(copies[1])),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NoneType", StateConflict.__name__]
    # and a job submitted through one is found by name through the other
    assert [job.id for job in await second.jobs_named("default", "shared")] == [job_id]


async def test_text_postgresql_cannot_hold_is_a_bad_request(postgres_url: str) -> None:
    async with opened(JobStore(postgres_url)) as store:
        with pytest.raises(InvalidRequest, match="NUL"):
            await store.find_jobs_by_prefix("j-\x00")
        with pytest.raises(InvalidRequest, match="NUL"):
            await store.transact(lambda tx: tx.enqueue_message("n-\x00", {"Metadata": {}}))
        assert await store.find_jobs_by_prefix("j-") == []  # and the store carries on


async def test_names_are_matched_as_text_not_as_patterns(store: JobStore) -> None:
    service = JobService(store, "n-o", {"batch": TaskDefaults()})
    plain = (await service.submit(spec(Name="abc"))).job_id
    odd = (await service.submit(spec(Name="a_b!c%d"))).job_id

    async def listed(name: str) -> list[str]:
        return [job.id for job in (await service.list_jobs(namespace="*", name=name))[0]]

    assert await listed("_") == [odd]
    assert await listed("!") == [odd]
    assert await listed("b!c%") == [odd]
    assert await listed("a") == [plain, odd]


async def test_an_unreachable_store_is_unavailable_then_recovers() -> None:
    """Its own server, stopped and started again: every call while it is down fails fast with the original's
    DatastoreFailure (a 503 at the API), and the same store object works again once it is back."""
    server = PostgresServer().start()
    try:
        async with opened(JobStore(server.create_database("gone"))) as store:
            service = JobService(store, "n-o", {"batch": TaskDefaults()})
            job_id = (await service.submit(spec())).job_id
            await asyncio.to_thread(server.stop)
            for attempt in (service.submit(spec()), store.get_job(job_id), store.list_jobs(limit=1)):
                started = time.monotonic()
                with pytest.raises(Unavailable) as caught:
                    await attempt
                assert time.monotonic() - started < 8
                assert caught.value.code == "DatastoreFailure" and "cannot be reached" in caught.value.message
                assert "password" not in caught.value.message
            await asyncio.to_thread(server.start)
            assert (await store.get_job(job_id)).id == job_id
            assert (await service.submit(spec())).job_id
    finally:
        server.close()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.text(max_size=20) | st.integers(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["Origin", "Evaluations", "Outbox", "Nodes", "Resync", "x"]), inner, max_size=5
        )
    ),
    max_leaves=20,
)


@given(st.text(max_size=300) | st.builds(json.dumps, JSON_VALUES))
def test_an_announcement_read_back_is_one_or_nothing(text: str) -> None:
    """What arrives on the store's channel is read as an announcement of the right shape, or ignored: never an
    exception in the listener (another process wrote it; a bug or a hostile writer must not stop the feed)."""
    announcement = Announcement.parse(text)
    if announcement is not None:
        assert isinstance(announcement.origin, str)
        for items in (announcement.evaluations, announcement.outbox, announcement.nodes):
            assert all(isinstance(item, str) for item in items)


def test_an_announcement_too_long_to_send_says_read_everything_again() -> None:
    many = CommitEffects(changed_nodes=[f"node-{i:05}" for i in range(2000)])
    text = Announcement.of("me", many).text()
    assert len(text.encode()) <= MAX_ANNOUNCEMENT
    assert Announcement.parse(text) == Announcement("me", resync=True)
    assert Announcement.of("me", CommitEffects()).text() == ""  # nothing to say: nothing sent
    assert Announcement.parse("[" * 4000 + "]" * 4000) is None  # as deep as a payload can be


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (["Orchestrator.JobStore.Type=postgres"], "Orchestrator.JobStore.URL is not set"),
        (["Orchestrator.JobStore.URL=postgresql://db/x"], "Orchestrator.JobStore.Type is sqlite"),
        (
            ["Orchestrator.JobStore.Type=postgres", "Orchestrator.JobStore.URL=postgresql://u:s3cret@db/x?nonsense=1"],
            "is not a PostgreSQL connection URL",
        ),
    ],
)
def test_store_settings_that_do_not_go_together_are_configuration_errors(
    tmp_path: Path, overrides: list[str], said: str
) -> None:
    config = load_config(data_dir=str(tmp_path), environ={}, overrides=overrides)
    with pytest.raises((ConfigurationError, ValueError)) as caught:
        store_url(config)
    assert said in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_store_url_is_a_secret(tmp_path: Path) -> None:
    url = "postgresql://bacalhau:s3cret@db:5432/bacalhau"
    config = load_config(
        data_dir=str(tmp_path),
        environ={},
        overrides=["Orchestrator.JobStore.Type=postgres", f"Orchestrator.JobStore.URL={url}"],
    )
    assert store_url(config) == url
    assert "s3cret" not in json.dumps(config.summary()) and "s3cret" not in json.dumps(config.redacted, default=str)
    assert describe(url) == "postgresql://bacalhau@db:5432/bacalhau"


async def test_writes_batched_into_one_commit_fail_alone(store: JobStore) -> None:
    """Group commit in both engines (PostgreSQL's savepoints are deferred and sent with the next statement): a write
    that fails, in Python or in SQL, after writing, leaves nothing; the writes around it commit."""

    def good(node: str) -> Callable[[Tx], int]:
        return lambda tx: tx.enqueue_message(node, {"Metadata": {}})

    def fails_in_python(tx: Tx) -> None:
        tx.enqueue_message("n-bad", {"Metadata": {}})
        raise RuntimeError("after a write")

    def fails_in_sql(tx: Tx) -> None:
        tx.enqueue_message("n-bad", {"Metadata": {}})
        tx.conn.execute("INSERT INTO outbox (node_id, seq, body) VALUES (?, ?, ?)", ("n-1", 1, "{}"))  # taken

    def part_fails(tx: Tx) -> int:
        with contextlib.suppress(Exception), tx.part():
            tx.enqueue_message("n-bad", {"Metadata": {}})
            tx.conn.execute("INSERT INTO outbox (node_id, seq, body) VALUES (?, ?, ?)", ("n-1", 1, "{}"))
        with tx.part():
            pass  # a part with nothing in it
        return tx.enqueue_message("n-2", {"Metadata": {}})

    await store.transact(good("n-1"))
    outcomes = await asyncio.gather(
        store.transact(good("n-1")),
        store.transact(fails_in_python),
        store.transact(good("n-2")),
        store.transact(fails_in_sql),
        store.transact(part_fails),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], RuntimeError)
    assert isinstance(outcomes[3], Exception)  # the engine's own unique violation
    assert (outcomes[0], outcomes[2], outcomes[4]) == (2, 1, 2)
    assert await store.outbox("n-bad", 0, 10, 1 << 20) == []
    assert [seq for seq, _ in await store.outbox("n-1", 0, 10, 1 << 20)] == [1, 2]
    assert [seq for seq, _ in await store.outbox("n-2", 0, 10, 1 << 20)] == [1, 2]
