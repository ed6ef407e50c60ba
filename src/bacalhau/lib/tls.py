"""How a client checks a server's certificate (the API's CLI client, and NATS clients trusting a CA file).

Only the standard library's ``ssl`` and httpx here: the CLI imports this at start, and the certificate tooling
(``bacalhau.lib.certs``, on cryptography) would add a fifth of a second to every command.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from bacalhau.errors import ConfigurationError

# The original refuses older protocols on its TLS servers and clients.
MIN_VERSION = ssl.TLSVersion.TLSv1_2


def ca_context(ca_file: str, ca_setting: str) -> ssl.SSLContext:
    """A client context that checks servers (by host name) against the certificates of ``ca_file`` alone."""
    try:
        context = ssl.create_default_context(cafile=str(Path(ca_file).expanduser()))
    except FileNotFoundError:
        raise ConfigurationError(f"{ca_setting} {ca_file} does not exist", component="TLS") from None
    except ssl.SSLError:
        raise ConfigurationError(
            f"{ca_setting} {ca_file} holds no PEM certificate", component="TLS",
            hint="it must begin with -----BEGIN CERTIFICATE-----",
        ) from None  # fmt: skip
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read {ca_setting} {ca_file}: {exc.strerror or exc}", component="TLS"
        ) from None
    context.minimum_version = MIN_VERSION
    return context


def client_context(ca_file: str, insecure: bool, ca_setting: str) -> ssl.SSLContext:
    """How a client checks a server's certificate, as the original's client does: against the CA file alone when
    one is given, not at all when insecure (tests only), else against httpx's default trust (certifi's CAs, or
    ``SSL_CERT_FILE``)."""
    if ca_file:
        return ca_context(ca_file, ca_setting)
    context = httpx.create_ssl_context(verify=not insecure)
    context.minimum_version = MIN_VERSION
    return context
