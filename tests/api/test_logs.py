"""Checklist group F (§9, item 35): logs over a WebSocket, streamed from the node that runs the execution."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from tests.api.support import noop_job, queued_job, stop
from tests.helpers import frames, get_job, logs_socket, submit, wait_for_state, wasm_job


def test_following_a_running_job_streams_every_line_live(base_url: str, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(base_url, wasm_job(wasm("ticker"), "8", "150"))
    wait_for_state(base_url, job_id, ("Running",))
    with logs_socket(base_url, job_id, follow="true") as socket:
        first = json.loads(socket.recv(timeout=30))
        assert get_job(base_url, job_id)["Job"]["State"]["StateType"] == "Running", (
            "the first line came only at the end"
        )
        received = [first, *frames(socket)]
    values = [frame["value"] for frame in received]
    assert all(set(frame) == {"value"} for frame in received)
    stdout = [v["Line"] for v in values if v["Type"] == 1]  # type: ignore[index]
    stderr = [v["Line"] for v in values if v["Type"] == 2]  # type: ignore[index]
    assert stdout == [f"out {i}\n" for i in range(1, 9)]
    assert stderr == [f"err {i}\n" for i in range(1, 9)]


def test_logs_of_a_finished_job_and_of_one_execution(base_url: str, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(base_url, wasm_job(wasm("hello"), "done"))
    wait_for_state(base_url, job_id)
    with logs_socket(base_url, job_id) as socket:
        assert [f["value"] for f in frames(socket)] == [{"Type": 1, "Line": "Hello, world! done\n"}]
    [execution] = get_job(base_url, job_id, include="executions")["Executions"]["Items"]
    with logs_socket(base_url, job_id, execution_id=execution["ID"]) as socket:
        assert len(frames(socket)) == 1


def test_a_job_that_wrote_nothing_has_empty_logs(base_url: str) -> None:
    job_id = submit(base_url, noop_job())
    wait_for_state(base_url, job_id)
    with logs_socket(base_url, job_id) as socket:
        assert frames(socket) == []


def test_a_job_without_executions_gets_one_error_frame(base_url: str) -> None:
    job_id = submit(base_url, queued_job())
    try:
        with logs_socket(base_url, job_id, follow="true") as socket:
            [frame] = frames(socket)
        assert "no executions found for job" in str(frame["error"])
    finally:
        stop(base_url, job_id)


def test_unknown_job_gets_an_error_frame(base_url: str) -> None:
    with logs_socket(base_url, "j-00000000-0000-4000-8000-000000000000") as socket:
        [frame] = frames(socket)
    assert "job not found" in str(frame["error"])


def test_a_plain_get_is_a_400(base_url: str) -> None:
    response = httpx.get(f"{base_url}/api/v1/orchestrator/jobs/j-anything/logs")
    assert response.status_code == 400


def test_tail_skips_what_was_already_written(base_url: str, wasm: Callable[[str], bytes]) -> None:
    job_id = submit(base_url, wasm_job(wasm("hello"), "tail"))
    wait_for_state(base_url, job_id)
    with logs_socket(base_url, job_id, tail="true") as socket:
        assert frames(socket) == []
