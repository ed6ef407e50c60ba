"""TLS on NATS: the embedded server's settings (``Orchestrator.TLS``) and how our clients connect to it.

Compute nodes check the server's certificate against ``Compute.TLS.CACert``, or the system's trust store when none is
set, and by the host name of the orchestrator's URL. With ``Compute.TLS.RequireTLS`` a node opens with the TLS
handshake before the server says anything, as the original's nodes do: nats-py has no other way to refuse a server
without TLS (it goes on in clear even with a ``tls://`` URL, sending the node token). The embedded server accepts both
that and the usual upgrade after its INFO (see :data:`TLS_FIRST_WAIT`).

Mutual TLS (``Orchestrator.TLS.RequireClientCert``, beyond the original): the server asks every client for a
certificate signed by ``Orchestrator.TLS.CACert``. The node's own clients (the orchestrator's, and a hybrid node's
compute half) connect over loopback to a server it started itself, and present the server's own certificate: a
certificate and key this node holds anyway, signed by that same CA, so there is no second key to keep and no second
way in. That certificate must allow client authentication (extended key usage ``clientAuth``, as certificates made
for both ends of a link are); the node says so at start when its own connection is refused. nats-server serves
clients on one listener only, so a separate listener for local clients without certificates would need another
protocol (websocket) and another open port.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bacalhau.errors import ConfigurationError
from bacalhau.lib import certs, tls

DEFAULT_TIMEOUT = 10
"""Seconds a client has for its TLS handshake when ``Orchestrator.TLS.ServerTimeout`` is 0 (the original's default)."""

TLS_FIRST_WAIT = "500ms"
"""How long the server waits for a client to open with the TLS handshake before it sends its INFO in clear and expects
the usual upgrade. A client that opens with TLS does so at once; the wait is paid, once per connection, only by
clients that upgrade, and is long enough that a busy client is not taken for one that does not."""


@dataclass(frozen=True)
class ClientTls:
    """How one of our NATS clients does TLS.

    ``context``: None leaves nats-py's default (the system's trust store, used only if the server asks for TLS).
    ``first``: open with the TLS handshake, refusing a server without TLS. ``certificate``: the context presents a
    client certificate."""

    context: ssl.SSLContext | None = None
    first: bool = False
    certificate: bool = False

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``nats.connect`` that say this."""
        return {"tls": self.context, "tls_handshake_first": self.first}


@dataclass(frozen=True)
class ServerTls:
    """The embedded server's TLS: its certificate and key, the seconds a client has for its handshake, and with
    ``verify_clients`` the CA whose certificates every client must present (``ca`` is also what the node's own
    clients trust the server's certificate with; empty: the system's trust store)."""

    cert: str
    key: str
    ca: str = ""
    timeout: float = DEFAULT_TIMEOUT
    verify_clients: bool = False

    def check(self) -> None:
        """Refuse, naming the setting and the file, what nats-server would fail on (or fail each client on) less
        clearly: a file missing or unreadable, not PEM, encrypted, or a key that is not the certificate's."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _load_key_pair(context, self.cert, self.key, "Orchestrator.TLS.ServerCert", "Orchestrator.TLS.ServerKey")
        if self.ca:
            _client_context(self.ca, "Orchestrator.TLS.CACert")

    def local_client(self) -> ClientTls:
        """How the node's own clients connect to this server: TLS first (the server takes it), the server's
        certificate checked against ``ca`` but not by host name (they reach it on an address of this machine, held by
        the server the node started, whatever names its certificate was made for), and presenting that same
        certificate when clients must present one (see the module's description)."""
        context = _client_context(self.ca, "Orchestrator.TLS.CACert")
        context.check_hostname = False
        if self.verify_clients:
            _load_key_pair(context, self.cert, self.key, "Orchestrator.TLS.ServerCert", "Orchestrator.TLS.ServerKey")
        return ClientTls(context, first=True, certificate=self.verify_clients)


def server_tls(
    cert: str, key: str, *, ca: str = "", timeout: int = 0, require_client_cert: bool = False
) -> ServerTls | None:
    """``Orchestrator.TLS`` as the server's settings; None without a certificate (plain NATS, as by default)."""
    if not cert and not key:
        if require_client_cert:
            raise ConfigurationError(
                "Orchestrator.TLS.RequireClientCert needs TLS on the NATS server",
                hint="set Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey",
            )
        return None
    if not cert or not key:
        raise ConfigurationError("Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey must be set together")
    if timeout < 0:
        raise ConfigurationError(f"Orchestrator.TLS.ServerTimeout must be a positive number of seconds, got {timeout}")
    if require_client_cert and not ca:
        raise ConfigurationError(
            "Orchestrator.TLS.RequireClientCert needs Orchestrator.TLS.CACert: the CA whose certificates may connect",
            hint="the system's trust store would let any certificate from a public CA in",
        )
    return ServerTls(
        _absolute(cert), _absolute(key), _absolute(ca) if ca else "", timeout or DEFAULT_TIMEOUT, require_client_cert
    )


def compute_tls(*, ca: str = "", cert: str = "", key: str = "", require: bool = False) -> ClientTls:
    """``Compute.TLS``: how a compute node connects to a remote orchestrator."""
    if bool(cert) != bool(key):
        raise ConfigurationError("Compute.TLS.ClientCert and Compute.TLS.ClientKey must be set together")
    if not (ca or cert or require):
        return ClientTls()
    context = _client_context(ca, "Compute.TLS.CACert")
    if cert:
        _load_key_pair(context, cert, key, "Compute.TLS.ClientCert", "Compute.TLS.ClientKey")
    return ClientTls(context, first=require, certificate=bool(cert))


def _absolute(path: str) -> str:
    """A path as nats-server, started elsewhere one day, must read it: resolved from where the node was started."""
    return str(Path(path).absolute())


def _client_context(ca: str, setting: str) -> ssl.SSLContext:
    """A context that checks servers, by host name, against the CA file ``ca`` alone, or the system's trust store
    without one (as nats-server's clients do; the API's client uses certifi's instead)."""
    return tls.ca_context(ca, setting) if ca else ssl.create_default_context()


def _load_key_pair(context: ssl.SSLContext, cert: str, key: str, cert_setting: str, key_setting: str) -> None:
    """Present this certificate and key, checked first so that a bad file is refused by setting and name."""
    certs.check_key_pair(cert, key, cert_setting, key_setting)
    context.load_cert_chain(cert, key)
