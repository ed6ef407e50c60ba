"""Shared fixtures: WebAssembly test programs compiled from WAT, and real ``bacalhau serve`` processes."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shlex
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime
import yaml

from tests.certs import TestCA
from tests.postgres import PostgresServer, unavailable_reason

FIXTURES = Path(__file__).parent / "fixtures"
START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def wasm() -> Callable[[str], bytes]:
    """Compile ``tests/fixtures/wasm/<name>.wat`` to a WebAssembly binary."""
    cache: dict[str, bytes] = {}

    def compile_(name: str) -> bytes:
        if name not in cache:
            cache[name] = wasmtime.wat2wasm((FIXTURES / "wasm" / f"{name}.wat").read_text())
        return cache[name]

    return compile_


def data_url(content: bytes, media_type: str = "application/octet-stream") -> str:
    return f"data:{media_type};base64," + base64.b64encode(content).decode()


def wait_until(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy, failing with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")
        time.sleep(interval)


# Runs argv[2:] with at most argv[1] open files (soft and hard limit), without a preexec_fn (unsafe with threads).
_LIMIT_OPEN_FILES = (
    "import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


async def eventually(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """``wait_until`` inside an event loop: poll ``condition`` without blocking the loop, failing at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


class ServeProcess:
    """``bacalhau serve`` as a real child process on free ports, with its own data dir."""

    def __init__(
        self, data_dir: Path, *args: str, env: dict[str, str] | None = None, open_files: int | None = None
    ) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.config: list[str] = []  # extra "-c Key=Value" arguments; later ones win
        self.extra_env = env or {}
        self.open_files = open_files
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.exports: dict[str, str] = {}  # what its run file exports for clients
        self.ca_file: Path | None = None  # what its API's certificate is checked against, if not the run file's
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.exports.get("BACALHAU_API_TLS_USETLS") == "true" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """How an httpx client checks the certificate of its API, when it serves HTTPS."""
        ca_file = self.ca_file or self.exports.get("BACALHAU_API_TLS_CAFILE")
        return ssl.create_default_context(cafile=str(ca_file)) if ca_file else True

    def with_config(self, document: dict[str, Any]) -> ServeProcess:
        """Serve with this config file too (for what ``-c Key=Value`` cannot say, such as lists of users)."""
        path = self.data_dir.parent / f"{self.data_dir.name}.config.yaml"
        path.write_text(yaml.safe_dump(document))
        self.config += ["-c", str(path)]
        return self

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
        env.update({"BACALHAU_DIR": str(self.data_dir), "BACALHAU_API_HOST": "127.0.0.1"})
        env.update(self.extra_env)
        return env

    def start(self) -> ServeProcess:
        return self.launch().wait_ready()

    def launch(self) -> ServeProcess:
        """Start the process without waiting for it (start several, then wait for each)."""
        (self.data_dir / "bacalhau.run").unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "bacalhau",
            "-c", "API.Port=0", "-c", "Orchestrator.Port=0", "-c", "Publishers.Types.Local.Port=0", *self.config,
            "serve", *self.args,
        ]  # fmt: skip
        if self.open_files is not None:
            command = [sys.executable, "-c", _LIMIT_OPEN_FILES, str(self.open_files), *command]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=self.env(), stdout=log, stderr=log, start_new_session=True)
        log.close()
        return self

    def wait_ready(self) -> ServeProcess:
        run_file = self.data_dir / "bacalhau.run"

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"bacalhau serve exited with {self.process.returncode}:\n{self.log()}")
            if not run_file.exists():
                return False
            lines = [line.removeprefix("export ").partition("=") for line in run_file.read_text().splitlines()]
            self.exports = {name: shlex.split(value)[0] for name, _, value in lines if value}
            if "BACALHAU_API_PORT" not in self.exports:
                return False
            self.port = int(self.exports["BACALHAU_API_PORT"])
            try:
                return httpx.get(f"{self.url}/api/v1/agent/alive", timeout=1, verify=self.verify).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, START_TIMEOUT, f"bacalhau serve to be ready (log: {self.log_path})")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def cli(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
        unset: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``bacalhau`` CLI against this node (without the ``unset`` environment variables, with ``env``)."""
        env = {**{key: value for key, value in self.env().items() if key not in unset}, **(env or {})}
        env["BACALHAU_API_PORT"] = str(self.port)
        result = subprocess.run(
            [sys.executable, "-m", "bacalhau", *args],
            env=env, capture_output=True, text=True, input=input, timeout=timeout, cwd=self.data_dir.parent,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"bacalhau {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``bacalhau serve`` processes that are stopped when the test ends."""
    started: list[ServeProcess] = []

    def start(*args: str, name: str = "node", env: dict[str, str] | None = None) -> ServeProcess:
        node = ServeProcess(tmp_path / name, *args, env=env).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def hybrid(serve_factory: Callable[..., ServeProcess]) -> ServeProcess:
    return serve_factory("--orchestrator", "--compute")


@pytest.fixture(scope="session")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One hybrid node for tests that only need some node (API conformance)."""
    node = ServeProcess(tmp_path_factory.mktemp("shared") / "node", "--orchestrator", "--compute").start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """A certificate authority for the run, to sign servers' certificates (see tests/certs.py)."""
    return TestCA(tmp_path_factory.mktemp("ca"))


@dataclass
class S3Bucket:
    """A fresh bucket on the session's moto S3 server, with a boto3 client for arranging and checking objects."""

    endpoint: str
    name: str
    client: Any

    @property
    def env(self) -> dict[str, str]:
        """What a ``bacalhau serve`` process needs to reach this S3 server."""
        return {key: os.environ[key] for key in S3_CREDENTIALS}

    def put(self, key: str, body: bytes) -> str:
        """Store an object; returns its version ID (buckets are versioned)."""
        return str(self.client.put_object(Bucket=self.name, Key=key, Body=body)["VersionId"])

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def keys(self) -> list[str]:
        response = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in response.get("Contents", []))


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto) on a loopback port chosen by the kernel."""
    from moto.server import ThreadedMotoServer  # imported here: only S3 tests pay for loading moto

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    import boto3

    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return S3Bucket(s3_endpoint, name, client)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server (tests/postgres.py) for the whole session, started by the first test that asks
    (about 1 s); skips where PostgreSQL is not installed (scripts/postgres installs it).

    Tests may ``stop()``, ``kill()`` or ``restart()`` it (a database that goes away and comes back, on the same port
    with the same data): ``postgres_url`` starts it again after such a test. Take ``postgres_url`` too for a database
    of your own rather than using the server's ``postgres`` one.
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server, dropped after the test (connections still open to
    it are cut): ``postgresql://postgres@127.0.0.1:PORT/test_<random>``."""
    if not postgres_server.running:
        postgres_server.start()  # an earlier test stopped or killed it
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    if not postgres_server.running:
        postgres_server.start()
    postgres_server.drop_database(name)
