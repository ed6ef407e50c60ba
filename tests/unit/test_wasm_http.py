"""HTTP from WebAssembly: the host module ``wasi:http/requests`` called by a WAT program against a real HTTP server on
loopback, under each network type, with its bounds (response size, time) and its allow-list (redirects too)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wasmtime

from bacalhau.compute.executors.base import ExecutorError, RunOutcome
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.executors.wasm_http import HttpLimits, HttpModule, domain_matches, parse_headers
from bacalhau.models.spec import Network, NetworkConfig
from tests.http_recorder import Server
from tests.unit.test_wasm_executor import Sandbox


@pytest.fixture
def server() -> Iterator[Server]:
    with Server.started() as running:
        yield running


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


# A program that hands its arguments to the host function as they are, with one page (64 KiB) of memory: the test
# writes the buffers and reads the answers through wasmtime, so the edge cases run against real linear memory.
FORWARDER = f"""(module
  (import "wasi:http/requests" "http_request" (func $http {"(param i32) " * 12}(result i32)))
  (memory (export "memory") 1)
  (func (export "call") {"(param i32) " * 12}(result i32)
    (call $http {" ".join(f"(local.get {i})" for i in range(12))})))"""
PAGE = 64 * 1024


def test_the_abis_edge_cases(server: Server) -> None:
    module = HttpModule(NetworkConfig(type=Network.HOST))
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    module.define(linker)
    exports = linker.instantiate(store, wasmtime.Module(engine, FORWARDER)).exports(store)
    memory, call = exports["memory"], exports["call"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(call, wasmtime.Func)
    url = server.url("/hello").encode()
    memory.write(store, url, 0)
    memory.write(store, (64).to_bytes(4, "little"), 100)
    memory.write(store, (64).to_bytes(4, "little"), 104)

    def u32(pointer: int) -> int:
        return int.from_bytes(memory.read(store, pointer, pointer + 4), "little")

    def request(*, url_len: int = len(url), headers_len_ptr: int = 100, body_ptr: int = 200, status: int = 108) -> int:
        result = call(store, 0, 0, url_len, 0, 0, 0, 0, 300, headers_len_ptr, body_ptr, 104, status)
        assert isinstance(result, int)
        return result

    assert request(body_ptr=0) == 6, "bad input: no buffer for the body"
    assert request(headers_len_ptr=PAGE - 2) == 7, "memory error: the length lies outside memory"
    assert request(url_len=PAGE + 1) == 1, "invalid URL: it lies outside memory"
    assert server.requests == []
    assert request() == 0
    assert u32(108) == 200
    assert bytes(memory.read(store, 200, 200 + u32(104))) == b"hello from the server\n"
    assert request(status=0) == 0, "no status pointer: no status written"
    module.close()
