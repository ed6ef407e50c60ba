"""Test certificates: a CA of our own, and certificates it signs, written as PEM files for nodes and clients.

Made with ``bacalhau.lib.certs.issue``, the code that makes a node's self-signed certificate. Use the session fixture
``test_ca`` (tests/conftest.py) where one CA will do, so that a run makes its keys once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bacalhau.lib.certs import issue, private_pem

LOOPBACK = ["127.0.0.1", "localhost", "::1"]


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


class TestCA:
    """A certificate authority whose certificate is in ``cert`` (what a client trusts: ``API.TLS.CAFile``,
    ``Compute.TLS.CACert``), writing what it makes into ``directory``."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path, name: str = "Bacalhau test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._certificate = issue(self._key, [], name=name, ca=True)
        self.cert = self._write(f"{_slug(name)}.crt", self._certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, hosts: list[str] | None = None, usages: tuple[str, ...] = ("server", "client")
    ) -> CertFiles:
        """A certificate signed by this CA for ``hosts`` (loopback by default), for ``usages`` (server, client)."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = issue(
            key, hosts or LOOPBACK, name=name, ca=False, issuer=(self._certificate, self._key), usages=usages
        )
        cert = self._write(f"{_slug(name)}.crt", certificate.public_bytes(serialization.Encoding.PEM))
        return CertFiles(cert, self._write(f"{_slug(name)}.key", private_pem(key), mode=0o600))

    def _write(self, name: str, content: bytes, mode: int = 0o644) -> Path:
        path = self.directory / name
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        return path


def _slug(name: str) -> str:
    return "-".join(name.lower().split())
