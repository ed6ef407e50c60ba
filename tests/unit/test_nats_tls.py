"""TLS on NATS: the server's settings as nats-server reads them, files refused at start by name, and who may connect
to a real nats-server serving TLS (with and without client certificates)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from cryptography.hazmat.primitives import serialization
from nats.errors import Error as NatsError

from bacalhau.errors import ConfigurationError
from bacalhau.transport.natsserver import MAX_PAYLOAD, EmbeddedNatsServer, _server_config
from bacalhau.transport.tls import ClientTls, ServerTls, compute_tls, server_tls
from tests.certs import CertFiles, TestCA

HOSTILE_DIR = 'pki "quoted" {braces} }\ntls { cert_file: "/etc/passwd" } \\ $HOME #é'
"""A folder name that would end the value, the line and the block early if a path were written as it is."""

LOG = "bacalhau.transport.natsserver"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / HOSTILE_DIR)


@pytest.fixture
def server_pair(ca: TestCA) -> CertFiles:
    """Made for both ends of a link, as the server's certificate must be when clients must present one."""
    return ca.issue("server", usages=("server", "client"))


@contextlib.asynccontextmanager
async def running(server: EmbeddedNatsServer) -> AsyncIterator[EmbeddedNatsServer]:
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def tls_server(tmp_path: Path, ca: TestCA, server_pair: CertFiles) -> AsyncIterator[EmbeddedNatsServer]:
    """TLS with client certificates, and a node token on top."""
    tls = server_tls(str(server_pair.cert), str(server_pair.key), ca=str(ca.cert), require_client_cert=True)
    async with running(EmbeddedNatsServer("127.0.0.1", 0, tmp_path / "conf", token="tok", tls=tls)) as server:
        yield server


def block(*lines: str) -> str:
    return "tls {\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


FOLDER = '/srv/pki "q" {b} }' + "\ntls { x } \\ #é"
# FOLDER as the config writes it: quotes, the backslash and every byte outside printable ASCII as an \xHH escape.
ESCAPED = r"/srv/pki \x22q\x22 {b} }\x0atls { x } \x5c #\xc3\xa9"


def test_the_server_config_for_each_combination() -> None:
    head = f'host: "0.0.0.0"\nport: 4222\nmax_payload: {MAX_PAYLOAD}\n'
    token = 'authorization {\n  token: "t"\n}\n'
    files = [f'cert_file: "{ESCAPED}/s.pem"', f'key_file: "{ESCAPED}/s.key"']

    def config(tls: ServerTls | None, token: str = "") -> str:
        return _server_config("0.0.0.0", 4222, token, MAX_PAYLOAD, tls)

    served = server_tls(f"{FOLDER}/s.pem", f"{FOLDER}/s.key", ca=f"{FOLDER}/ca.pem", timeout=15)
    verified = server_tls(f"{FOLDER}/s.pem", f"{FOLDER}/s.key", ca=f"{FOLDER}/ca.pem", require_client_cert=True)
    assert config(None) == head
    assert config(None, "t") == head + token
    assert config(served) == head + block(*files, "timeout: 15", 'handshake_first: "500ms"')
    assert config(verified, "t") == head + token + block(
        *files, "timeout: 10", 'handshake_first: "500ms"', f'ca_file: "{ESCAPED}/ca.pem"', "verify: true"
    )


def test_relative_paths_are_resolved_where_the_node_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    tls = server_tls("certs/s.pem", "certs/s.key", ca="ca.pem")
    assert tls == ServerTls(f"{tmp_path}/certs/s.pem", f"{tmp_path}/certs/s.key", f"{tmp_path}/ca.pem")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cert": "s.pem"}, "ServerCert and Orchestrator.TLS.ServerKey must be set together"),
        ({"key": "s.key"}, "ServerCert and Orchestrator.TLS.ServerKey must be set together"),
        ({"cert": "s.pem", "key": "s.key", "timeout": -1}, "ServerTimeout must be a positive number of seconds"),
        ({"require_client_cert": True, "ca": "ca.pem"}, "RequireClientCert needs TLS on the NATS server"),
        ({"cert": "s.pem", "key": "s.key", "require_client_cert": True}, "RequireClientCert needs Orchestrator.TLS.CA"),
    ],
)
def test_settings_that_do_not_go_together(settings: dict[str, object], message: str) -> None:
    arguments = {"cert": "", "key": "", **settings}
    with pytest.raises(ConfigurationError, match=message):
        server_tls(**arguments)  # type: ignore[arg-type]


