"""Running an ASGI app with uvicorn inside our event loop, on a socket we bind ourselves.

Binding first turns a taken port into a clear error (uvicorn would call ``sys.exit``), and lets port 0 pick a free
port whose number we can then report.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from bacalhau.errors import BacalhauError


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
        raise BacalhauError(
            f"cannot start the {what} on {host}:{port}: {exc.strerror or exc}", code="ConfigurationError", hint=hint
        ) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """uvicorn would take over SIGINT/SIGTERM; the node handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(self, app: Any, sock: socket.socket, **options: Any) -> None:
        self.sock = sock
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", **options)
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
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
        self.sock.close()
