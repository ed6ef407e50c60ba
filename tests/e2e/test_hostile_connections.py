"""Clients that hold connections open: every HTTP server of a node (its API, its local publisher) closes what does
not finish a request in time, and keeps answering with more connections open than the process may hold."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bacalhau.lib.httpserver import API_DEADLINES, DEADLINE_SCALE_ENV, PUBLISHER_DEADLINES, connection_limit
from bacalhau.models.ids import new_execution_id
from tests.api.support import noop_job
from tests.certs import CertFiles, TestCA
from tests.conftest import ServeProcess, wait_until
from tests.helpers import frames, link_key, logs_socket, signed_url, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e

SCALE = 0.1  # deadlines short enough to watch pass: the API's headers 0.5 s, request and idle 2 s
API = API_DEADLINES.scaled(SCALE)
PUBLISHER = PUBLISHER_DEADLINES.scaled(SCALE)
PUBLISHER_ADDRESS = "127.0.0.2"  # not 127.0.0.1, where the publisher must then not listen
CLIENT_HELLO_START = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"  # the first bytes of a TLS handshake
OPEN_FILES = 512
LIMIT = connection_limit(OPEN_FILES)
EARLY = 0.9  # of a deadline: the node's clock is read at accept, a moment after ours
LATE = 10.0  # seconds past a deadline within which a loaded machine still closes the connection


class Clients:
    """Raw client sockets, closed when the test ends."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def open(self, address: str, count: int = 1, send: bytes = b"", receive_buffer: int = 0) -> list[socket.socket]:
        host, port = address.rsplit(":", 1)
        opened = []
        for _ in range(count):
            sock = socket.socket()
            self.sockets.append(sock)
            if receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.connect((host, int(port)))
            sock.sendall(send)
            sock.setblocking(False)
            opened.append(sock)
        return opened

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    opened = Clients()
    yield opened
    opened.close()


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (what it sent before is read and dropped)."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        pass
    return True


def reply(sock: socket.socket) -> bytes:
    """The first bytes the server sends."""
    sock.settimeout(10)
    try:
        return sock.recv(65536)
    finally:
        sock.setblocking(False)


def wait_closed(socks: list[socket.socket], deadline: float, what: str) -> list[float]:
    """Wait until the server has closed every socket; when it closed each (``time.monotonic()``)."""
    closed: dict[socket.socket, float] = {}

    def all_closed() -> bool:
        closed.update({s: time.monotonic() for s in socks if s not in closed and closed_by_server(s)})
        return len(closed) == len(socks)

    wait_until(all_closed, deadline + LATE, what, interval=0.02)
    return [closed[s] for s in socks]


def wait_logged(node: ServeProcess, text: str) -> None:
    wait_until(lambda: text in node.log(), 10, f"the node to log {text!r}")


def authority(url: str) -> str:
    return urlsplit(url).netloc


