"""HTTP from WebAssembly: the host module ``wasi:http/requests`` called by a WAT program against a real HTTP server on
loopback, under each network type, with its bounds (response size, time) and its allow-list (redirects too)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

import pytest

from bacalhau.compute.executors.base import ExecutorError, RunOutcome
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.executors.wasm_http import HttpLimits, HttpModule, domain_matches, parse_headers
from bacalhau.models.spec import Network, NetworkConfig
from tests.unit.test_wasm_executor import Sandbox

BIG = 1024 * 1024


class Server:
    """A local HTTP server that records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, dict(self.headers.items()), body))
                path = urlsplit(self.path)
                if path.path == "/hello":
                    self._send(200, b"hello from the server\n", {"X-Served-By": "test"})
                elif path.path == "/echo":
                    seen = f"{self.command} {body.decode()} {self.headers.get('X-Test', '-')}"
                    self._send(201, seen.encode())
                elif path.path == "/big":
                    self._send(200, b"x" * BIG)
                elif path.path == "/slow":
                    server.release.wait(10)
                    self._send(200, b"late")
                elif path.path == "/redirect":
                    self._send(302, b"", {"Location": parse_qs(path.query)["to"][0]})
                else:
                    self._send(404, b"no such page")

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client stopped reading, as it may

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    running.thread.start()
    try:
        yield running
    finally:
        running.release.set()
        running.httpd.shutdown()
        running.httpd.server_close()


@pytest.fixture
def sandbox(tmp_path: Path, wasm: Callable[[str], bytes]) -> Sandbox:
    return Sandbox(tmp_path, wasm)


async def call(sandbox: Sandbox, network: NetworkConfig, *args: str, limits: HttpLimits | None = None) -> RunOutcome:
    return await WasmExecutor(limits).run(sandbox.request("http", *args, network=network))


def http_only(*domains: str) -> NetworkConfig:
    return NetworkConfig(type=Network.HTTP, domains=list(domains))


async def test_an_allowed_domain_is_reached_and_the_program_prints_the_body(sandbox: Sandbox, server: Server) -> None:
    outcome = await call(sandbox, http_only("127.0.0.1"), "0", server.url("/hello"))
    assert outcome == RunOutcome(exit_code=0), sandbox.stderr()
    assert sandbox.stdout() == "status=200\nhello from the server\n"
    assert "X-Served-By: test" in sandbox.stderr().split("\n")


@pytest.mark.parametrize("network", [NetworkConfig(type=Network.FULL), NetworkConfig(type=Network.HOST),
                                     NetworkConfig(type=Network.DEFAULT)])  # fmt: skip
async def test_full_host_and_default_reach_any_host(sandbox: Sandbox, server: Server, network: NetworkConfig) -> None:
    outcome = await call(sandbox, network, "0", server.url("/hello", host="localhost"))
    assert outcome.exit_code == 0, sandbox.stderr()
    assert sandbox.stdout() == "status=200\nhello from the server\n"


async def test_a_host_not_listed_is_refused_without_a_request(sandbox: Sandbox, server: Server) -> None:
    outcome = await call(sandbox, http_only("example.com", "*.example.org"), "0", server.url("/hello"))
    assert outcome.exit_code == 4, "host not allowed"
    assert server.requests == []


async def test_a_redirect_to_a_host_not_listed_is_refused(sandbox: Sandbox, server: Server) -> None:
    elsewhere = server.url("/hello", host="localhost")
    outcome = await call(sandbox, http_only("127.0.0.1"), "0", server.url(f"/redirect?to={elsewhere}"))
    assert outcome.exit_code == 4
    assert [path for _, path, _, _ in server.requests] == [f"/redirect?to={elsewhere}"]
    followed = Sandbox(sandbox.root / "full", sandbox.wasm)
    outcome = await call(followed, NetworkConfig(type=Network.FULL), "0", server.url(f"/redirect?to={elsewhere}"))
    assert outcome.exit_code == 0 and followed.stdout() == "status=200\nhello from the server\n"


async def test_network_none_offers_no_module(sandbox: Sandbox, server: Server) -> None:
    with pytest.raises(ExecutorError) as error:
        await call(sandbox, NetworkConfig(type=Network.NONE), "0", server.url("/hello"))
    assert str(error.value) == 'failed to load entry module /app/main.wasm: unknown module "wasi:http/requests"'
    assert server.requests == []


async def test_method_body_and_headers_reach_the_server(sandbox: Sandbox, server: Server) -> None:
    headers = "X-Test: yes\nnot a header line\n\nHost: evil.example.com"
    outcome = await call(sandbox, http_only("127.0.0.1"), "1", server.url("/echo"), "65536", "payload", headers)
    assert outcome.exit_code == 0, sandbox.stderr()
    assert sandbox.stdout() == "status=201\nPOST payload yes"
    assert server.requests[0][2]["Host"] == f"127.0.0.1:{server.port}", "the program cannot pick the Host header"


@pytest.mark.parametrize(
    ("method", "verb"), [("0", "GET"), ("2", "PUT"), ("3", "DELETE"), ("5", "OPTIONS"), ("6", "PATCH"), ("42", "GET")]
)
async def test_the_originals_method_numbers(sandbox: Sandbox, server: Server, method: str, verb: str) -> None:
    outcome = await call(sandbox, NetworkConfig(type=Network.HOST), method, server.url("/echo"))
    assert outcome.exit_code == 0, sandbox.stderr()
    assert sandbox.stdout() == f"status=201\n{verb}  -"


