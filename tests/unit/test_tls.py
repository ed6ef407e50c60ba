"""TLS contexts from files (clear errors that name the file, never its contents), the certificate a node makes for
itself, what a node serves its API with, and how a client checks a server."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bacalhau.config import BacalhauConfig
from bacalhau.errors import ConfigurationError
from bacalhau.lib import certs, tls
from bacalhau.node import Node
from tests.certs import CertFiles, TestCA

NAMES = ("API.TLS.CertFile", "API.TLS.KeyFile")


@pytest.fixture
def server(test_ca: TestCA) -> CertFiles:
    return test_ca.issue("unit server")


def test_a_certificate_and_its_key_make_a_server_context(server: CertFiles) -> None:
    context = certs.server_context(str(server.cert), str(server.key), *NAMES)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def encrypted_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(b"secret")
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("{dir}/none.crt", "{key}", "API.TLS.CertFile {dir}/none.crt does not exist"),
        ("{key}", "{key}", "API.TLS.CertFile {key} holds no PEM certificate"),
        ("{cert}", "{cert}", "API.TLS.KeyFile {cert} holds no PEM private key that can be used"),
        ("{cert}", "{encrypted}", "API.TLS.KeyFile {encrypted} is encrypted"),
        ("{cert}", "{other}", "the private key in API.TLS.KeyFile {other} does not match the certificate in"),
        ("{dir}", "{key}", "cannot read API.TLS.CertFile {dir}: Is a directory"),
    ],
)
def test_bad_files_are_clear_errors_that_name_them(
    test_ca: TestCA, server: CertFiles, tmp_path: Path, cert: str, key: str, message: str
) -> None:
    files = {
        "dir": str(tmp_path),
        "cert": str(server.cert),
        "key": str(server.key),
        "other": str(test_ca.issue("other").key),
        "encrypted": str(encrypted_key(tmp_path / "encrypted.key")),
    }
    with pytest.raises(ConfigurationError) as raised:
        certs.server_context(cert.format(**files), key.format(**files), *NAMES)
    assert message.format(**files) in raised.value.message
    assert server.key.read_text().splitlines()[1] not in str(raised.value) + raised.value.hint


def test_a_self_signed_certificate_is_made_once_for_its_hosts(tmp_path: Path) -> None:
    cert, key = certs.self_signed(tmp_path / "tls", ["node-a", "localhost", "127.0.0.1", "localhost"])
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    assert key.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["node-a", "localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    made = cert.read_bytes(), key.read_bytes()
    assert certs.self_signed(tmp_path / "tls", ["another-name"]) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == made
    # It trusts itself as a CA: a client given it as its CA file accepts it.
    certs.server_context(str(cert), str(key), *NAMES)
    assert ssl.create_default_context(cafile=str(cert)).cert_store_stats()["x509_ca"] == 1


def test_a_self_signed_certificate_near_its_end_is_made_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = certs.self_signed(tmp_path, ["node"])
    first = cert.read_bytes()
    monkeypatch.setattr(certs, "SELF_SIGNED_RENEWAL", certs.VALIDITY + datetime.timedelta(days=1))
    certs.self_signed(tmp_path, ["node"])
    assert cert.read_bytes() != first


def test_a_broken_self_signed_certificate_says_how_to_get_a_new_one(tmp_path: Path) -> None:
    cert, key = certs.self_signed(tmp_path, ["node"])
    cert.write_text("not a certificate")
    with pytest.raises(ConfigurationError) as raised:
        certs.self_signed(tmp_path, ["node"])
    assert "the self-signed certificate kept for this node is unusable" in raised.value.message
    assert raised.value.hint == f"delete {cert} and {key} to have new ones made"


def test_the_client_trusts_the_ca_file_alone_or_checks_nothing_when_insecure(test_ca: TestCA, tmp_path: Path) -> None:
    trusting = tls.client_context(str(test_ca.cert), False, "API.TLS.CAFile")
    assert trusting.verify_mode is ssl.CERT_REQUIRED and trusting.check_hostname
    assert trusting.cert_store_stats()["x509_ca"] == 1
    insecure = tls.client_context("", True, "API.TLS.CAFile")
    assert insecure.verify_mode is ssl.CERT_NONE and not insecure.check_hostname
    with pytest.raises(ConfigurationError, match=r"API.TLS.CAFile .*missing.pem does not exist"):
        tls.client_context(str(tmp_path / "missing.pem"), False, "API.TLS.CAFile")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(ConfigurationError, match=r"API.TLS.CAFile .*junk.pem holds no PEM certificate"):
        tls.client_context(str(tmp_path / "junk.pem"), False, "API.TLS.CAFile")


def node_with(tmp_path: Path, **settings: object) -> Node:
    config = BacalhauConfig.defaults().with_settings(
        {"DataDir": str(tmp_path), **{f"API.TLS.{name}": value for name, value in settings.items()}}
    )
    return Node(config)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"AutoCert": "node.example.com"}, "API.TLS.AutoCert is not supported"),
        ({"CertFile": "c.pem"}, "invalid config: API.TLS.CertFile is set without API.TLS.KeyFile"),
        ({"KeyFile": "k.pem", "SelfSigned": True}, "invalid config: API.TLS.KeyFile is set without API.TLS.CertFile"),
    ],
)
def test_settings_a_node_cannot_serve_are_refused(tmp_path: Path, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        node_with(tmp_path, **settings).api_tls()


def test_given_files_win_over_a_self_signed_certificate(tmp_path: Path, server: CertFiles) -> None:
    node = node_with(tmp_path, CertFile=str(server.cert), KeyFile=str(server.key), SelfSigned=True)
    assert node.api_tls() is not None and node.self_signed_cert is None
    assert not (tmp_path / "tls").exists()
    assert node_with(tmp_path).api_tls() is None
