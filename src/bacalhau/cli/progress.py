"""Following a submitted job: its events as they happen (with a spinner on a terminal), then the original's hints
and, on request, each node's result."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import TextIO

import click

from bacalhau.client.http import ApiClient
from bacalhau.models.execution import Execution
from bacalhau.models.history import JobHistory, JobHistoryType
from bacalhau.models.ids import short_id
from bacalhau.models.job import Job
from bacalhau.models.state import ExecutionStateType

POLL_INTERVAL = 0.25
DISCARDED = frozenset(
    {
        ExecutionStateType.ASK_FOR_BID_REJECTED,
        ExecutionStateType.BID_REJECTED,
        ExecutionStateType.CANCELLED,
        ExecutionStateType.FAILED,
    }
)
COLUMNS = (("TIME", 12), ("EXEC. ID", 10), ("TOPIC", 18), ("EVENT", 0))
EVENT_INDENT = 1 + sum(width + 2 for _, width in COLUMNS[:-1])


def _row(cells: list[str]) -> str:
    parts = []
    for (_, width), cell in zip(COLUMNS, cells, strict=True):
        parts.append(cell.ljust(width) if width else cell)
    return " " + "  ".join(parts).rstrip()


def header() -> str:
    return _row([name for name, _ in COLUMNS])


def event_row(item: JobHistory) -> str:
    stamp = item.event.timestamp or item.time
    when = time.strftime("%H:%M:%S", time.localtime(stamp / 1e9)) + f".{(stamp // 1_000_000) % 1000:03d}"
    message = item.event.message
    if item.event.is_error:
        message = f"Error: {message}"
    hint = item.event.details.get("Hint")
    if hint:
        message += f"\n{' ' * EVENT_INDENT}Hint: {hint}"
    return _row([when, short_id(item.execution_id) if item.execution_id else "", item.event.topic, message])


class EventFilter:
    """The original's row filter: the first event, every execution event, and job-level errors until an
    execution-level error has been shown."""

    def __init__(self) -> None:
        self._first = True
        self._execution_error_seen = False

    def keep(self, item: JobHistory) -> bool:
        if self._first:
            self._first = False
            return True
        if item.type == JobHistoryType.EXECUTION_LEVEL:
            if item.event.is_error:
                self._execution_error_seen = True
            return True
        return item.event.is_error and not self._execution_error_seen


class Spinner:
    """A one-line activity indicator under the event rows, drawn only on a terminal and erased before anything
    else is printed, so that piped output stays clean."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._frame = 0
        self._shown = False
        self._started = time.monotonic()

    def tick(self, text: str) -> None:
        if not self._enabled:
            return
        frame = self.FRAMES[self._frame % len(self.FRAMES)]
        self._frame += 1
        elapsed = int(time.monotonic() - self._started)
        self._stream.write(f"\r\x1b[K {frame} {text} ({elapsed}s)")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


def follow_events(client: ApiClient, job_id: str, *, quiet: bool, long_running: bool, timeout: float) -> Job:
    """Print events until the job ends (or, for long-running jobs, starts running); return the final job.

    Raises ``TimeoutError`` when ``timeout`` seconds pass first (the job keeps running)."""
    spinner = Spinner(sys.stdout)
    if not quiet:
        click.echo(header())
    filter_ = EventFilter()
    token = ""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    status = "Waiting for the job to be scheduled"
    try:
        while True:
            items, token = client.history(job_id, event_type="all", next_token=token)
            for item in items:
                status = f"{item.event.topic}: {item.event.message.splitlines()[0]}" if item.event.message else status
                if not quiet and filter_.keep(item):
                    spinner.clear()
                    click.echo(event_row(item))
                if long_running and item.type == JobHistoryType.EXECUTION_LEVEL:
                    token = ""
            if not token:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(timeout)
            if not quiet:
                spinner.tick(status)
            time.sleep(POLL_INTERVAL)
    finally:
        spinner.clear()
    return client.job(job_id)


def print_hints(job: Job) -> None:
    click.echo()
    click.echo("To get more details about the run, execute:")
    click.echo(f"\tbacalhau job describe {job.id}")
    click.echo()
    click.echo("To get more details about the run executions, execute:")
    click.echo(f"\tbacalhau job executions {job.id}")
    if job.tasks and job.task.publisher_spec.type:
        click.echo()
        click.echo("To download the results, execute:")
        click.echo(f"\tbacalhau job get {job.id}")


def summarise_executions(executions: list[Execution]) -> dict[str, list[str]]:
    """Each distinct outcome (the error, stderr of a non-zero exit, else stdout) with the nodes that produced it."""
    outcomes: dict[str, list[str]] = defaultdict(list)
    for execution in executions:
        output = execution.run_output
        if output is not None:
            message = output.error_msg or (output.stderr if output.exit_code > 0 else output.stdout)
        else:
            message = execution.compute_state.message if execution.state in DISCARDED else ""
        if message:
            outcomes[message].append(short_id(execution.node_id))
    return dict(outcomes)


def print_node_details(executions: list[Execution]) -> None:
    summary = summarise_executions(executions)
    if not summary:
        click.echo()
        return
    click.echo("\nJob Results By Node:")
    for message, nodes in summary.items():
        prefix = f"• Node {nodes[0]}: " if len(nodes) == 1 else f"• {len(nodes)} runs on {len(set(nodes))} nodes: "
        lines = message.strip().splitlines() or [""]
        click.echo(prefix + lines[0])
        for line in lines[1:]:
            click.echo(" " * len(prefix) + line)
