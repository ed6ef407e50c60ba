"""Running an ASGI app with uvicorn inside our event loop, on a socket we bind ourselves, guarded against clients that
hold connections open.

Binding first turns a taken port into a clear error (uvicorn would call ``sys.exit``), and lets port 0 pick a free
port whose number we can then report.

uvicorn times out a kept-alive connection only once it has answered a request on it: a new connection that sends
nothing, or half a request, stays open for ever, and it accepts connections until the process has no file
descriptor left. Its protocol is extended here with what Go's ``http.Server`` gives the original (deadlines for a
request's headers and for the whole request, measured from its first byte, and for an idle kept-alive connection),
a deadline for a response the client has stopped reading, and one limit on the connections that all servers of the
process hold together. Once a connection becomes a WebSocket (a followed log stream) none of this applies to it but
the limit.

With TLS, the protocol takes the plain TCP connection and upgrades it itself (``loop.start_tls``) rather than
letting asyncio hand it over only once a handshake is done: a connection is then counted and timed from its accept,
and its handshake has the headers' deadline, as Go's ``http.Server`` gives a handshake its ``ReadHeaderTimeout``.
Plain HTTP on a TLS port fails the handshake: it is closed and never reaches the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import resource
import socket
import ssl
import struct
from collections.abc import Coroutine, Iterator
from dataclasses import astuple, dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from bacalhau.errors import BacalhauError, ConfigurationError
from bacalhau.lib.throttle import Throttle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deadlines:
    """How long, in seconds, a client may take over each part of a connection's life before it is closed."""

    headers: float  # from a request's first byte (a new connection's accept) to the end of its headers
    request: float  # from the same start to the end of its body
    idle: float  # a kept-alive connection waiting for its next request
    stalled_response: float  # a response of which the client has taken nothing

    def scaled(self, factor: float) -> Deadlines:
        return Deadlines(*(value * factor for value in astuple(self)))


# A client that takes none of a response for this long is gone or hostile (TCP would take many minutes to notice).
# The original's API server has a 45 s WriteTimeout on the whole response; we time a stall instead, so that a long
# download or log stream that keeps moving is never cut.
STALLED_RESPONSE = 45.0

# The original's API server: ReadHeaderTimeout 5 s and ReadTimeout 20 s (pkg/publicapi/config.go); its IdleTimeout is
# unset, which Go takes to mean ReadTimeout.
API_DEADLINES = Deadlines(headers=5.0, request=20.0, idle=20.0, stalled_response=STALLED_RESPONSE)

# The original's local publisher: ReadHeaderTimeout and ReadTimeout 3 s, so 3 s idle too
# (pkg/publisher/local/server.go). Its clients send one bodiless GET for an archive.
PUBLISHER_DEADLINES = Deadlines(headers=3.0, request=3.0, idle=3.0, stalled_response=STALLED_RESPONSE)

# Tests only: a factor for every deadline, so that they can watch one pass without waiting seconds.
DEADLINE_SCALE_ENV = "BACALHAU_TEST_HTTP_DEADLINE_SCALE"

# File descriptors kept from HTTP connections for everything else a node opens: its stores, NATS, the files and
# engine connections of running executions, downloads. A quarter of the limit, and never fewer than this.
OPEN_FILES_RESERVE = 128

# Past this many, memory rather than descriptors is what connections would use up: an idle one costs the node about
# 7 KB (measured), plus the kernel's buffers. More than a node's clients ever need at once.
CONNECTIONS_CAP = 10_000

# A warning about misbehaving clients is logged at once, then at most once per interval with how often it recurred.
WARNING_INTERVAL = 10.0