async def test_a_response_larger_than_the_buffer_is_cut_to_fit(sandbox: Sandbox, server: Server) -> None:
    outcome = await call(sandbox, http_only("127.0.0.1"), "0", server.url("/big"), "100")
    assert outcome.exit_code == 0
    assert sandbox.stdout() == "status=200\n" + "x" * 100


async def test_no_more_than_the_response_limit_is_read(sandbox: Sandbox, server: Server) -> None:
    limits = HttpLimits(max_response_bytes=1000)
    outcome = await call(sandbox, http_only("127.0.0.1"), "0", server.url("/big"), "150000", limits=limits)
    assert outcome.exit_code == 0
    assert sandbox.stdout() == "status=200\n" + "x" * 1000


async def test_a_slow_server_times_out(sandbox: Sandbox, server: Server) -> None:
    started = time.monotonic()
    outcome = await call(sandbox, http_only("127.0.0.1"), "0", server.url("/slow"), limits=HttpLimits(timeout=0.5))
    assert outcome.exit_code == 3, "request timeout"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file", "not a url", "http://", "http://[::1"])
async def test_an_invalid_url_is_refused(sandbox: Sandbox, url: str) -> None:
    assert (await call(sandbox, NetworkConfig(type=Network.FULL), "0", url)).exit_code == 1


async def test_bounded_request_inputs(sandbox: Sandbox, server: Server) -> None:
    limits = HttpLimits(max_request_body_bytes=4, max_request_headers=1)
    big_body = await call(sandbox, http_only("127.0.0.1"), "1", server.url("/echo"), "100", "12345", limits=limits)
    assert big_body.exit_code == 5, "too large"
    headers = "A: 1\nB: 2"
    many = await call(sandbox, http_only("127.0.0.1"), "1", server.url("/echo"), "100", "", headers, limits=limits)
    assert many.exit_code == 6, "bad input"
    bad = await call(sandbox, http_only("127.0.0.1"), "1", server.url("/echo"), "100", "", "Bad Name: x")
    assert bad.exit_code == 6
    assert server.requests == []


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("example.com", "example.com", True),
        ("example.com", "EXAMPLE.com", True),
        ("example.com:8080", "example.com", True),
        ("example.com", "test.com", False),
        ("example.com", "api.example.com", False),
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("api.*", "api.example.com", True),
        ("api.*.com", "api.test.com", True),
        ("api.*.com", "api.com", False),
        ("a*b*c.com", "axxbyyc.com", True),
        ("a*b*c.com", "ac.com", False),
        ("*", "anything.com", True),
        (".example.com", "example.com", True),
        (".example.com", "www.example.com", True),
        (".example.com", "badexample.com", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.*", "127.0.0.1", True),
        ("::1", "::1", True),
        ("[::1]:80", "::1", True),
        ("", "example.com", False),
    ],
)
def test_domain_matching(pattern: str, host: str, matches: bool) -> None:
    assert domain_matches(pattern, host) is matches


def test_request_headers_in_the_originals_format() -> None:
    assert parse_headers("\nContent-Type: application/json\n\nAuthorization: Bearer t:1\n") == [
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer t:1"),
    ]
    assert parse_headers("") == []
    assert parse_headers("Content-Length: 5\nX: y") == [("X", "y")], "the client writes its own framing headers"


class FakeMemory:
    """A program's linear memory, for the ABI's edge cases."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, pointer: int, length: int) -> bytes | None:
        return bytes(self.data[pointer : pointer + length]) if pointer + length <= self.size else None

    def read_u32(self, pointer: int) -> int | None:
        raw = self.read(pointer, 4)
        return None if raw is None else int.from_bytes(raw, "little")

    def write(self, pointer: int, data: bytes) -> bool:
        if pointer + len(data) > self.size:
            return False
        self.data[pointer : pointer + len(data)] = data
        return True


def test_the_abis_edge_cases(server: Server) -> None:
    module = HttpModule(NetworkConfig(type=Network.HOST))
    memory = FakeMemory(4096)
    url = server.url("/hello").encode()
    memory.write(0, url)
    memory.write(100, (64).to_bytes(4, "little"))
    memory.write(104, (64).to_bytes(4, "little"))

    def request(*, url_len: int = len(url), headers_len_ptr: int = 100, body_ptr: int = 200, status: int = 108) -> int:
        args = (0, 0, url_len, 0, 0, 0, 0, 300, headers_len_ptr, body_ptr, 104, status)
        return module.http_request(memory, *args)  # type: ignore[arg-type]

    with patch("bacalhau.compute.executors.wasm_http._Memory", lambda caller: caller):
        assert request(body_ptr=0) == 6, "bad input: no buffer for the body"
        assert request(headers_len_ptr=4094) == 7, "memory error: the length lies outside memory"
        assert request(url_len=5000) == 1, "invalid URL: it lies outside memory"
        assert server.requests == []
        assert request() == 0
        assert int.from_bytes(memory.data[108:112], "little") == 200
        assert memory.read(200, int.from_bytes(memory.data[104:108], "little")) == b"hello from the server\n"
        assert request(status=0) == 0, "no status pointer: no status written"
    module.close()
