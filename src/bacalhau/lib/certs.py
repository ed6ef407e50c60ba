"""Certificates and keys in PEM files: checked first so that a bad file is one clear error naming it, a server's TLS
context made from them, and a certificate made once for a node that has none.

Each function takes the names of the settings its files came from (``API.TLS.CertFile``...), for its messages.
Nothing here ever puts a key's contents in a message or a log.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bacalhau.errors import ConfigurationError
from bacalhau.lib.tls import MIN_VERSION

log = logging.getLogger(__name__)

# A certificate made here lasts a year, as the original's self-signed ones do; a node's own is made anew once it has
# less than SELF_SIGNED_RENEWAL left, so that a node restarted now and then never serves an expired one.
VALIDITY = datetime.timedelta(days=365)
SELF_SIGNED_RENEWAL = datetime.timedelta(days=30)


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{setting} {path} does not exist", component="TLS") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read {setting} {path}: {exc.strerror or exc}", component="TLS") from None


def _public(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_certificate(path: str, setting: str) -> x509.Certificate:
    """The first certificate of a PEM file (a server's own, before its chain)."""
    try:
        return x509.load_pem_x509_certificates(_read(path, setting))[0]
    except ValueError:
        raise ConfigurationError(
            f"{setting} {path} holds no PEM certificate",
            component="TLS",
            hint="it must begin with -----BEGIN CERTIFICATE-----",
        ) from None


def check_key_pair(cert_file: str, key_file: str, cert_setting: str, key_setting: str) -> x509.Certificate:
    """The certificate of a certificate file and key file that belong together; what is wrong with them otherwise."""
    certificate = _read_certificate(cert_file, cert_setting)
    try:
        key = serialization.load_pem_private_key(_read(key_file, key_setting), password=None)
    except TypeError:  # a passphrase would be needed
        raise ConfigurationError(
            f"{key_setting} {key_file} is encrypted", component="TLS", hint="give the private key without a passphrase"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigurationError(
            f"{key_setting} {key_file} holds no PEM private key that can be used", component="TLS"
        ) from None
    if _public(key.public_key()) != _public(certificate.public_key()):
        raise ConfigurationError(
            f"the private key in {key_setting} {key_file} does not match the certificate in {cert_setting} {cert_file}",
            component="TLS",
        )
    return certificate


def server_context(cert_file: str, key_file: str, cert_setting: str, key_setting: str) -> ssl.SSLContext:
    """A server's TLS context with this certificate (and any chain after it in the file) and its key."""
    certificate = check_key_pair(cert_file, key_file, cert_setting, key_setting)
    now = datetime.datetime.now(datetime.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        log.warning(
            "the certificate in %s %s is valid only from %s to %s: clients will refuse it",
            cert_setting, cert_file, certificate.not_valid_before_utc, certificate.not_valid_after_utc,
        )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSION
    try:
        context.load_cert_chain(Path(cert_file).expanduser(), Path(key_file).expanduser())
    except ssl.SSLError as exc:  # what the checks above let through, such as a broken chain after the certificate
        raise ConfigurationError(
            f"cannot use {cert_setting} {cert_file} with {key_setting} {key_file}: {exc.reason or exc}",
            component="TLS",
        ) from None
    return context


def self_signed(directory: Path, hosts: Iterable[str]) -> tuple[Path, Path]:
    """A self-signed certificate for ``hosts`` (names or addresses) and its key, made in ``directory`` the first time
    (the key readable by its owner alone from its creation) and reused later, until it nears its end: clients that
    trust it keep trusting it across restarts. Delete both files to have new ones made."""
    cert_file, key_file = directory / "api.crt", directory / "api.key"
    if cert_file.exists() and key_file.exists():
        try:
            certificate = check_key_pair(str(cert_file), str(key_file), "the certificate", "the key")
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"the self-signed certificate kept for this node is unusable: {exc.message}", component="TLS",
                hint=f"delete {cert_file} and {key_file} to have new ones made",
            ) from None  # fmt: skip
        if certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > SELF_SIGNED_RENEWAL:
            return cert_file, key_file
        log.info(
            "the self-signed certificate %s expires on %s: making a new one", cert_file, certificate.not_valid_after_utc
        )
    names = list(dict.fromkeys(hosts))
    key = ec.generate_private_key(ec.SECP256R1())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_new(key_file, private_pem(key), 0o600)
    certificate = issue(key, names, name=names[0], ca=True)
    _write_new(cert_file, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("made a self-signed certificate for %s: %s", ", ".join(names), cert_file)
    return cert_file, key_file


def issue(
    key: ec.EllipticCurvePrivateKey,
    hosts: list[str],
    *,
    name: str,
    ca: bool,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    usages: tuple[str, ...] = ("server", "client"),
) -> x509.Certificate:
    """A certificate for ``key``, valid for ``hosts`` (names or addresses) for ``usages`` (``server``, ``client``),
    signed by ``issuer`` or by itself. ``ca`` lets it sign others, and a self-signed server certificate be trusted as
    a CA (``API.TLS.CAFile``) under the strictest checks."""
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bacalhau"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])  # fmt: skip
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # for clients whose clocks are a little behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(_CA_USAGE if ca else _LEAF_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([_EXTENDED_USAGES[usage] for usage in usages]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, key_cert_sign=signs_certificates, crl_sign=signs_certificates,
        content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


_EXTENDED_USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
_CA_USAGE = _usage(signs_certificates=True)
_LEAF_USAGE = _usage(signs_certificates=False)


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_new(path: Path, content: bytes, mode: int) -> None:
    """Write a file whole under its final name (a crash leaves the old one or none), with ``mode`` from its
    creation."""
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