def connection_limit(open_files: int) -> int:
    """How many connections all HTTP servers of a process may hold together, given its file descriptor limit: so
    many that a flood of connections cannot leave the node unable to open a file."""
    return max(1, min(CONNECTIONS_CAP, open_files - max(OPEN_FILES_RESERVE, open_files // 4)))


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard one, as Go programs (the original) do when they start: the
    connection limit is derived from it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bind(host: str, port: int, what: str, hint: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are TCP, and without it
    # every response on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot start the {what} on {host}:{port}: {exc.strerror or exc}", hint=hint
        ) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Connections:
    """The open connections of every HTTP server in this process (uvicorn's set for each, WebSockets included),
    under one limit, and those of them waiting for a request, longest first: a new connection over the limit
    displaces the one that has waited longest, as nginx reuses idle keep-alive connections, so that idle
    connections cannot lock clients out."""

    def __init__(self) -> None:
        self.servers: list[set[Any]] = []
        self.waiting: dict[_GuardedProtocol, None] = {}  # a dict for its order
        self._limit = 0

    @property
    def limit(self) -> int:
        if not self._limit:  # on first use, after the node raised its soft limit
            self._limit = connection_limit(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return self._limit

    def admit(self) -> bool | None:
        """Make room for a connection just opened (and counted): None if there was room, True if a waiting
        connection was closed for it, False if none could be."""
        if sum(len(connections) for connections in self.servers) <= self.limit:
            return None
        oldest = next(iter(self.waiting), None)
        if oldest is None:
            return False
        oldest.drop("displaced by a new connection at the connection limit")
        return True


_CONNECTIONS = _Connections()


class _Guard:
    """What the connections of one server share: their deadlines, warnings and TLS context (None: plain HTTP)."""

    def __init__(self, deadlines: Deadlines, server: str, tls: ssl.SSLContext | None) -> None:
        self.deadlines = deadlines.scaled(float(os.environ.get(DEADLINE_SCALE_ENV) or 1))
        self.server = server
        self.tls = tls
        self._throttle = Throttle(log, WARNING_INTERVAL)

    def warn(self, message: str, client: str) -> None:
        """A misbehaving client, throttled by what it did (``message``)."""
        self._throttle.warn(message, f"{self.server}: {message} (client {client})")


class _GuardedConfig(uvicorn.Config):
    def __init__(self, app: Any, guard: _Guard, **options: Any) -> None:
        super().__init__(app, http=_GuardedProtocol, **options)
        self.guard = guard


class _Reading(enum.Enum):
    NOTHING = enum.auto()
    HEADERS = enum.auto()
    BODY = enum.auto()


# A timer that fires this close to its deadline (timers keep milliseconds) counts as on time.
_TIMER_SLACK = 0.002

# SO_LINGER on, with a zero timeout: close() then resets the connection.
_RESET = struct.pack("ii", 1, 0)


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, with one read deadline at a time that follows the request being read (or the
    wait for one), a deadline for a stalled response, and the process's connection limit."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, _GuardedConfig)
        self._guard = config.guard
        self._reading = _Reading.HEADERS  # a new connection is read at once, as Go does
        self._started = self.loop.time()  # when the request being read began
        self._idle_since = 0.0
        self._closed = False  # or handed over to the WebSocket protocol
        self._due: tuple[float, _Reading] | None = None  # the deadline's time, and what it waits for
        self._timer: asyncio.TimerHandle | None = None  # at the deadline or before it
        self._stall: asyncio.TimerHandle | None = None
        self._early: list[bytes] | None = None  # while TLS is set up: what arrived before the TLS transport is ours

    # What happens to the connection: each step reviews the deadline.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        admitted = _CONNECTIONS.admit()
        if admitted is not None:
            limit = f"this process has {_CONNECTIONS.limit} connections open, its limit"
            if admitted:
                self._guard.warn(f"{limit}: closed the one waiting longest for a request", self._client())
            else:
                self._guard.warn(f"{limit}, and none is waiting for a request: refused one", self._client())
                self.drop("refused at the connection limit")
                return
        self._review()
        if self._guard.tls is not None:
            self._start_tls(transport, self._guard.tls)

    def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        """Hand the connection to TLS now, before the loop reads from it: ``start_tls`` is run here up to its wait
        for the handshake, and resumed once the handshake is done. (A task would start it an iteration later, when
        uvloop may already have given the client's first bytes to this protocol, lost to TLS.)"""
        self._early = []
        # A client that leaves without answering our close_notify holds its connection no longer than a request's
        # headers may take.
        upgrade = self.loop.start_tls(
            transport, self, context, server_side=True, ssl_shutdown_timeout=self._guard.deadlines.headers
        )
        handshake = upgrade.send(None)  # the future that start_tls waits for
        handshake.add_done_callback(lambda _: self._tls_started(upgrade, transport))

    def _tls_started(
        self, upgrade: Coroutine[Any, Any, asyncio.Transport | None], transport: asyncio.Transport
    ) -> None:
        """Serve the connection on its TLS transport, or close it if the handshake failed."""
        secure: asyncio.Transport | None = None
        try:
            upgrade.send(None)
        except StopIteration as done:
            secure = done.value
        except ssl.SSLError as exc:
            if not self._closed:  # (else a deadline closed it, and said so)
                reason = str(exc.reason or exc.strerror or "").lower().replace("_", " ")
                failure = (
                    "sent plain HTTP to this HTTPS server" if reason == "http request" else f"failed TLS: {reason}"
                )
                self._guard.warn(f"closed a connection that {failure}", self._client())
        except OSError as exc:  # reset, or aborted by a deadline
            log.debug("TLS handshake with %s ended: %s", self._client(), exc)
        early, self._early = self._early or [], None
        if secure is None or secure.is_closing() or self._closed:  # (a client that left during it: no error)
            self._end()
            self.connections.discard(self)
            transport.abort()
            return
        super().connection_made(secure)  # the TLS transport replaces the plain one: scheme https
        self._started = self.loop.time()  # the request's headers have their own deadline, as in Go
        self._review()
        for data in early:
            super().data_received(data)

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early.append(data)  # (the handshake is done, but its transport is not yet ours)
        else:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._reading is not _Reading.HEADERS:  # (a new connection's first request is timed from its accept)
            self._reading = _Reading.HEADERS
            self._started = self.loop.time()
        self._review()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading = _Reading.BODY
        self._review()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = _Reading.NOTHING
        self._review()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # (else uvicorn closed it after the response: nothing to wait for)
            self._unset_keepalive_if_required()  # uvicorn's own idle deadline: ours replaces it
            self._idle_since = self.loop.time()
            self._review()

    def handle_websocket_upgrade(self) -> None:
        self._end()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None and not self._closed:
            self._stall = self.loop.call_later(self._guard.deadlines.stalled_response, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def drop(self, reason: str) -> None:
        """Close at once with a reset, keeping nothing in user or kernel buffers for a client that misbehaves;
        ``reason`` says why, for a debug log."""
        log.debug("closing the connection from %s: %s", self._client(), reason)
        self._end()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.transport.abort()

    # The deadline: one at a time, for what the connection is waiting for.

    def _review(self) -> None:
        deadlines = self._guard.deadlines
        serving = bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)
        due: tuple[float, _Reading] | None = None
        if self._closed:
            pass
        elif self._reading is _Reading.HEADERS:
            due = (self._started + deadlines.headers, _Reading.HEADERS)
        elif self._reading is _Reading.BODY:
            due = (self._started + deadlines.request, _Reading.BODY)
        elif not serving:
            due = (self._idle_since + deadlines.idle, _Reading.NOTHING)
        if not serving and due is not None:
            _CONNECTIONS.waiting[self] = None  # (where it was, if it was)
        else:
            _CONNECTIONS.waiting.pop(self, None)
        self._due = due
        # The timer moves only to an earlier deadline; when it fires early it moves on to the one then due. So a
        # busy connection costs no timer per request.
        if due is not None and (self._timer is None or due[0] < self._timer.when()):
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(due[0], self._check)

    def _check(self) -> None:
        self._timer = None
        if self._due is None:
            return
        when, reading = self._due
        if when - self.loop.time() > _TIMER_SLACK:
            self._timer = self.loop.call_at(when, self._check)
        else:
            self._expired(reading)

    def _expired(self, reading: _Reading) -> None:
        deadlines = self._guard.deadlines
        if reading is _Reading.HEADERS:
            failure = f"sent no complete request headers in {deadlines.headers:g} s"
        elif reading is _Reading.BODY:
            failure = f"sent no complete request in {deadlines.request:g} s"
        else:  # an idle kept-alive connection: ordinary
            self._end()
            self.transport.close()
            return
        self._guard.warn(f"closed a connection that {failure}", self._client())
        self.drop(failure)

    def _stalled(self) -> None:
        self._stall = None
        failure = f"took none of a response for {self._guard.deadlines.stalled_response:g} s"
        self._guard.warn(f"closed a connection that {failure}", self._client())
        self.drop(failure)

    def _end(self) -> None:
        self._closed = True
        self._review()
        for timer in (self._timer, self._stall):
            if timer is not None:
                timer.cancel()
        self._timer = self._stall = None

    def _client(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"


class _QuietServer(uvicorn.Server):
    """uvicorn would take over SIGINT/SIGTERM; the node handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """One server on a socket bound with ``bind``; ``what`` names it in warnings. With ``tls``, it serves HTTPS
    only."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        what: str,
        deadlines: Deadlines,
        *,
        tls: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        self.sock = sock
        self.tls = tls
        self._guard = _Guard(deadlines, f"{what} on port {self.port}", tls)
        config = _GuardedConfig(app, self._guard, log_config=None, access_log=False, lifespan="off", **options)
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        _CONNECTIONS.servers.append(self._server.server_state.connections)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise BacalhauError("HTTP server stopped during start-up")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        _CONNECTIONS.servers.remove(self._server.server_state.connections)
        self.sock.close()
