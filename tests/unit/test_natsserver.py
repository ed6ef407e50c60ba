"""The embedded nats-server: its settings stay off its command line, any token works, and any job fits a message."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from bacalhau.models.job import Job
from bacalhau.models.limits import MAX_BODY_BYTES
from bacalhau.orchestrator.jobs import JobService, TaskDefaults
from bacalhau.orchestrator.plan import Plan, apply_plan
from bacalhau.orchestrator.scheduler.base import new_execution
from bacalhau.orchestrator.store import JobStore
from bacalhau.transport.natsserver import MAX_PAYLOAD, EmbeddedNatsServer
from bacalhau.transport.stream import batch_request

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
        assert client.max_payload == MAX_PAYLOAD
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


TEMPLATE = '{"Job":{"Type":"batch","Tasks":[{"Name":"main","Engine":{"Type":"wasm","Params":{"X":%s}}}]}}'


def body_at_the_limit(item: str, separator: str, opening: str, closing: str) -> bytes:
    """A job body of MAX_BODY_BYTES (give or take a few) that repeats ``item`` in one of its values."""
    room = MAX_BODY_BYTES - len(TEMPLATE % (opening + closing))
    count = (room + len(separator)) // len((item + separator).encode())
    body = (TEMPLATE % (opening + separator.join([item] * count) + closing)).encode()
    assert MAX_BODY_BYTES - 16 <= len(body) <= MAX_BODY_BYTES
    return body


@pytest.mark.parametrize(
    ("item", "separator", "opening", "closing", "least_growth"),
    [
        ("😀", "", '"', '"', 1.0),  # 4 bytes of UTF-8, stored as such (escaped, it would be 12)
        ("1e15", ",", "[", "]", 2.5),  # 4 bytes and a comma, stored as 1000000000000000.0 and a comma
    ],
    ids=["emoji", "float"],
)
@pytest.mark.timeout(60)  # 10 MiB through the whole submission path takes seconds on a busy machine
async def test_any_job_the_api_accepts_fits_in_one_message(
    store: JobStore, item: str, separator: str, opening: str, closing: str, least_growth: float
) -> None:
    """The job bodies that grow most on their way to a compute node, at the API's limit, through the orchestrator's
    own path (submission, the plan's AskForBid in the outbox, a batch of one), fit in the embedded server's limit.

    Should this fail (the API takes bigger bodies, or jobs are stored bigger), a job the API accepts would never reach
    a compute node. MAX_PAYLOAD is nats-server's ceiling already: take fewer bytes in the API, or store the outbox's
    messages more compactly."""
    body = body_at_the_limit(item, separator, opening, closing)
    service = JobService(store, "n-orchestrator", {"batch": TaskDefaults()})
    job_id = (await service.submit(Job.model_validate(json.loads(body)["Job"]))).job_id
    [evaluation] = await store.open_evaluations()
    plan = Plan(evaluation, await store.get_job(job_id))
    new_execution(plan, "n-compute", direct=False)
    await store.transact(lambda tx: apply_plan(tx, plan))
    [message] = await store.outbox("n-compute", 0, 1, MAX_PAYLOAD)
    request = batch_request(store.epoch, [message], MAX_PAYLOAD)
    growth = len(request) / len(body)
    print(f"{len(body)} bytes of job body -> {len(request)} bytes on the wire ({growth:.2f}x)")
    assert len(request) <= MAX_PAYLOAD
    assert growth >= least_growth  # the case still grows as it did: a weaker one would prove less
