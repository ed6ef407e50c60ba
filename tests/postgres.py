"""A private PostgreSQL server for tests: Debian's binaries (scripts/postgres installs them), run as a child process.

``PostgresServer().start()`` makes a cluster in a temporary folder (``initdb``, about a second) and runs ``postgres`` on
a free loopback port; ``create_database()`` gives each test a database of its own. ``stop()``, ``kill()`` and
``restart()`` (same port, same data) let a test take the database away and bring it back.

As root (as here), the cluster belongs to the ``postgres`` user, since PostgreSQL refuses to run as root: ``initdb``
runs through ``runuser``, the server through ``setpriv``, which switches user and then execs ``postgres`` itself, so
the child process is the postmaster (``kill()`` reaches it) and it gets SIGQUIT (immediate shutdown) if the test
process dies, even by SIGKILL. Writes are not synced to disk (``fsync=off``, ``full_page_writes=off``): a committed
transaction survives ``kill()`` (the operating system still holds it), only a power loss would lose it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import psutil

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 40
OS_USER = "postgres"
NOT_INSTALLED = "PostgreSQL not installed: run scripts/postgres"

# The parent-death signal goes with the thread that started the child: a server started from a short-lived thread
# (``asyncio.to_thread(server.restart)``) would be shut down when that thread ends. All servers are started from this
# one thread, which lives as long as the test process.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-spawner")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's binaries are not installed here (or there is no user to run them as)."""


def find_pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries: ``$PG_BIN``, else the newest ``/usr/lib/postgresql/*/bin``, else
    the folder of an ``initdb`` on PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BIN"):
        candidates.append(Path(os.environ["PG_BIN"]))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "postgres", "pg_isready")):
            return folder
    return None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if find_pg_bin() is None:
        return NOT_INSTALLED
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"PostgreSQL cannot run as root and there is no {OS_USER!r} user: run scripts/postgres"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class PostgresServer:
    """One PostgreSQL cluster in its own temporary folder, served on ``127.0.0.1:<port>`` while started.

    The folder (``base_dir``) holds the cluster (``data``), the server's unix socket and its log (``postgres.log``,
    appended to across restarts). ``close()`` stops the server and deletes the folder.
    """

    host = "127.0.0.1"

    def __init__(self, pg_bin: Path | None = None, base_dir: Path | None = None) -> None:
        found = pg_bin or find_pg_bin()
        if found is None:
            raise PostgresUnavailable(NOT_INSTALLED)
        self.pg_bin = found
        # Not under pytest's own tmp folders: those are 0700 root, which the postgres user cannot pass through.
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="bacalhau-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.as_root = os.geteuid() == 0

    # -- addresses ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``postgres`` database's URL (for administration; tests want :meth:`create_database`)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    # -- life cycle --------------------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> PostgresServer:
        """Make the cluster (first time only) and start the server; returns once it accepts connections.

        The first start picks a free port; later ones (after :meth:`stop` or :meth:`kill`) reuse it and the data.
        """
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(deadline)
        first = self.port == 0
        error: str | None = "not started"
        for _attempt in range(3):
            if first:
                self.port = free_port()
            self._spawn()
            error = self._wait_ready(deadline)
            if error is None:
                return self
            # Another process may have taken the free port between our look and the server's bind: pick another.
            if first and ("could not bind" in error.lower() or "address already in use" in error.lower()):
                continue
            break
        raise RuntimeError(error)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, the data is checkpointed); waits for the server to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"PostgreSQL did not stop within {timeout:.0f}s:\n{self.log_tail()}") from None
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server (a crash); returns once it and its backends are gone, so connecting fails at once.

        The next :meth:`start` recovers the data from the write-ahead log.
        """
        if self.process is None:
            return
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)
        # Backends notice their postmaster's death and exit on their own; make sure, since the next start cannot
        # take over the shared memory while one still holds it.
        # (Reparented, a dead one may stay a zombie for a while: that one holds nothing any more.)
        deadline = time.monotonic() + 5
        while alive := [child for child in children if _alive(child)]:
            if time.monotonic() > deadline:
                for child in alive:
                    with contextlib.suppress(psutil.Error):
                        child.kill()
                break
            time.sleep(0.01)
        self.process = None

    def restart(self, timeout: float = START_TIMEOUT) -> PostgresServer:
        """Stop (fast shutdown) and start again on the same port with the same data."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self.stop()
        except RuntimeError:
            self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- databases ---------------------------------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (named ``test_<random>`` unless ``name`` is given); returns its URL."""
        import psycopg
        from psycopg import sql

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it; no error if it does not exist."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- helpers -----------------------------------------------------------------------------------------------------

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty server log)"

    def _as_owner(self) -> list[str]:
        """The prefix that runs a command as the cluster's owner (nothing unless root)."""
        return ["runuser", "-u", OS_USER, "--"] if self.as_root else []

    def _initdb(self, deadline: float) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self.as_root:
            for path in (self.base_dir, self.data_dir):
                shutil.chown(path, OS_USER, OS_USER)
        command = [
            *self._as_owner(), str(self.pg_bin / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
            "--locale=C.UTF-8", "-E", "UTF8", "--no-sync", "--no-instructions",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 1),
                cwd=self.base_dir,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"initdb did not finish in time: {' '.join(command)}") from error
        with self.log_path.open("a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"initdb exited with {result.returncode}:\n{result.stdout}{result.stderr}")

    def _spawn(self) -> None:
        command = [
            str(self.pg_bin / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-h", self.host,
            "-k", str(self.base_dir),
            "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "shared_buffers=32MB",
        ]  # fmt: skip
        # setpriv execs postgres in place (unlike runuser, which forks and waits), after switching user, so that the
        # parent-death signal survives the switch (Linux clears it on a change of user).
        owner = ["--reuid", OS_USER, "--regid", OS_USER, "--init-groups"] if self.as_root else []
        command = ["setpriv", *owner, "--pdeathsig", "SIGQUIT", "--", *command]
        with self.log_path.open("ab") as log:
            self.process = _SPAWNER.submit(
                subprocess.Popen,
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,  # a ^C to the test run reaches pytest, which then stops the server itself
            ).result()

    def _wait_ready(self, deadline: float) -> str | None:
        """None once the server accepts connections, else why it does not (with the log's tail)."""
        assert self.process is not None
        check = [str(self.pg_bin / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"]
        interval = 0.01
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                return f"postgres exited with {code} while starting (log {self.log_path}):\n{self.log_tail()}"
            # Our server says it is ready (and not some other one that answers on the port we picked).
            if self._says_ready() and subprocess.run(check, check=False, capture_output=True).returncode == 0:
                return None
            if time.monotonic() > deadline:
                self.kill()
                return f"postgres did not accept connections in time (log {self.log_path}):\n{self.log_tail()}"
            time.sleep(interval)
            interval = min(interval * 2, 0.1)

    def _says_ready(self) -> bool:
        """Whether the server's ``postmaster.pid`` names it and says "ready" (it accepts connections)."""
        assert self.process is not None
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self.process.pid) and lines[7].strip() == "ready"
