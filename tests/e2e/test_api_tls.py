"""The API over TLS: ``bacalhau serve`` with a certificate of a CA of ours or one made for it, the CLI and the
official Python client trusting it, and what is refused: an untrusted certificate, plain HTTP, bad settings."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from bacalhau_apiclient import Configuration, Job, SpecConfig, Task
from bacalhau_sdk.jobs import Jobs, PutJobRequest
from cryptography import x509

from tests.certs import CertFiles, TestCA
from tests.conftest import ServeProcess
from tests.e2e.test_serve import serve_once
from tests.helpers import wasm_job

pytestmark = pytest.mark.e2e

UNTRUSTED = "presented a certificate this client does not trust: unable to get local issuer certificate"


@pytest.fixture(scope="module")
def server_cert(test_ca: TestCA) -> CertFiles:
    return test_ca.issue("api server")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA, server_cert: CertFiles) -> Iterator[ServeProcess]:
    """A hybrid node serving its API over HTTPS with a certificate signed by the test CA."""
    serving = ServeProcess(tmp_path_factory.mktemp("tls") / "node", "--orchestrator", "--compute")
    serving.config = ["-c", f"API.TLS.CertFile={server_cert.cert}", "-c", f"API.TLS.KeyFile={server_cert.key}"]
    serving.ca_file = test_ca.cert
    yield serving.start()
    serving.stop()


def trusting(ca_file: Path) -> tuple[str, ...]:
    """The CLI settings that reach an HTTPS API whose certificate ``ca_file`` signed."""
    return ("-c", "API.TLS.UseTLS=true", "-c", f"API.TLS.CAFile={ca_file}")


def assert_one_clear_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    error, *hints = [line for line in result.stderr.splitlines() if line.strip()]
    assert error.startswith("Error: ") and all(line.startswith("Hint: ") for line in hints), result.stderr


def test_the_run_file_says_the_api_is_https(node: ServeProcess) -> None:
    assert node.url.startswith("https://")
    assert node.exports["BACALHAU_API_TLS_USETLS"] == "true"
    assert "BACALHAU_API_TLS_CAFILE" not in node.exports  # a certificate given: its CA is not the node's to say
    assert f"API listening on https://127.0.0.1:{node.port}" in node.log()


def test_the_cli_runs_describes_follows_and_downloads_a_job_over_https(
    node: ServeProcess, test_ca: TestCA, wasm: Callable[[str], bytes], tmp_path: Path
) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(wasm_job(wasm("hello"), "over-tls")))
    run = node.cli(*trusting(test_ca.cert), "job", "run", str(spec))
    assert "Completed successfully" in run.stdout
    job_id = run.stdout.split("Job ID: ")[1].split()[0]
    described = node.cli(*trusting(test_ca.cert), "job", "describe", job_id).stdout
    assert job_id in described and "Hello, world! over-tls" in described
    logs = node.cli(*trusting(test_ca.cert), "job", "logs", job_id).stdout  # a WebSocket over TLS
    assert logs == "Hello, world! over-tls\n"
    out = tmp_path / "results"
    out.mkdir()
    node.cli(*trusting(test_ca.cert), "job", "get", job_id, "--output-dir", str(out))
    assert (out / "stdout").read_text() == "Hello, world! over-tls\n"


def test_an_https_api_host_needs_no_other_setting(node: ServeProcess, test_ca: TestCA) -> None:
    """``--api-host https://...`` says TLS, as in the original; the CA is still the client's to trust."""
    url = f"https://127.0.0.1:{node.port}"
    alive = node.cli("--api-host", url, "-c", f"API.TLS.CAFile={test_ca.cert}", "agent", "alive")
    assert alive.stdout.strip() == "Status: OK"


def test_an_untrusted_certificate_is_one_clear_line(node: ServeProcess) -> None:
    untrusted = node.cli("-c", "API.TLS.UseTLS=true", "job", "list", check=False)
    assert_one_clear_error(untrusted, UNTRUSTED)
    assert "Hint:  trust the CA that signed it" in untrusted.stderr and "API.TLS.Insecure" in untrusted.stderr


def test_insecure_skips_the_check(node: ServeProcess) -> None:
    insecure = node.cli("-c", "API.TLS.UseTLS=true", "-c", "API.TLS.Insecure=true", "agent", "alive")
    assert insecure.stdout.strip() == "Status: OK"


def test_plain_http_never_reaches_the_api(node: ServeProcess) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{node.port}/api/v1/agent/alive", timeout=10)
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as raw:
        raw.sendall(b"GET /api/v1/agent/alive HTTP/1.1\r\nHost: node\r\n\r\n")
        try:
            answer = raw.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert b"HTTP/" not in answer and b"Status" not in answer
    plain = node.cli("agent", "alive", check=False)
    assert_one_clear_error(plain, f"the Bacalhau API at http://127.0.0.1:{node.port} closed the connection")
    assert "if the node serves its API over TLS, connect with https://" in plain.stderr
    assert "sent plain HTTP to this HTTPS server" in node.log()