def test_no_settings_no_tls() -> None:
    assert server_tls("", "", ca="ca.pem", timeout=5) is None
    assert compute_tls() == ClientTls()
    with pytest.raises(ConfigurationError, match=r"ClientCert and Compute\.TLS\.ClientKey must be set together"):
        compute_tls(cert="c.pem")


def broken_files(ca: TestCA, pair: CertFiles, folder: Path) -> dict[str, tuple[ServerTls, str]]:
    """Server settings each with one bad file, and what the refusal must say (the setting and the file)."""
    other = ca.issue("other")
    garbage = folder / "garbage.pem"
    garbage.write_text("not a certificate\n")
    encrypted = folder / "encrypted.key"
    key = serialization.load_pem_private_key(pair.key.read_bytes(), None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
        )
    )
    missing = folder / "missing.pem"
    cert, key_file = str(pair.cert), str(pair.key)
    return {
        "missing cert": (ServerTls(str(missing), key_file), f"ServerCert {missing} does not exist"),
        "key is a folder": (ServerTls(cert, str(folder)), f"cannot read Orchestrator.TLS.ServerKey {folder}: Is a"),
        "cert not PEM": (ServerTls(str(garbage), key_file), f"ServerCert {garbage} holds no PEM certificate"),
        "key not PEM": (ServerTls(cert, str(garbage)), f"ServerKey {garbage} holds no PEM private key"),
        "key is a cert": (ServerTls(cert, cert), f"ServerKey {cert} holds no PEM private key"),
        "other key": (ServerTls(cert, str(other.key)), f"ServerKey {other.key} does not match the certificate in"),
        "encrypted key": (ServerTls(cert, str(encrypted)), f"ServerKey {encrypted} is encrypted"),
        "CA not PEM": (ServerTls(cert, key_file, str(garbage)), f"CACert {garbage} holds no PEM certificate"),
        "missing CA": (ServerTls(cert, key_file, str(missing)), f"CACert {missing} does not exist"),
    }


def test_each_bad_file_is_refused_by_setting_and_name(ca: TestCA, server_pair: CertFiles) -> None:
    for case, (tls, message) in broken_files(ca, server_pair, ca.directory).items():
        with pytest.raises(ConfigurationError) as refused:
            tls.check()
        assert "Orchestrator.TLS." in refused.value.message, case
        assert message in refused.value.message, case


async def test_the_server_refuses_to_start_with_a_bad_file_and_leaves_nothing(
    tmp_path: Path, ca: TestCA, server_pair: CertFiles
) -> None:
    tls = ServerTls(str(server_pair.cert), str(ca.issue("other").key))
    server = EmbeddedNatsServer("127.0.0.1", 0, tmp_path / "conf", tls=tls)
    with pytest.raises(ConfigurationError, match="does not match the certificate"):
        await server.start()
    assert server._process is None and not server.config_path.exists()


def test_client_files_are_checked_too(ca: TestCA, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"Compute.TLS.CACert {tmp_path}/nope does not exist"):
        compute_tls(ca=str(tmp_path / "nope"))
    node = ca.issue("node", usages=("client",))
    with pytest.raises(ConfigurationError, match=r"(?s)Compute\.TLS\.ClientKey .* does not match the certificate"):
        compute_tls(cert=str(node.cert), key=str(ca.issue("x").key))
    tls = compute_tls(ca=str(ca.cert), cert=str(node.cert), key=str(node.key), require=True)
    assert tls.first and tls.certificate and tls.context is not None and tls.context.check_hostname


async def round_trip(client: nats.NATS) -> bytes:
    subscription = await client.subscribe("check")
    await client.publish("check", b"over TLS")
    message = await subscription.next_msg(timeout=5)
    return bytes(message.data)


async def test_nodes_with_a_certificate_from_the_ca_connect_either_way(
    tls_server: EmbeddedNatsServer, ca: TestCA
) -> None:
    """The node's own client, and compute nodes that open with TLS or upgrade after the server's INFO."""
    own = await tls_server.connect_client("own")
    node = ca.issue("node", usages=("client",))
    try:
        assert await round_trip(own) == b"over TLS"
        for require in (True, False):
            tls = compute_tls(ca=str(ca.cert), cert=str(node.cert), key=str(node.key), require=require)
            client = await nats.connect(tls_server.client_url, token="tok", allow_reconnect=False, **tls.options())
            assert await round_trip(client) == b"over TLS"
            await client.close()
    finally:
        await own.close()


