"""A store's schema versions (``PRAGMA user_version``): a new file runs every migration, an older one the ones it
lacks, each with its version bump in one transaction; a file from a newer release is refused untouched."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from bacalhau.errors import ConfigurationError, StoreTooNew
from bacalhau.lib.sqlite import Database
from bacalhau.lib.sqlstore import Migration


def add_column(conn: sqlite3.Connection) -> None:
    """A migration SQL alone cannot express: derive a new column from what each row holds."""
    conn.execute("ALTER TABLE items ADD COLUMN length INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE items SET length = length(name)")


MIGRATIONS: list[Migration] = [
    "CREATE TABLE items (name TEXT NOT NULL);",  # no IF NOT EXISTS: running it twice would fail
    "CREATE INDEX items_by_name ON items (name); INSERT INTO items (name) VALUES ('seed');",
    add_column,
]


async def opened(path: Path, migrations: Sequence[Migration]) -> Database:
    db = Database(path, migrations, durable=False)
    try:
        await db.open()
    except BaseException:
        db.close()
        raise
    return db


def inspect(path: Path) -> tuple[int, list[tuple[object, ...]], list[str]]:
    """The file's version, its rows and its tables and indexes, read without our code."""
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        rows = conn.execute("SELECT * FROM items ORDER BY rowid").fetchall()
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema ORDER BY name")]
    conn.close()
    return version, rows, names


def fingerprint(path: Path) -> tuple[bytes, int, list[str]]:
    """The file's bytes and time of change, and what lies beside it (a journal or WAL left behind)."""
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


async def test_a_new_file_runs_every_migration(tmp_path: Path) -> None:
    db = await opened(tmp_path / "s.db", MIGRATIONS)
    db.close()
    assert inspect(tmp_path / "s.db") == (3, [("seed", 4)], ["items", "items_by_name"])


@pytest.mark.parametrize("start", [1, 2])
async def test_a_file_at_version_n_runs_the_migrations_after_n_once(tmp_path: Path, start: int) -> None:
    path = tmp_path / "s.db"
    (await opened(path, MIGRATIONS[:start])).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO items (name) VALUES ('written at an older version')")
    conn.close()
    db = await opened(path, MIGRATIONS)
    await db.write(lambda conn: conn.execute("INSERT INTO items (name, length) VALUES ('new', 3)"))
    db.close()
    (await opened(path, MIGRATIONS)).close()  # at the latest version: nothing runs again
    version, rows, _ = inspect(path)
    assert version == 3
    assert sorted(rows) == [("new", 3), ("seed", 4), ("written at an older version", 27)]


async def test_a_file_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    (await opened(path, MIGRATIONS)).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:  # out of WAL mode: setting it again would write the file
        conn.execute("PRAGMA journal_mode = DELETE")
    before = fingerprint(path)
    with pytest.raises(StoreTooNew) as refused:
        await opened(path, MIGRATIONS[:2])
    error = refused.value
    assert isinstance(error, ConfigurationError)
    assert (error.path, error.version, error.known) == (str(path), 3, 2)
    assert str(path) in error.message and "schema version 3" in error.message and "up to 2" in error.message
    assert "upgrade bacalhau" in error.hint and "another data dir" in error.hint
    assert fingerprint(path) == before


@pytest.mark.parametrize(
    "failing",
    [
        "CREATE TABLE other (x); INSERT INTO items (name) VALUES ('half'); INSERT INTO nowhere VALUES (1);",
        lambda conn: (conn.execute("INSERT INTO items (name) VALUES ('half')"), 1 / 0),
    ],
    ids=["script", "function"],
)
async def test_a_failing_migration_leaves_the_file_at_its_last_version(tmp_path: Path, failing: Migration) -> None:
    path = tmp_path / "s.db"
    (await opened(path, MIGRATIONS[:2])).close()
    with pytest.raises((sqlite3.OperationalError, ZeroDivisionError)):
        await opened(path, [*MIGRATIONS[:2], failing])
    assert inspect(path) == (2, [("seed",)], ["items", "items_by_name"])
    db = await opened(path, MIGRATIONS)  # the fixed release carries on from there
    db.close()
    assert inspect(path)[:2] == (3, [("seed", 4)])


async def test_a_migration_function_that_commits_is_an_error(tmp_path: Path) -> None:
    """``executescript`` commits: the step could no longer be undone whole, so it is refused rather than counted."""
    path = tmp_path / "s.db"
    with pytest.raises(RuntimeError, match="migration 2 ended its transaction"):
        await opened(path, [MIGRATIONS[0], lambda conn: conn.executescript("SELECT 1;")])
    assert inspect(path)[0] == 1