def published_archive(node: ServeProcess) -> str:
    """The URL of a job's results on the node's local publisher."""
    publish = {"Publisher": {"Type": "local"}, "ResultPaths": [{"Name": "out", "Path": "/outputs"}]}
    job_id = submit(node.url, noop_job(task=publish))
    wait_for_state(node.url, job_id)
    [result] = httpx.get(f"{node.url}/api/v1/orchestrator/jobs/{job_id}/results").json()["Items"]
    return str(result["Params"]["URL"])


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A hybrid node whose HTTP deadlines are SCALE of the real ones."""
    data_dir = tmp_path_factory.mktemp("hostile") / "node"
    serving = ServeProcess(data_dir, "--orchestrator", "--compute", env={DEADLINE_SCALE_ENV: str(SCALE)})
    serving.config = ["-c", f"Publishers.Types.Local.Address={PUBLISHER_ADDRESS}"]
    yield serving.start()
    serving.stop()


@pytest.fixture(scope="module")
def archive(node: ServeProcess) -> str:
    return published_archive(node)


def test_half_sent_request_lines_are_closed_at_the_headers_deadline(node: ServeProcess, clients: Clients) -> None:
    opened = time.monotonic()
    socks = clients.open(authority(node.url), 50, b"GET /api/v1/agent/al")
    closed = wait_closed(socks, API.headers, "the node to close 50 half-sent requests")
    assert min(closed) - opened >= API.headers * EARLY
    assert httpx.get(f"{node.url}/api/v1/agent/alive").status_code == 200
    wait_logged(node, f"closed a connection that sent no complete request headers in {API.headers:g} s")


def test_each_part_of_a_request_has_its_deadline(node: ServeProcess, clients: Clients) -> None:
    """Headers that trickle in, a body that stops, a kept-alive connection left idle, and a second request that
    stops half way: each closed at its own deadline, all watched at once."""
    api = authority(node.url)
    opened = time.monotonic()
    [trickling] = clients.open(api, send=b"GET /api/v1/agent/alive HTTP/1.1\r\n")
    [stopped] = clients.open(api, send=b"PUT /api/v1/orchestrator/jobs HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    idle, second = clients.open(api, 2, send=b"GET /api/v1/agent/alive HTTP/1.1\r\nHost: node\r\n\r\n")
    assert reply(idle).startswith(b"HTTP/1.1 200") and reply(second).startswith(b"HTTP/1.1 200")
    answered = time.monotonic()
    second.sendall(b"GET /api/v1/agent/al")

    def trickled_until_closed() -> bool:
        try:
            if closed_by_server(trickling):
                return True
            trickling.sendall(b"X-Slow: yes\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return True
        return False

    wait_until(trickled_until_closed, API.headers + LATE, "the trickling headers to be cut off")
    trickled = time.monotonic()
    body_cut, idle_cut, second_cut = wait_closed([stopped, idle, second], API.request, "the other connections")
    assert API.headers * EARLY <= trickled - opened < API.request
    assert API.headers * EARLY <= second_cut - answered < API.idle  # a request that began has headers' deadline
    assert body_cut - opened >= API.request * EARLY
    assert idle_cut - answered >= API.idle * EARLY
    wait_logged(node, f"closed a connection that sent no complete request in {API.request:g} s")


def test_a_followed_log_stream_outlives_every_deadline(
    node: ServeProcess, clients: Clients, wasm: Callable[[str], bytes]
) -> None:
    """A WebSocket is no request: a log stream stays open while its job is quiet for longer than any deadline,
    while a plain connection opened beside it is closed."""
    longest = max(API.headers, API.request, API.idle)
    job_id = submit(node.url, wasm_job(wasm("sleep"), str(int((longest + 1) * 1000))))
    wait_for_state(node.url, job_id, ("Running",))
    [plain] = clients.open(authority(node.url))
    opened = time.monotonic()
    with logs_socket(node.url, job_id, follow="true") as stream:
        [frame] = frames(stream)
    assert time.monotonic() - opened > longest, "the job ended before the stream was quiet for long"
    assert frame["value"] == {"Type": 1, "Line": "slept\n"}
    assert closed_by_server(plain)


def test_the_local_publisher_listens_only_on_its_address(archive: str) -> None:
    host, port = urlsplit(archive).hostname, urlsplit(archive).port
    assert host == PUBLISHER_ADDRESS and port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    response = httpx.get(archive)
    assert response.status_code == 200 and response.content[:2] == b"\x1f\x8b"


def test_the_local_publisher_closes_half_sent_requests(node: ServeProcess, archive: str, clients: Clients) -> None:
    socks = clients.open(authority(archive), 50, b"GET /results.tar")
    closed = wait_closed(socks, PUBLISHER.headers, "the local publisher to close 50 half-sent requests")
    assert min(closed) >= PUBLISHER.headers * EARLY
    assert httpx.get(archive).status_code == 200
    wait_logged(node, f"closed a connection that sent no complete request headers in {PUBLISHER.headers:g} s")


def test_a_download_nobody_reads_is_dropped(node: ServeProcess, archive: str, clients: Clients) -> None:
    size = 32 << 20  # more than the kernel buffers on both ends hold
    execution_id = new_execution_id()
    big = node.data_dir / "compute" / "results" / "local-publisher" / f"{execution_id}.tar.gz"
    big.write_bytes(bytes(size))
    node_id = httpx.get(f"{node.url}/api/v1/agent/node").json()["NodeID"]
    unsigned = urlunsplit(urlsplit(archive)._replace(path=f"/{big.name}", query=""))
    url = urlsplit(signed_url(unsigned, link_key(node.data_dir, node_id), execution_id, int(time.time()) + 600))
    request = f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: node\r\n\r\n"
    [reader] = clients.open(authority(archive), send=request.encode(), receive_buffer=4096)
    start = time.monotonic()
    wait_logged(node, f"closed a connection that took none of a response for {PUBLISHER.stalled_response:g} s")
    assert time.monotonic() - start >= PUBLISHER.stalled_response * EARLY
    received = 0
    reader.setblocking(True)
    with pytest.raises(ConnectionResetError):
        while chunk := reader.recv(1 << 20):
            received += len(chunk)
    assert received < size


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A hybrid node allowed OPEN_FILES open files, with deadlines long enough not to close anything here."""
    data_dir = tmp_path_factory.mktemp("crowded") / "node"
    env = {DEADLINE_SCALE_ENV: "10"}
    serving = ServeProcess(data_dir, "--orchestrator", "--compute", env=env, open_files=OPEN_FILES)
    yield serving.start()
    serving.stop()


