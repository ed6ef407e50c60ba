"""HTTP for WebAssembly programs: the host module ``wasi:http/requests`` with the original's ABI.

One function, ``http_request``, of twelve ``i32`` parameters and an ``i32`` result (the original's
``pkg/executor/wasm/funcs/http``)::

    http_request(method,                                   ;; 0 GET 1 POST 2 PUT 3 DELETE 4 HEAD 5 OPTIONS 6 PATCH
                 url_ptr, url_len,                          ;; the URL, UTF-8
                 headers_ptr, headers_len,                  ;; request headers, "Name: value" lines (may be 0, 0)
                 body_ptr, body_len,                        ;; request body (may be 0, 0)
                 response_headers_ptr, response_headers_len_ptr,
                 response_body_ptr, response_body_len_ptr,  ;; buffers; each *_len_ptr holds the buffer's size as a
                                                            ;; little-endian u32 on the way in, the length written on
                                                            ;; the way out (longer headers or bodies are cut to fit)
                 status_ptr) -> code                        ;; the HTTP status is written there (when not 0)

and the result codes 0 success, 1 invalid URL, 2 network error, 3 timeout, 4 host not allowed, 5 too large, 6 bad
input, 7 memory error.

The module is offered only when the task's network is not ``None`` (as in the original, a ``Default`` network is
``Host`` for WebAssembly). ``Full`` and ``Host`` reach any host; ``HTTP`` only the hosts its ``Domains`` list
(``*`` matches any characters, a leading ``.`` the domain and its subdomains, ports ignored), and answers 4 for any
other, redirects included. Without the module, a program that imports it fails to instantiate: ``unknown module``.

What one call may cost is bounded (:class:`HttpLimits`): the URL, request headers and body sizes, the number of
request headers, the redirects followed, the response bytes read (no more than the program's buffer holds, nor 80% of
its memory, nor ``max_response_bytes``) and the whole call's time. Calls run in the thread that runs the program
(host functions are synchronous), never on the event loop. The node's proxy settings are not used.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import wasmtime

from bacalhau.models.spec import Network, NetworkConfig

MODULE = "wasi:http/requests"
FUNCTION = "http_request"

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")  # by number; anything else is GET

SUCCESS = 0
INVALID_URL = 1
NETWORK_ERROR = 2
TIMEOUT = 3
NOT_ALLOWED = 4
TOO_LARGE = 5
BAD_INPUT = 6
MEMORY_ERROR = 7

MIN_RESPONSE_BYTES = 64 * 1024  # the original's floor for a program that declared little memory
MEMORY_SHARE = 0.8  # of the program's memory, at most, for one response (as the original)
# Headers the client writes itself (Go's transport ignores them in a request's headers too).
_CLIENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "trailer", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_U32 = struct.Struct("<I")


@dataclass(frozen=True)
class HttpLimits:
    # The whole call: connecting, redirects, sending and reading (the original's default). It is checked between the
    # reads of a body, and each wait is bounded by it too, so a call that trickles ends within twice this at most.
    timeout: float = 30.0
    max_response_bytes: int = 16 * 1024 * 1024
    max_request_body_bytes: int = 16 * 1024 * 1024
    max_url_bytes: int = 8 * 1024
    max_request_header_bytes: int = 64 * 1024
    max_request_headers: int = 100
    max_redirects: int = 10  # Go's client follows as many


def offers_http(network: NetworkConfig) -> bool:
    return network.type != Network.NONE


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:  # a bare IPv6 address has several
        return host.split(":", 1)[0]
    return host


def domain_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` is one of the hosts a ``Domains`` entry names, ports ignored on both sides."""
    pattern = _strip_port(pattern.strip().lower())
    host = _strip_port(host.strip().lower())
    if not pattern or not host:
        return False
    if pattern == "*":
        return True
    if pattern.startswith("."):  # the original's notation for a domain and its subdomains
        return host == pattern[1:] or host.endswith(pattern)
    if "*" not in pattern:
        return pattern == host
    first, *middle, last = pattern.split("*")
    if len(host) < len(first) + len(last) or not host.startswith(first) or not host.endswith(last):
        return False
    position, end = len(first), len(host) - len(last)
    for part in middle:
        found = host.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def host_allowed(network: NetworkConfig, host: str) -> bool:
    if network.type in (Network.FULL, Network.HOST, Network.DEFAULT):
        return True
    if network.type == Network.HTTP:
        return any(domain_matches(domain, host) for domain in network.domains)
    return False


