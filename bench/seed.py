"""Fill a stopped orchestrator's store with many finished jobs, cloned from jobs that really ran there.

Submitting 100,000 jobs through the API would take most of the benchmark's time budget, and the figure this serves
(how listing and memory behave with a large store) depends on what is stored, not on how it got there. Each clone
is a copy of a real job's rows (job, executions, history) with fresh IDs and later timestamps.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

_BATCH = 5000


def _new_id(old: str) -> str:
    prefix = old.split("-", 1)[0]
    return f"{prefix}-{uuid.uuid4()}"


def clone_jobs(data_dir: Path, total: int) -> int:
    """Add clones of the stored finished jobs until ``total`` jobs are stored; returns how many were added."""
    conn = sqlite3.connect(data_dir / "orchestrator" / "jobs.db", isolation_level=None)
    try:
        templates = conn.execute(
            "SELECT id, namespace, type, state, create_time, modify_time, body FROM jobs "
            "WHERE state IN ('Completed', 'Failed', 'Stopped')"
        ).fetchall()
        if not templates:
            raise RuntimeError("no finished job to clone")
        (stored,) = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()
        (latest,) = conn.execute("SELECT MAX(modify_time) FROM jobs").fetchone()
        added = 0
        while stored + added < total:
            conn.execute("BEGIN")
            for _ in range(min(_BATCH, total - stored - added)):
                job_id, namespace, job_type, state, create_time, modify_time, body = templates[added % len(templates)]
                latest += 1000
                _clone_one(conn, job_id, (namespace, job_type, state, latest, latest + modify_time - create_time, body))
                added += 1
            conn.execute("COMMIT")
        return added
    finally:
        conn.close()


def _clone_one(conn: sqlite3.Connection, job_id: str, row: tuple[str, str, str, int, int, str]) -> None:
    namespace, job_type, state, create_time, modify_time, body = row
    renames = {job_id: _new_id(job_id)}
    executions = conn.execute(
        "SELECT id, node_id, compute_state, body FROM executions WHERE job_id = ?", (job_id,)
    ).fetchall()
    for execution_id, *_ in executions:
        renames[execution_id] = _new_id(execution_id)

    def renamed(text: str) -> str:
        for old, new in renames.items():
            text = text.replace(old, new)
        return text

    job = json.loads(renamed(body))
    job["CreateTime"], job["ModifyTime"] = create_time, modify_time
    new_job_id = renames[job_id]
    conn.execute(
        "INSERT INTO jobs (id, namespace, type, state, create_time, modify_time, body) VALUES (?,?,?,?,?,?,?)",
        (new_job_id, namespace, job_type, state, create_time, modify_time, json.dumps(job, separators=(",", ":"))),
    )
    conn.executemany(
        "INSERT INTO executions (id, job_id, node_id, compute_state, create_time, modify_time, body) "
        "VALUES (?,?,?,?,?,?,?)",
        [
            (renames[eid], new_job_id, node_id, state_number, create_time, modify_time, renamed(ebody))
            for eid, node_id, state_number, ebody in executions
        ],
    )
    history = conn.execute("SELECT seq, body FROM history WHERE job_id = ?", (job_id,)).fetchall()
    conn.executemany(
        "INSERT INTO history (job_id, seq, body) VALUES (?,?,?)",
        [(new_job_id, seq, renamed(hbody)) for seq, hbody in history],
    )
