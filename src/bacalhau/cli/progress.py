"""Following a submitted job: print its events as they happen, then the hints the original prints."""

from __future__ import annotations

import time

import click

from bacalhau.client.http import ApiClient
from bacalhau.models.history import JobHistory, JobHistoryType
from bacalhau.models.ids import short_id
from bacalhau.models.job import Job

POLL_INTERVAL = 0.25
COLUMNS = (("TIME", 12), ("EXEC. ID", 10), ("TOPIC", 18), ("EVENT", 0))


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
        message += f"\n{' ' * 47}Hint: {hint}"
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


def follow_events(client: ApiClient, job_id: str, *, quiet: bool, long_running: bool, timeout: float) -> Job:
    """Print events until the job ends (or, for long-running jobs, starts running); return the final job."""
    if not quiet:
        click.echo(header())
    filter_ = EventFilter()
    token = ""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while True:
        items, token = client.history(job_id, event_type="all", next_token=token)
        for item in items:
            if not quiet and filter_.keep(item):
                click.echo(event_row(item))
            if long_running and item.type == JobHistoryType.EXECUTION_LEVEL:
                token = ""
        if not token:
            break
        if deadline is not None and time.monotonic() > deadline:
            click.secho(
                f"Warning: Progress tracking timed out after {int(timeout)}s. The job is still running.",
                fg="yellow",
                err=True,
            )
            break
        time.sleep(POLL_INTERVAL)
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
