"""The embedded nats-server: its settings stay off its command line, and any token works."""

from __future__ import annotations

import stat
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from bacalhau.transport.natsserver import EmbeddedNatsServer

HOSTILE_TOKENS = [
    's3cret"\n}\nauthorization { token: "x" }',
    "back\\slash\\\\ $HOME #not-a-comment // nor-this; 'single' \\x41 \\u0041",
    "tab\tcr\rnul\x00del\x7f é ü 中 😀",
]


def command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
async def test_the_token_stays_off_the_command_line_and_any_token_works(tmp_path: Path, token: str) -> None:
    server = EmbeddedNatsServer("127.0.0.1", 0, tmp_path, token=token)
    await server.start()
    try:
        assert server._process is not None
        cmdline = command_line(server._process.pid)
        assert token.encode() not in cmdline and b"--auth" not in cmdline
        assert cmdline.split(b"\0")[1:3] == [b"-c", str(server.config_path).encode()]
        assert stat.S_IMODE(server.config_path.stat().st_mode) == 0o600

        client = await nats.connect(server.client_url, token=token, allow_reconnect=False)
        await client.close()
        for wrong in (None, "x", token[:-1], token + " "):
            with pytest.raises(NatsError, match=r"(?i)authorization"):
                await nats.connect(server.client_url, token=wrong, allow_reconnect=False, max_reconnect_attempts=0)
    finally:
        await server.stop()
    assert not server.config_path.exists()


async def test_a_config_file_left_by_a_crash_is_replaced_not_reused(tmp_path: Path) -> None:
    stale = tmp_path / "nats-server.conf"
    stale.write_text("port: 1\n")
    stale.chmod(0o644)
    server = EmbeddedNatsServer("127.0.0.1", 0, tmp_path, token="t")
    await server.start()
    try:
        assert stat.S_IMODE(stale.stat().st_mode) == 0o600 and "port: 1\n" not in stale.read_text()
    finally:
        await server.stop()
