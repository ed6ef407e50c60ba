"""The PostgreSQL test fixture itself (tests/postgres.py, ``postgres_server`` and ``postgres_url``): a real server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import wait_until
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(query).fetchall()


def write(url: str, *statements: str) -> None:
    with psycopg.connect(url, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def test_a_row_round_trips(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE jobs (id text PRIMARY KEY, spec jsonb NOT NULL, created timestamptz)")
        conn.execute("INSERT INTO jobs VALUES (%s, %s, now())", ("j-1", Jsonb({"name": "é", "count": 3})))
    assert rows(postgres_url, "SELECT id, spec FROM jobs") == [("j-1", {"name": "é", "count": 3})]
    assert rows(postgres_url, "SHOW server_encoding") == [("UTF8",)]


def test_restart_keeps_the_data_and_the_address(postgres_server: PostgresServer, postgres_url: str) -> None:
    write(postgres_url, "CREATE TABLE t (n int)", "INSERT INTO t VALUES (1), (2)")
    port, pid = postgres_server.port, postgres_server.pid
    postgres_server.restart()
    assert postgres_server.port == port
    assert postgres_server.pid != pid
    assert rows(postgres_url, "SELECT n FROM t ORDER BY n") == [(1,), (2,)]


def test_a_stopped_server_refuses_connections_until_started(postgres_server: PostgresServer, postgres_url: str) -> None:
    write(postgres_url, "CREATE TABLE t (n int)", "INSERT INTO t VALUES (7)")
    postgres_server.stop()
    assert not postgres_server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=10)
    postgres_server.start()
    assert rows(postgres_url, "SELECT n FROM t") == [(7,)]


def test_kill_makes_connections_fail_fast_then_start_recovers(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    write(postgres_url, "CREATE TABLE t (n int)", "INSERT INTO t VALUES (42)")
    held = psycopg.connect(postgres_url)  # a connection open across the crash
    pid = postgres_server.pid
    assert pid is not None
    postgres_server.kill()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_url, connect_timeout=10)
    assert time.monotonic() - began < 2, "refused at once, not after the connect timeout"
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    postgres_server.start()
    assert rows(postgres_url, "SELECT n FROM t") == [(42,)]  # committed before the crash: recovered


def test_databases_are_isolated(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    try:
        assert first != second
        write(first, "CREATE TABLE t (n int)", "INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            rows(second, "SELECT n FROM t")
        write(second, "CREATE TABLE t (n int)", "INSERT INTO t VALUES (2)")
        assert rows(first, "SELECT n FROM t") == [(1,)]
        assert rows(second, "SELECT n FROM t") == [(2,)]
    finally:
        for url in (first, second):
            postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_drop_database_cuts_open_connections(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("drop_me")
    held = psycopg.connect(url)
    postgres_server.drop_database("drop_me")
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(url, connect_timeout=10)
    postgres_server.drop_database("drop_me")  # no error when it is gone already


def test_a_failed_start_says_why_with_the_server_log(postgres_server: PostgresServer) -> None:
    # A second server on the same cluster: PostgreSQL refuses (postmaster.pid) and exits at once.
    second = PostgresServer(base_dir=postgres_server.base_dir)
    with pytest.raises(RuntimeError, match=r"exited with 1 while starting[\s\S]*postmaster\.pid"):
        second.start()
    assert not second.running
    assert postgres_server.running  # the first is undisturbed


def test_the_server_dies_with_the_test_process() -> None:
    program = (
        "import sys, time; from tests.postgres import PostgresServer; "
        "s = PostgresServer().start(); print(s.pid, s.base_dir, flush=True); time.sleep(60)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", program], cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    base_dir = ""
    try:
        assert owner.stdout is not None
        pid_text, base_dir = owner.stdout.readline().split()
        postmaster = psutil.Process(int(pid_text))
        assert postmaster.name() == "postgres"
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        wait_until(lambda: not _alive(postmaster), 10, "the orphaned postgres to exit")
    finally:
        owner.kill()
        owner.wait()
        if base_dir:
            shutil.rmtree(base_dir, ignore_errors=True)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
