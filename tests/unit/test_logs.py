"""Execution logs on a compute node: reading both streams as lines, following, keeping and pruning."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from bacalhau.compute.logs import MAX_LINE_BYTES, STDERR, STDOUT, LogStore, read_lines


async def collect(stdout: Path, stderr: Path, *, follow: bool = False, tail: bool = False) -> list[tuple[int, str]]:
    async def finished() -> bool:
        return True

    lines: list[tuple[int, str]] = []
    async for batch in read_lines(stdout, stderr, follow=follow, tail=tail, finished=finished):
        lines += batch
    return lines


async def test_both_streams_are_read_as_typed_lines(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_text("one\ntwo\nno newline")
    (tmp_path / "stderr").write_text("oops\n")
    lines = await collect(tmp_path / "stdout", tmp_path / "stderr")
    assert [line for line in lines if line[0] == STDOUT] == [
        (STDOUT, "one\n"),
        (STDOUT, "two\n"),
        (STDOUT, "no newline"),
    ]
    assert [line for line in lines if line[0] == STDERR] == [(STDERR, "oops\n")]


async def test_following_picks_up_what_is_written_later(tmp_path: Path) -> None:
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    stdout.write_text("first\n")
    checks = 0

    async def finished() -> bool:
        nonlocal checks
        checks += 1
        if checks == 1:
            with stdout.open("a") as handle:
                handle.write("second\n")
            return False
        return True

    lines = [
        line async for batch in read_lines(stdout, stderr, follow=True, tail=False, finished=finished) for line in batch
    ]
    assert lines == [(STDOUT, "first\n"), (STDOUT, "second\n")]


async def test_tail_starts_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "stdout").write_text("old\n")
    assert await collect(tmp_path / "stdout", tmp_path / "stderr", tail=True) == []


def test_logs_are_kept_after_the_run_and_pruned_after_the_retention(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "executions", tmp_path / "logs", retention=60)
    results = tmp_path / "executions" / "e-1" / "results"
    results.mkdir(parents=True)
    (results / "stdout").write_text("out\n")
    (results / "stderr").write_text("")
    assert store.files("e-1") == (results / "stdout", results / "stderr")
    store.keep("e-1", results)
    shutil.rmtree(tmp_path / "executions" / "e-1")  # as the runner does once the logs are kept
    kept = tmp_path / "logs" / "e-1"
    assert store.files("e-1") == (kept / "stdout", kept / "stderr")
    assert store.prune() == 0
    old = time.time() - 120
    os.utime(kept, (old, old))
    assert store.prune() == 1
    assert store.files("e-1") is None


async def test_an_execution_that_wrote_nothing_keeps_no_folder_and_has_empty_logs(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "executions", tmp_path / "logs", retention=60)
    assert store.files("e-quiet") is None
    results = tmp_path / "executions" / "e-quiet" / "results"
    results.mkdir(parents=True)
    assert store.files("e-quiet") == (results / "stdout", results / "stderr")
    store.keep("e-quiet", results)
    shutil.rmtree(results.parent)
    assert store.files("e-quiet") is None
    assert not (tmp_path / "logs").exists()
    assert await collect(*store.kept("e-quiet")) == []


async def test_output_that_never_ends_a_line_is_streamed_in_pieces(tmp_path: Path) -> None:
    """A job printing 10 MB without a newline once made the node hold it all as one line."""
    (tmp_path / "stdout").write_bytes(b"x" * (10 * MAX_LINE_BYTES + 5))
    (tmp_path / "stderr").write_bytes(b"")
    lines = await collect(tmp_path / "stdout", tmp_path / "stderr")
    assert max(len(text) for _, text in lines) < 2 * MAX_LINE_BYTES
    assert "".join(text for _, text in lines) == "x" * (10 * MAX_LINE_BYTES + 5)
