"""The writer's order on a real SQLite file: background writes go a few per commit, after every other waiting write,
and none is lost when the database closes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from bacalhau.lib.sqlite import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS log (name TEXT NOT NULL);"


def writing(name: str, applied: list[str]) -> Callable[[sqlite3.Connection], None]:
    def write(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO log (name) VALUES (?)", (name,))
        applied.append(name)

    return write


async def test_a_waiting_write_goes_before_queued_background_writes(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.db", [SCHEMA], durable=False)
    await db.open()
    applied: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def blocker(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(5)
        applied.append("blocker")

    first = asyncio.ensure_future(db.write(blocker))
    assert await asyncio.to_thread(entered.wait, 5)  # the writer is held: what follows queues up behind it
    background = [asyncio.ensure_future(db.write(writing(f"bulk-{i}", applied), background=True)) for i in range(4)]
    await asyncio.sleep(0)  # the background writes are queued first
    urgent = asyncio.ensure_future(db.write(writing("submit", applied)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, urgent, *background), 5)
    assert applied == ["blocker", "submit", "bulk-0", "bulk-1", "bulk-2", "bulk-3"]
    db.close()


async def test_closing_finishes_held_background_writes(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.db", [SCHEMA], durable=False)
    await db.open()
    applied: list[str] = []
    writes = [asyncio.ensure_future(db.write(writing(f"bulk-{i}", applied), background=True)) for i in range(5)]
    await asyncio.sleep(0)
    db.close()
    await asyncio.wait_for(asyncio.gather(*writes), 5)
    with sqlite3.connect(tmp_path / "w.db") as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM log ORDER BY rowid")] == [f"bulk-{i}" for i in range(5)]