def assert_makes_room(node: ServeProcess, clients: Clients, url: str, server: str) -> None:
    """More idle connections than the limit: the oldest make room for the newest, and for a real request."""
    socks = clients.open(authority(url), LIMIT + 20)
    assert httpx.get(url, timeout=10, verify=node.verify).status_code == 200

    def displaced() -> list[socket.socket]:
        return [s for s in socks if closed_by_server(s)]

    gone = wait_until(lambda: len(displaced()) > 20 and displaced(), 10, "the oldest connections to make room")
    assert gone == socks[: len(gone)], "not the oldest connections were closed"
    wait_logged(node, f"{server} on port {urlsplit(url).port}: this process has {LIMIT} connections open, its limit")


def test_idle_connections_past_the_limit_make_room_for_a_request(crowded: ServeProcess, clients: Clients) -> None:
    assert_makes_room(crowded, clients, f"{crowded.url}/api/v1/agent/alive", "API server")


def test_the_local_publisher_makes_room_too(crowded: ServeProcess, clients: Clients) -> None:
    assert_makes_room(crowded, clients, published_archive(crowded), "local publisher")


def test_with_every_connection_busy_a_new_one_is_refused_at_once(crowded: ServeProcess, clients: Clients) -> None:
    """Runs last on this node: connections the tests before it left are idle, so they make room for these."""
    api = authority(crowded.url)
    submission = b"PUT /api/v1/orchestrator/jobs HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n"
    busy = clients.open(api, LIMIT, submission + b"Expect: 100-continue\r\n\r\n")
    # uvicorn says "100 Continue" once the handler waits for the body: the request is then being served.
    assert all(reply(sock).startswith(b"HTTP/1.1 100 Continue") for sock in busy)
    tried = time.monotonic()
    [refused] = clients.open(api)
    [cut] = wait_closed([refused], 0, "the connection past the limit to be refused")
    assert cut - tried < 2
    wait_logged(crowded, f"this process has {LIMIT} connections open, its limit, and none is waiting")
    for sock in busy:
        sock.close()
    wait_until(lambda: httpx.get(f"{crowded.url}/api/v1/agent/alive").status_code == 200, 10, "the node to answer")


def tls_orchestrator(directory: Path, server: CertFiles, ca_file: Path, scale: float, **options: Any) -> ServeProcess:
    """An orchestrator serving its API over TLS, with deadlines ``scale`` of the real ones."""
    serving = ServeProcess(directory, "--orchestrator", env={DEADLINE_SCALE_ENV: str(scale)}, **options)
    serving.config = ["-c", f"API.TLS.CertFile={server.cert}", "-c", f"API.TLS.KeyFile={server.key}"]
    serving.ca_file = ca_file
    return serving.start()


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[ServeProcess]:
    serving = tls_orchestrator(
        tmp_path_factory.mktemp("hostile-tls") / "node", test_ca.issue("tls"), test_ca.cert, SCALE
    )
    yield serving
    serving.stop()


def test_unfinished_tls_handshakes_are_closed_at_the_headers_deadline(tls_node: ServeProcess, clients: Clients) -> None:
    """On a TLS port a connection is timed from its accept too, as Go times a handshake by its headers' deadline:
    one that sends nothing, or half a ClientHello, is closed then. One that finishes its handshake has that
    deadline again for its request's headers."""
    api = authority(tls_node.url)
    opened = time.monotonic()
    silent = clients.open(api, 20)
    halves = clients.open(api, 20, CLIENT_HELLO_START)
    closed = wait_closed(silent + halves, API.headers, "the node to close 40 unfinished handshakes")
    assert min(closed) - opened >= API.headers * EARLY
    context = tls_node.verify
    assert isinstance(context, ssl.SSLContext)
    with (
        socket.create_connection(("127.0.0.1", tls_node.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as secure,
    ):
        shaken = time.monotonic()
        secure.sendall(b"GET /api/v1/agent/al")
        secure.settimeout(API.headers + LATE)
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):  # reset, or the TLS stream cut short
            while secure.recv(65536):
                pass
        assert time.monotonic() - shaken >= API.headers * EARLY
    assert httpx.get(f"{tls_node.url}/api/v1/agent/alive", verify=tls_node.verify).status_code == 200
    wait_logged(tls_node, f"closed a connection that sent no complete request headers in {API.headers:g} s")


@pytest.fixture(scope="module")
def crowded_tls(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("crowded-tls") / "node"
    serving = tls_orchestrator(directory, test_ca.issue("crowded"), test_ca.cert, 10, open_files=OPEN_FILES)
    yield serving
    serving.stop()


def test_unfinished_tls_handshakes_count_and_make_room(crowded_tls: ServeProcess, clients: Clients) -> None:
    """Connections yet to begin their handshake count against the limit, and make room as idle ones do."""
    assert_makes_room(crowded_tls, clients, f"{crowded_tls.url}/api/v1/agent/alive", "API server")