async def refused(url: str, **options: object) -> BaseException:
    with pytest.raises((NatsError, OSError)) as caught:
        await nats.connect(url, token="tok", allow_reconnect=False, max_reconnect_attempts=0, **options)
    return caught.value


class ServerLog(logging.Handler):
    """The embedded server's warnings, awaitable."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self._more = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._more.set()

    async def said(self, text: str) -> None:
        async with asyncio.timeout(5):
            while not any(text in line for line in self.lines):
                self._more.clear()
                await self._more.wait()


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    handler = ServerLog()
    logging.getLogger(LOG).addHandler(handler)
    yield handler
    logging.getLogger(LOG).removeHandler(handler)


async def test_clients_without_a_valid_certificate_are_refused_and_logged(
    tls_server: EmbeddedNatsServer, ca: TestCA, tmp_path: Path, server_log: ServerLog
) -> None:
    stranger = TestCA(tmp_path / "elsewhere", "another CA").issue("node", usages=("client",))
    server_only = ca.issue("server-only", usages=("server",))
    for pair in (None, stranger, server_only):
        for require in (True, False):
            cert, key = (str(pair.cert), str(pair.key)) if pair else ("", "")
            tls = compute_tls(ca=str(ca.cert), cert=cert, key=key, require=require)
            await refused(tls_server.client_url, **tls.options())
    await server_log.said("refused a node connection without a valid client certificate")


async def test_a_client_without_tls_reads_nothing(tls_server: EmbeddedNatsServer, server_log: ServerLog) -> None:
    """nats-py without a context falls back on the system's trust store, which does not know the test CA; a client
    that speaks NATS in clear gets the server's INFO (which says TLS is required), then nothing: no PONG, no
    message."""
    assert isinstance(await refused(tls_server.client_url), ssl.SSLCertVerificationError)
    await server_log.said("a client failed the TLS handshake")

    own = await tls_server.connect_client("own")
    host, port = tls_server.client_url.removeprefix("nats://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as plain:
        info = plain.recv(65536)
        assert info.startswith(b"INFO ") and b'"tls_required":true' in info
        plain.sendall(b'CONNECT {"auth_token":"tok","verbose":false}\r\nSUB > 1\r\nPING\r\n')
        await own.publish("secret", b"job spec with env values")
        await own.flush()
        received = b""
        while chunk := await asyncio.to_thread(plain.recv, 65536):
            received += chunk
    await own.close()
    assert b"PONG" not in received and b"MSG" not in received and b"job spec" not in received


async def test_a_node_that_requires_tls_refuses_a_server_without_it(tmp_path: Path, ca: TestCA) -> None:
    """It opens with the TLS handshake, so it never sends its token in clear."""
    async with running(EmbeddedNatsServer("127.0.0.1", 0, tmp_path, token="tok")) as server:
        error = await refused(server.client_url, **compute_tls(ca=str(ca.cert), require=True).options())
        assert isinstance(error, ssl.SSLError)
        client = await nats.connect(server.client_url, token="tok", **compute_tls(ca=str(ca.cert)).options())
        await client.close()  # without RequireTLS, a CA alone trusts a server that offers TLS, and takes one without


@pytest.mark.parametrize(
    ("trusted", "usages", "says"),
    [
        ("another CA", ("server", "client"), "certificate verify failed"),
        ("its CA", ("server",), "clientAuth"),
    ],
    ids=["untrusted", "server-only-certificate"],
)
async def test_the_own_client_says_at_once_why_it_cannot_connect(
    tmp_path: Path, ca: TestCA, trusted: str, usages: tuple[str, ...], says: str
) -> None:
    pair = ca.issue("server", usages=usages)
    trust = ca.cert if trusted == "its CA" else TestCA(tmp_path / "other", trusted).cert
    tls = server_tls(str(pair.cert), str(pair.key), ca=str(trust), require_client_cert=trusted == "its CA")
    async with running(EmbeddedNatsServer("127.0.0.1", 0, tmp_path / "conf", tls=tls)) as server:
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ConfigurationError, match="cannot connect to its own NATS server") as caught:
            await server.connect_client("own", timeout=10)
        assert loop.time() - began < 5
        assert says in caught.value.message + caught.value.hint
