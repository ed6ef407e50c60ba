"""A part of a transaction that fails is undone alone: its writes and the effects it recorded, nothing else."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bacalhau.lib.sqlite import Database
from bacalhau.lib.sqlstore import Transaction


@dataclass
class Effects:
    notes: list[str] = field(default_factory=list)
    flag: bool = False


def record(tx: Transaction[Effects], value: str, *, fail: bool = False) -> None:
    with tx.part():
        tx.conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        tx.effects.notes.append(value)
        tx.effects.flag = fail
        if fail:
            raise RuntimeError("this part fails")


async def test_a_failed_part_undoes_its_writes_and_effects_only(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db", ["CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL);"], durable=False)
    await db.open()
    try:

        def work(conn: sqlite3.Connection) -> Effects:
            tx = Transaction(conn, Effects())
            record(tx, "kept")
            with pytest.raises(RuntimeError):
                record(tx, "undone", fail=True)
            record(tx, "kept too")
            return tx.effects

        effects = await db.write(work)
        rows = await db.read(lambda conn: [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")])
        assert rows == ["kept", "kept too"]
        assert effects == Effects(notes=["kept", "kept too"], flag=False)
    finally:
        db.close()