def test_the_official_python_client_over_https(
    node: ServeProcess,
    test_ca: TestCA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """bacalhau-sdk says https when BACALHAU_HTTPS is set; it trusts certifi's CAs unless its default
    ``Configuration`` names a CA file (it reads no setting for one)."""
    monkeypatch.setenv("BACALHAU_HTTPS", "1")
    monkeypatch.setenv("BACALHAU_API_HOST", "127.0.0.1")
    monkeypatch.setenv("BACALHAU_API_PORT", str(node.port))
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path))
    configuration = Configuration()
    configuration.ssl_ca_cert = str(test_ca.cert)
    monkeypatch.setattr(Configuration, "_default", configuration)
    jobs = Jobs()
    job = Job(type="batch", count=1, tasks=[Task(name="main", engine=SpecConfig(type="noop"))])
    response = jobs.put(PutJobRequest(job=job))
    assert response is not None
    assert jobs.get(response.job_id).job.id == response.job_id
    printed = capsys.readouterr().out
    assert "Exception" not in printed, printed


def test_a_self_signed_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    serving = ServeProcess(tmp_path / "node", "--orchestrator")
    serving.config = ["-c", "API.TLS.SelfSigned=true"]
    serving.start()  # ready once an HTTPS request that trusts the run file's CA file succeeds
    cert, key = serving.data_dir / "tls" / "api.crt", serving.data_dir / "tls" / "api.key"
    assert serving.exports["BACALHAU_API_TLS_CAFILE"] == str(cert)
    assert key.stat().st_mode & 0o777 == 0o600
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert {"localhost", socket.gethostname()} <= set(names.value.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(address) for address in names.value.get_values_for_type(x509.IPAddress)}
    # A CLI on this machine reaches the node with what the run file exports.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")} | serving.exports
    alive = subprocess.run(
        [sys.executable, "-m", "bacalhau", "agent", "alive"], env=env, capture_output=True, text=True, timeout=60
    )
    assert alive.stdout.strip() == "Status: OK", alive.stderr
    made = cert.read_bytes(), key.read_bytes()
    serving.stop()
    serving.start()
    assert (cert.read_bytes(), key.read_bytes()) == made
    assert key.read_text().splitlines()[1] not in serving.log()
    serving.stop()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (("API.TLS.AutoCert=bacalhau.example.com",), "API.TLS.AutoCert is not supported"),
        (("API.TLS.CertFile={cert}",), "invalid config: API.TLS.CertFile is set without API.TLS.KeyFile"),
        (
            ("API.TLS.CertFile={cert}", "API.TLS.KeyFile={other_key}"),
            "the private key in API.TLS.KeyFile {other_key} does not match the certificate in API.TLS.CertFile {cert}",
        ),
    ],
)
def test_bad_tls_settings_stop_serve_with_a_clear_message(
    tmp_path: Path, test_ca: TestCA, server_cert: CertFiles, settings: tuple[str, ...], message: str
) -> None:
    files = {"cert": server_cert.cert, "other_key": test_ca.issue("someone else").key}
    result = serve_once(tmp_path / "node", "Orchestrator.Port=0", *(item.format(**files) for item in settings))
    assert_one_clear_error(result, message.format(**files))
    for path in files.values():
        if path.suffix == ".key":
            assert path.read_text().splitlines()[1] not in result.stderr


def test_the_web_ui_is_served_with_the_api_certificate(tmp_path: Path, test_ca: TestCA, server_cert: CertFiles) -> None:
    """With API.TLS, the web UI is HTTPS too (the same certificate), and names the API with https."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ui_port = probe.getsockname()[1]
    serving = ServeProcess(tmp_path / "node", "--orchestrator", "--webui")
    serving.config = [
        "-c", f"API.TLS.CertFile={server_cert.cert}", "-c", f"API.TLS.KeyFile={server_cert.key}",
        "-c", f"WebUI.Listen=127.0.0.1:{ui_port}",
    ]  # fmt: skip
    serving.ca_file = test_ca.cert
    serving.start()
    try:
        trusted = ssl.create_default_context(cafile=str(test_ca.cert))
        config = httpx.get(f"https://127.0.0.1:{ui_port}/config.json", verify=trusted, timeout=10)
        assert config.json() == {"api": f"https://127.0.0.1:{serving.port}"}
        page = httpx.get(f"https://127.0.0.1:{ui_port}/", verify=trusted, timeout=10)
        assert (
            f"connect-src 'self' https://127.0.0.1:{serving.port} wss://127.0.0.1:{serving.port};"
            in page.headers["content-security-policy"]
        )
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10)  # plain HTTP never reaches it
    finally:
        serving.stop()
