"""The web UI's HTTP side: a small ASGI app that serves the files of ``static/`` and tells the browser where the API
is. The UI itself is hand-written HTML, CSS and JavaScript modules that call the REST API straight from the browser
(the API allows any origin); nothing here reads a job or a node.

What a browser is sent, and why:

- ``/`` (and ``/index.html``): the page, never cached, with a strict Content-Security-Policy: scripts, styles and
  images from this server only (no inline script, no ``eval``), connections to this server and to the API's origin
  (``http``/``https`` and ``ws``/``wss``), no framing, no plugins, no forms sent anywhere.
- ``/config.json``: ``{"api": "<base URL>"}``, the API as the browser reaches it: ``WebUI.Backend`` when set, else
  this node's API on the host the browser reached the UI with (when the API listens on every address) or on the
  API's own address.
- ``/assets/<build>/...``: every other file, under a name that changes with the files' content, so that they can be
  cached for a year; a stale page that asks for an older build gets a 404 and, once reloaded, the new files.

Only the files found under ``static/`` when the app is made can be served (a fixed table of paths to contents): no
request path is ever joined to a folder, so no path can leave it.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from bacalhau.errors import ConfigurationError

ASSETS = "/assets/"
ASSETS_PLACEHOLDER = "{{ASSETS}}"
INDEX = "index.html"
LONG_CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# A Host header as a browser sends it: a DNS name or IPv4 address, or an IPv6 address in brackets, and a port.
_HOST = re.compile(r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
]


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class ApiLocation:
    """Where the browser finds the API: ``backend`` (a base URL) when given, else ``scheme://host:port``, with the
    host the browser used for the UI when ``host`` is a wildcard address."""

    scheme: str = "http"
    host: str = ""
    port: int = 1234
    backend: str = ""

    def base_url(self, request_host: str) -> str:
        if self.backend:
            return self.backend
        host = request_host if self.host in WILDCARD_HOSTS else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"


def check_backend(backend: str) -> str:
    """``WebUI.Backend`` as the UI uses it (no trailing slash), or a configuration error: an http(s) URL with a host,
    and nothing a browser would not send as the start of a request (credentials, query, fragment)."""
    if not backend:
        return ""
    parts = urlsplit(backend)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(
            f"invalid WebUI.Backend {backend!r}: expected an http or https URL such as http://orchestrator:1234",
            hint="give the API's address as browsers reach it, or leave WebUI.Backend empty for this node's own API",
        )
    if parts.username or parts.password:
        raise ConfigurationError(
            "invalid WebUI.Backend: a URL with credentials in it would show them to every browser",
            hint="give the address alone: the UI asks its users for credentials when the API wants them",
        )
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise ConfigurationError(f"invalid WebUI.Backend {backend!r}: bad port") from None
    return backend.rstrip("/")


def parse_listen(listen: str) -> tuple[str, int]:
    """``WebUI.Listen`` as (host, port): ``host:port``, ``:port`` or ``[v6]:port``."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"invalid WebUI.Listen {listen!r}: expected host:port, e.g. 0.0.0.0:8438",
            hint="set WebUI.Listen to the address and port the web UI should listen on",
        )
    return host.removeprefix("[").removesuffix("]") or "0.0.0.0", int(port)


def load_assets() -> tuple[str, dict[str, Asset]]:
    """Every file of ``static/`` by its path there, and a build name made from all their contents."""
    root = resources.files(__package__).joinpath("static")
    found: dict[str, bytes] = {}
    pending: list[tuple[str, Any]] = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                pending.append((name + "/", entry))
            elif entry.is_file() and not entry.name.startswith("."):
                found[name] = entry.read_bytes()
    digest = hashlib.sha256()
    for name in sorted(found):
        digest.update(name.encode() + b"\0" + hashlib.sha256(found[name]).digest())
    build = digest.hexdigest()[:16]
    assets = {}
    for name, body in found.items():
        if name == INDEX:
            body = body.replace(ASSETS_PLACEHOLDER.encode(), f"{ASSETS}{build}".encode())
        suffix = PurePosixPath(name).suffix
        content_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        assets[name] = Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    if INDEX not in assets:
        raise RuntimeError("the web UI's index.html is missing from the package")
    return build, assets


def content_security_policy(api: str) -> str:
    """The page's policy, with the API's origin (a source with a path would allow that one path alone)."""
    parts = urlsplit(api)
    api = f"{parts.scheme}://{parts.netloc}"
    websocket = "ws" + api.removeprefix("http")  # http -> ws, https -> wss
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {api} {websocket}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


class WebUiApp:
    """The ASGI app: GET and HEAD of the page, its config and its assets; nothing else."""

    def __init__(self, api: ApiLocation) -> None:
        self.api = api
        self.build, self.assets = load_assets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._send(
                send, scope, 405, b"Method Not Allowed\n", "text/plain; charset=utf-8", [(b"allow", b"GET, HEAD")]
            )
            return
        path = scope["path"]
        host = self._request_host(scope)
        if host is None:
            await self._send(send, scope, 400, b"Bad Request: Host header\n", "text/plain; charset=utf-8")
            return
        api = self.api.base_url(host)
        if path in ("/", "/index.html"):
            page = self.assets[INDEX]
            headers = [
                (b"content-security-policy", content_security_policy(api).encode()),
                (b"cache-control", NO_CACHE.encode()),
            ]
            await self._send(send, scope, 200, page.body, page.content_type, headers, etag=page.etag)
        elif path == "/config.json":
            body = json.dumps({"api": api}).encode()
            await self._send(send, scope, 200, body, "application/json", [(b"cache-control", b"no-store")])
        elif path.startswith(ASSETS):
            build, _, name = path[len(ASSETS) :].partition("/")
            asset = self.assets.get(name) if build == self.build and name != INDEX else None
            if asset is None:
                await self._not_found(send, scope)
            else:
                await self._send(
                    send,
                    scope,
                    200,
                    asset.body,
                    asset.content_type,
                    [(b"cache-control", LONG_CACHE.encode())],
                    etag=asset.etag,
                )
        else:
            await self._not_found(send, scope)

    @staticmethod
    def _request_host(scope: Scope) -> str | None:
        """The host (without its port) the browser reached this server with; None for a Host header no browser
        sends. Without one (HTTP/1.0), the address the connection came in on."""
        values = [value for name, value in scope["headers"] if name == b"host"]
        if not values:
            server = scope.get("server")
            return str(server[0]) if server else "127.0.0.1"
        if len(values) > 1:
            return None
        match = _HOST.fullmatch(values[0].decode("latin-1"))
        return match.group("host") if match else None

    async def _not_found(self, send: Send, scope: Scope) -> None:
        await self._send(
            send, scope, 404, b"Not Found\n", "text/plain; charset=utf-8", [(b"cache-control", NO_CACHE.encode())]
        )

    @staticmethod
    async def _send(
        send: Send,
        scope: Scope,
        status: int,
        body: bytes,
        content_type: str,
        extra: list[tuple[bytes, bytes]] | None = None,
        *,
        etag: str = "",
    ) -> None:
        headers = [(b"content-type", content_type.encode()), *_SECURITY_HEADERS, *(extra or [])]
        if not any(name == b"content-security-policy" for name, _ in headers):
            headers.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
        if etag:
            headers.append((b"etag", etag.encode()))
            if any(name == b"if-none-match" and etag.encode() in value for name, value in scope["headers"]):
                status, body = 304, b""
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
