"""Jobs bigger than a default NATS message (1 MiB) travel to a compute node over NATS like any other.

A hybrid node's compute half is a separate process that talks to the orchestrator over NATS, so these jobs cross the
same wire as they would to a remote compute node.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from bacalhau.models.limits import MAX_BODY_BYTES
from tests.conftest import ServeProcess
from tests.helpers import executions, submit, wait_for_state, wasm_job

pytestmark = pytest.mark.e2e


def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def padded(module: bytes, size: int) -> bytes:
    """``module`` grown to ``size`` bytes by a custom section at its end, which engines skip."""
    name = b"padding"
    header = leb128(len(name)) + name
    content = size - len(module) - 1  # the section's content: its name and the filler, after its id and length
    while 1 + len(leb128(content)) + content + len(module) > size:
        content -= 1
    filler = bytes(range(256)) * (content // 256 + 1)
    return module + b"\x00" + leb128(content) + header + filler[: content - len(header)]


def test_a_job_bigger_than_a_default_nats_message_completes_and_so_does_the_next(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    module = padded(wasm("hello"), 1_300_000)
    big = submit(hybrid.url, wasm_job(module, "big"))
    small = submit(hybrid.url, wasm_job(wasm("hello"), "small"))
    assert wait_for_state(hybrid.url, big)["State"]["StateType"] == "Completed"
    assert wait_for_state(hybrid.url, small)["State"]["StateType"] == "Completed"
    [execution] = executions(hybrid.url, big)
    assert execution["RunOutput"]["Stdout"] == "Hello, world! big\n"


def test_a_job_near_the_api_body_limit_completes_or_is_refused_but_never_stalls_the_node(
    hybrid: ServeProcess, wasm: Callable[[str], bytes]
) -> None:
    target = MAX_BODY_BYTES - 512 * 1024  # ~9.5 MB of JSON: the module travels base64-encoded (4 bytes per 3)
    module = padded(wasm("hello"), target * 3 // 4)
    body = json.dumps({"Job": wasm_job(module, "near")}).encode()
    assert MAX_BODY_BYTES - 1024 * 1024 < len(body) <= MAX_BODY_BYTES
    response = httpx.put(
        f"{hybrid.url}/api/v1/orchestrator/jobs",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code in (200, 413), response.text
    if response.status_code == 200:
        job_id = response.json()["JobID"]
        assert wait_for_state(hybrid.url, job_id, timeout=60)["State"]["StateType"] == "Completed"
    after = submit(hybrid.url, wasm_job(wasm("hello"), "after"))
    assert wait_for_state(hybrid.url, after)["State"]["StateType"] == "Completed"