def canonical_header(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``content-type`` -> ``Content-Type``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def parse_headers(text: str) -> list[tuple[str, str]] | None:
    """The original's format, "Name: value" per line (blank and colon-less lines skipped); None if a header could not
    be sent as it is."""
    headers = []
    for line in text.split("\n"):
        line = line.strip()
        name, colon, value = line.partition(":")
        if not line or not colon:
            continue
        name, value = name.strip(), value.strip()
        if not _TOKEN.fullmatch(name) or any(char in value for char in "\r\n\x00"):
            return None
        if name.lower() not in _CLIENT_HEADERS:
            headers.append((name, value))
    return headers


class _Memory:
    """Bounds-checked access to the calling program's linear memory."""

    def __init__(self, caller: wasmtime.Caller) -> None:
        export = caller.get("memory")
        self.memory = export if isinstance(export, wasmtime.Memory) else None
        self.caller = caller

    @property
    def size(self) -> int:
        return self.memory.data_len(self.caller) if self.memory is not None else 0

    def read(self, pointer: int, length: int) -> bytes | None:
        if self.memory is None or pointer + length > self.size:
            return None
        return bytes(self.memory.read(self.caller, pointer, pointer + length)) if length else b""

    def read_u32(self, pointer: int) -> int | None:
        data = self.read(pointer, 4)
        return None if data is None else int(_U32.unpack(data)[0])

    def write(self, pointer: int, data: bytes) -> bool:
        if self.memory is None or pointer + len(data) > self.size:
            return False
        if data:
            self.memory.write(self.caller, data, pointer)
        return True


class _Failed(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class HttpModule:
    """The host side of ``wasi:http/requests`` for one run of one program."""

    def __init__(self, network: NetworkConfig, limits: HttpLimits | None = None) -> None:
        self.network = network
        self.limits = limits or HttpLimits()
        self._client: httpx.Client | None = None

    def define(self, linker: wasmtime.Linker) -> None:
        i32 = wasmtime.ValType.i32()
        kind = wasmtime.FuncType([i32] * 12, [i32])
        linker.define_func(MODULE, FUNCTION, kind, self.http_request, access_caller=True)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, trust_env=False, timeout=self.limits.timeout)
        return self._client

    def http_request(self, caller: wasmtime.Caller, *args: int) -> int:
        """The host function. It never raises: a trap would end the program for what is the network's doing."""
        try:
            return self._request(_Memory(caller), *args)
        except _Failed as failure:
            return failure.code
        except Exception:  # whatever the network or the program did that we did not foresee
            return NETWORK_ERROR

    def _request(
        self,
        memory: _Memory,
        method: int,
        url_ptr: int,
        url_len: int,
        headers_ptr: int,
        headers_len: int,
        body_ptr: int,
        body_len: int,
        response_headers_ptr: int,
        response_headers_len_ptr: int,
        response_body_ptr: int,
        response_body_len_ptr: int,
        status_ptr: int,
    ) -> int:
        limits = self.limits
        if not (response_headers_ptr and response_headers_len_ptr and response_body_ptr and response_body_len_ptr):
            return BAD_INPUT
        url = self._url(memory, url_ptr, url_len)
        headers: list[tuple[str, str]] = []
        if headers_ptr and headers_len:
            if headers_len > limits.max_request_header_bytes:
                return BAD_INPUT
            raw_headers = memory.read(headers_ptr, headers_len)
            if raw_headers is not None:  # unreadable headers are left out, as the original does
                parsed = parse_headers(raw_headers.decode(errors="replace"))
                if parsed is None or len(parsed) > limits.max_request_headers:
                    return BAD_INPUT
                headers = parsed
        body = b""
        if body_ptr and body_len:
            if body_len > limits.max_request_body_bytes:
                return TOO_LARGE
            read = memory.read(body_ptr, body_len)
            if read is None:
                return BAD_INPUT
            body = read
        headers_room = memory.read_u32(response_headers_len_ptr)
        body_room = memory.read_u32(response_body_len_ptr)
        if headers_room is None or body_room is None:
            return MEMORY_ERROR
        cap = min(max(int(memory.size * MEMORY_SHARE), MIN_RESPONSE_BYTES), limits.max_response_bytes)
        verb = METHODS[method] if method < len(METHODS) else "GET"
        status, response_headers, response_body = self._exchange(verb, url, headers, body, min(body_room, cap))

        header_text = "\n".join(f"{name}: {value}" for name, value in response_headers).encode()[:headers_room]
        response_body = response_body[:body_room]
        if status_ptr and not memory.write(status_ptr, _U32.pack(status)):
            return MEMORY_ERROR
        if not (
            memory.write(response_headers_len_ptr, _U32.pack(len(header_text)))
            and memory.write(response_body_len_ptr, _U32.pack(len(response_body)))
            and memory.write(response_headers_ptr, header_text)
            and memory.write(response_body_ptr, response_body)
        ):
            return MEMORY_ERROR
        return SUCCESS

    def _url(self, memory: _Memory, pointer: int, length: int) -> httpx.URL:
        raw = memory.read(pointer, length) if length <= self.limits.max_url_bytes else None
        try:
            url = httpx.URL(raw.decode()) if raw is not None else None
        except (UnicodeDecodeError, httpx.InvalidURL, ValueError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise _Failed(INVALID_URL)
        if not host_allowed(self.network, url.host):
            raise _Failed(NOT_ALLOWED)
        return url

    def _exchange(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], body: bytes, room: int
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request (following redirects to allowed hosts only) and read at most ``room`` bytes of the
        answer, all within the call's time limit."""
        deadline = time.monotonic() + self.limits.timeout

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Failed(TIMEOUT)
            return left

        if not any(name.lower() == "accept-encoding" for name, _ in headers):
            headers = [*headers, ("Accept-Encoding", "identity")]  # so that the bytes read are the bytes kept
        request = self.client.build_request(method, url, headers=headers, content=body or None)
        try:
            for _ in range(self.limits.max_redirects + 1):
                request.extensions["timeout"] = httpx.Timeout(remaining()).as_dict()
                response = self.client.send(request, stream=True)
                try:
                    following = response.next_request
                    if following is None:
                        content = _read(response, room, remaining)
                        received = [(canonical_header(k), v) for k, v in response.headers.multi_items()]
                        return response.status_code, received, content
                finally:
                    response.close()
                if not host_allowed(self.network, following.url.host):
                    raise _Failed(NOT_ALLOWED)
                request = following
        except httpx.TimeoutException:
            raise _Failed(TIMEOUT) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError):
            raise _Failed(NETWORK_ERROR) from None
        raise _Failed(NETWORK_ERROR)  # too many redirects, as Go's client refuses them


def _read(response: httpx.Response, room: int, remaining: Callable[[], Any]) -> bytes:
    """At most ``room`` bytes of the body as sent (never decompressed here: no bomb), the rest never read."""
    chunks: list[bytes] = []
    size = 0
    if room <= 0:
        return b""
    for chunk in response.iter_raw():
        remaining()
        chunks.append(chunk[: room - size])
        size += len(chunks[-1])
        if size >= room:
            break
    return b"".join(chunks)
