"""``bacalhau job ...``: run, rerun, versions, list, describe, executions, history, logs, stop, get, validate.

Every command that takes a job takes its ID, its name (in ``--namespace``) or a unique ID prefix."""

from __future__ import annotations

import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.cli.output import (
    OutputOptions,
    local_time,
    options_from,
    output_flags,
    print_data,
    print_table,
    relative_time,
)
from bacalhau.cli.params import duration_seconds
from bacalhau.errors import BacalhauError, InvalidRequest, NotFound
from bacalhau.models.ids import short_id

if TYPE_CHECKING:
    from bacalhau.client.http import ApiClient
    from bacalhau.models.execution import Execution
    from bacalhau.models.history import JobHistory
    from bacalhau.models.job import Job

# What only some commands need (the wire models, spec parsing and templates, progress, downloads) is imported by
# those commands, so that the others start quickly: `job list` shows the API's JSON as it comes.


class JobFailed(click.ClickException):
    """A waited-for job ended Failed: the command exits 1 (the original exits 0; see README)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.secho(f"\nError: {self.message}", fg="red", bold=True, err=True)


@click.group("job", help="Commands to submit, query and update jobs.")
def job_group() -> None:
    pass


def namespace_flag(func: Any) -> Any:
    return click.option(
        "--namespace", default="", help="The job's namespace, when it is named by its name (default: default)."
    )(func)


def version_flag(func: Any) -> Any:
    return click.option(
        "-v",
        "--version",
        "job_version",
        type=click.IntRange(min=0, max=2**63 - 1),
        default=0,
        help="This version of the job (default: the latest).",
    )(func)


def all_versions_flag(func: Any) -> Any:
    return click.option("--all-versions", is_flag=True, help="Every version of the job, not only the latest.")(func)


def runtime_flags(func: Any, *, dry_run: bool = True) -> Any:
    for option in reversed(
        [
            click.option(
                "--wait/--no-wait",
                default=True,
                show_default=True,
                help="Wait for the job to finish (--wait=false prints the job ID and returns).",
            ),
            click.option(
                "--wait-timeout-secs",
                type=int,
                default=600,
                show_default=True,
                help="How long to follow the job's progress, in seconds (0 waits forever).",
            ),
            click.option("--id-only", is_flag=True, help="Print only the job ID."),
            click.option("-f", "--follow", is_flag=True, help="Stream the job's output instead of its events."),
            click.option("--node-details", is_flag=True, help="Print each node's result when the job ends."),
            click.option(
                "--ignore-job-failure",
                is_flag=True,
                help="Exit 0 even when the job fails, as the original CLI does.",
            ),
            click.option("--hide-warnings", is_flag=True, help="Do not print submission warnings."),
        ]
    ):
        func = option(func)
    if dry_run:
        func = click.option("--dry-run", is_flag=True, help="Print the job spec instead of submitting it.")(func)
    return func


def submit_and_follow(client: ApiClient, spec: dict[str, Any], options: dict[str, Any]) -> None:
    """Submit a job (a new version of it, when its name is known) and, unless told otherwise, follow it to its end."""
    response = client.submit(spec, force=options.get("force", False))
    warnings = response.get("Warnings") or []
    if warnings and not options["hide_warnings"] and not options["id_only"]:
        for warning in warnings:
            click.secho(f"Warning: {warning}", fg="yellow", err=True)
    from bacalhau.models.job import JobType

    long_running = spec.get("Type") in (JobType.SERVICE.value, JobType.DAEMON.value)
    follow_job(client, response["JobID"], options, long_running=long_running)


def follow_job(client: ApiClient, job_id: str, options: dict[str, Any], *, long_running: bool) -> None:
    """Print a submitted job's progress (or output, with ``--follow``) until it ends, as the runtime flags ask."""
    from bacalhau.cli.progress import follow_events, print_hints, print_node_details
    from bacalhau.models.state import JobStateType

    if not options["wait"] or options["id_only"]:
        click.echo(job_id)
        if not options["wait"]:
            return
    try:
        if options["follow"]:
            _follow_logs(client, job_id, quiet=options["id_only"])
            return
        if not options["id_only"]:
            click.echo(f"Job successfully submitted. Job ID: {job_id}")
            click.echo("Checking job status... (Enter Ctrl+C to exit at any time, your job will continue running):")
            click.echo()
        job = follow_events(
            client,
            job_id,
            quiet=options["id_only"],
            long_running=long_running,
            timeout=float(options["wait_timeout_secs"]),
        )
    except KeyboardInterrupt:
        _still_running(job_id, "Progress tracking canceled.")
        return
    except TimeoutError:
        _still_running(job_id, f"Progress tracking timed out after {options['wait_timeout_secs']}s.")
        return
    if options["node_details"]:
        print_node_details(client.executions(job_id))
    if not options["id_only"]:
        print_hints(job)
    if job.state.state_type == JobStateType.FAILED:
        failure = JobFailed(f"job failed: {job.state.message}" if job.state.message else "job failed")
        if not options["ignore_job_failure"]:
            raise failure
        failure.show()


def _still_running(job_id: str, why: str) -> None:
    click.secho(
        f"\nWarning: {why} The job is still running.\nTo stop it: bacalhau job stop {job_id}", fg="yellow", err=True
    )


def _follow_logs(client: ApiClient, job_id: str, *, quiet: bool) -> None:
    """``--follow``: the job's output as it is written, once it has left Pending (as the original, up to 10 s)."""
    from bacalhau.models.state import JobStateType

    if not quiet:
        click.echo(f"Job successfully submitted. Job ID: {job_id}")
        click.echo("Waiting for logs... (Enter Ctrl+C to exit at any time, your job will continue running):")
        click.echo()
    deadline = time.monotonic() + 10
    while client.job(job_id).state.state_type == JobStateType.PENDING and time.monotonic() < deadline:
        time.sleep(0.2)
    for line in client.logs(job_id, follow=True, tail=False):
        click.echo(line, nl=False)


def read_spec(file: Any) -> tuple[str, str]:
    """A spec file's text (bytes that are not UTF-8 kept, for the template and the YAML parser to judge) and the
    name to give it in errors."""
    name = getattr(file, "name", "")
    source = name if isinstance(name, str) and name and not name.startswith("<") else "stdin"
    return file.read().decode("utf-8", "surrogateescape"), source


@job_group.command("run", help="Submit a job spec (YAML or JSON) from a file or stdin.")
@click.argument("file", type=click.File("rb"), required=False)
@runtime_flags
@click.option(
    "--no-template",
    is_flag=True,
    help="Use the spec as it is, without replacing its placeholders ({{.Name}}).",
)
@click.option(
    "-V",
    "--template-vars",
    multiple=True,
    help="Replace a placeholder in the spec with a value, e.g. -V foo=bar (repeatable; or foo=bar,baz=qux).",
)
@click.option(
    "-E",
    "--template-envs",
    default="",
    help="Also use the environment variables whose names match this regular expression, e.g. -E '.*' for all.",
)
@click.option("--force", is_flag=True, help="Make a new version of the job even if its spec did not change.")
def run_job(file: Any, no_template: bool, template_vars: tuple[str, ...], template_envs: str, **options: Any) -> None:
    from bacalhau.cli.jobspec import parse_spec, render_template, template_values, validate_spec

    if file is None:
        if sys.stdin.isatty():
            click.echo("Reading from /dev/stdin; send Ctrl-d to stop.", err=True)
        file = sys.stdin.buffer
    text, source = read_spec(file)
    if not no_template:
        text = render_template(text, template_values(template_vars, template_envs))
    spec = parse_spec(text, source)
    validate_spec(spec)
    if options["dry_run"]:
        _show_diff(spec)
        return
    submit_and_follow(cli_context().client(), spec, options)


def _show_diff(spec: dict[str, Any]) -> None:
    """``job run --dry-run``: what submitting would change in the stored job of that name; the spec itself when
    there is none (or the orchestrator cannot be asked)."""
    from bacalhau.cli.jobspec import job_to_yaml

    try:
        response = cli_context().client().diff(spec)
    except BacalhauError as exc:
        click.secho(f"Error: failed to fetch Job spec: {exc.message}", fg="red", err=True)
        click.secho("Warning: falling back to offline mode...", fg="yellow", err=True)
        click.echo(job_to_yaml(spec), nl=False)
        return
    for warning in response.get("Warnings") or []:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    text = str(response.get("Diff") or "")
    if not text:
        click.secho("Warning: No diff detected.", fg="yellow", err=True)
        return
    colour = {"+": "green", "-": "red", "@": "cyan"} if sys.stdout.isatty() else {}
    for line in text.splitlines():
        click.secho(line, fg=colour.get(line[:1]))


@job_group.command("rerun", help="Run a job again, as a new version: its latest spec, or that of --version.")
@click.argument("job_ref")
@version_flag
@namespace_flag
@click.option("--reason", default="", help="Why, kept in the job's history.")
@partial(runtime_flags, dry_run=False)
def rerun_job(job_ref: str, job_version: int, namespace: str, reason: str, **options: Any) -> None:
    client = cli_context().client()
    response = client.rerun(job_ref, namespace=namespace, version=job_version, reason=reason)
    job_id, version = str(response["JobID"]), int(response["JobVersion"])
    if not options["id_only"]:
        click.echo(f"Job {job_id} rerun as version {version}.")
    job = client.job(job_id)
    follow_job(client, job_id, options, long_running=job.is_long_running)


@job_group.command("versions", help="List the versions of a job.")
@click.argument("job_ref")
@namespace_flag
@output_flags()
def job_versions(job_ref: str, namespace: str, **kwargs: Any) -> None:
    options = options_from(kwargs)
    versions = cli_context().client().versions(job_ref, namespace=namespace)
    if options.format in ("json", "yaml"):
        print_data([job.to_wire() for job in versions], options)
        return
    rows = [[local_time(job.modify_time), str(job.version), job.state.state_type.value] for job in versions]
    print_table(["Created At", "Job Version", "State"], rows, options)


@job_group.command("validate", help="Check a job spec locally, without a server.")
@click.argument("file", type=click.File("rb"))
def validate_job(file: Any) -> None:
    from bacalhau.cli.jobspec import parse_spec, validate_spec

    _, warnings = validate_spec(parse_spec(*read_spec(file)))
    for warning in warnings:
        click.echo(warning)
    click.echo("OK")


def _engine(document: dict[str, Any]) -> str:
    tasks = document.get("Tasks") or [{}]
    return str(((tasks[0] or {}).get("Engine") or {}).get("Type") or "")


@job_group.command("list", help="List jobs, oldest first.")
@click.option("--limit", type=int, default=10, show_default=True, help="How many jobs to show.")
@click.option("--next-token", default="", help="Continue a previous listing.")
@click.option("--order-by", default="", help="created_at or modified_at.")
@click.option("--order-reversed", is_flag=True, help="Newest first.")
@click.option("--labels", default="", help="Filter by a label selector, e.g. env=prod.")
@click.option("--namespace", default="", help="Only this namespace's jobs (default: every namespace).")
@output_flags()
def list_jobs(
    limit: int, next_token: str, order_by: str, order_reversed: bool, labels: str, namespace: str, **kwargs: Any
) -> None:
    options = options_from(kwargs)
    jobs, token = (
        cli_context()
        .client()
        .list_job_documents(
            limit=limit,
            next_token=next_token,
            order_by=order_by,
            reverse=order_reversed or None,
            labels=labels or None,
            namespace=namespace,
        )
    )
    if options.format in ("json", "yaml"):
        print_data(jobs, options)
    else:
        rows = []
        for job in jobs:
            created, job_id, name = int(job.get("CreateTime") or 0), str(job.get("ID", "")), str(job.get("Name", ""))
            rows.append(
                [
                    local_time(created) if options.wide else local_time(created, "%H:%M:%S"),
                    job_id if options.wide else short_id(job_id),
                    name if options.wide or len(name) <= 20 else short_id(name),
                    _engine(job),
                    str(job.get("Type", "")),
                    str((job.get("State") or {}).get("StateType", "")),
                ]
            )
        print_table(["Created", "ID", "Name", "Job", "Type", "State"], rows, options)
    if token:
        machine_readable = options.format in ("json", "yaml")
        click.echo(
            f"\nTo fetch more records use:\n\tbacalhau job list --limit {limit} --next-token {token}",
            err=machine_readable,
        )


def _execution_rows(executions: list[Execution], options: OutputOptions) -> list[list[str]]:
    return [
        [
            relative_time(e.create_time),
            relative_time(e.modify_time),
            e.id if options.wide else short_id(e.id),
            e.node_id if options.wide else short_id(e.node_id),
            str(e.revision),
            e.state.label,
            e.desired.label,
        ]
        for e in executions
    ]


@job_group.command("executions", help="List a job's executions.")
@click.argument("job_id")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--order-by", default="created_at", show_default=True, help="created_at or modified_at.")
@click.option("--order-reversed", is_flag=True)
@version_flag
@all_versions_flag
@namespace_flag
@output_flags()
def list_executions(
    job_id: str,
    limit: int,
    order_by: str,
    order_reversed: bool,
    job_version: int,
    all_versions: bool,
    namespace: str,
    **kwargs: Any,
) -> None:
    options = options_from(kwargs)
    executions = (
        cli_context()
        .client()
        .executions(
            job_id,
            limit=limit,
            order_by=order_by,
            reverse=order_reversed or None,
            job_version=job_version or None,
            all_job_versions=all_versions or None,
            namespace=namespace,
        )
    )
    if options.format in ("json", "yaml"):
        print_data([e.to_wire() for e in executions], options)
        return
    print_table(
        ["Created", "Modified", "ID", "Node ID", "Rev.", "State", "Desired"],
        _execution_rows(executions, options),
        options,
    )


def _all_history(client: ApiClient, job_id: str, **params: Any) -> list[JobHistory]:
    items: list[JobHistory] = []
    token = ""
    while True:
        page, next_token = client.history(job_id, next_token=token, **params)
        items.extend(page)
        if not next_token or not page:
            return items
        token = next_token


@job_group.command("history", help="List a job's history events.")
@click.argument("job_id")
@click.option("--event-type", type=click.Choice(["all", "job", "execution"]), default="all", show_default=True)
@click.option("--execution-id", default="", help="Only this execution's events.")
@version_flag
@all_versions_flag
@namespace_flag
@output_flags()
def job_history(
    job_id: str,
    event_type: str,
    execution_id: str,
    job_version: int,
    all_versions: bool,
    namespace: str,
    **kwargs: Any,
) -> None:
    options = options_from(kwargs)
    items = _all_history(
        cli_context().client(),
        job_id,
        event_type=event_type,
        execution_id=execution_id,
        job_version=job_version or None,
        all_job_versions=all_versions or None,
        namespace=namespace,
    )
    if options.format in ("json", "yaml"):
        print_data([item.to_wire() for item in items], options)
        return
    rows = [
        [
            local_time(item.time),
            item.type.value,
            (item.execution_id if options.wide else short_id(item.execution_id)) if item.execution_id else "",
            item.event.topic,
            item.event.message,
        ]
        for item in items
    ]
    print_table(["Time", "Level", "Exec. ID", "Topic", "Event"], rows, options)


@job_group.command("describe", help="Show a job (its latest version unless asked), its history and its executions.")
@click.argument("job_id")
@version_flag
@namespace_flag
@output_flags(default="", choices=("", "json", "yaml"))
def describe_job(job_id: str, job_version: int, namespace: str, **kwargs: Any) -> None:
    options = options_from(kwargs)
    client = cli_context().client()
    data = client.get_job(job_id, include="history,executions", namespace=namespace, version=job_version)
    if options.format:
        print_data(data, options)
        return
    from bacalhau.models.execution import Execution
    from bacalhau.models.history import JobHistory
    from bacalhau.models.job import Job

    job = Job.model_validate(data["Job"])
    history = [JobHistory.model_validate(h) for h in (data.get("History") or {}).get("Items") or []]
    executions = [Execution.model_validate(e) for e in (data.get("Executions") or {}).get("Items") or []]
    _print_description(job, history, executions, options)


def _section(title: str) -> None:
    click.echo()
    click.secho(title, bold=sys.stdout.isatty())


def _print_description(
    job: Job, history: list[JobHistory], executions: list[Execution], options: OutputOptions
) -> None:
    from bacalhau.models.history import JobHistoryType
    from bacalhau.models.job import JobType
    from bacalhau.models.state import ExecutionStateType

    fields = [
        ("ID", job.id),
        ("Name", job.name),
        ("Namespace", job.namespace),
        ("Type", job.type),
        ("State", job.state.state_type.value),
        ("Message", job.state.message),
    ]
    if job.type in (JobType.BATCH.value, JobType.SERVICE.value):
        fields.append(("Count", str(job.desired_count)))
    fields += [
        ("Created Time", local_time(job.create_time)),
        ("Modified Time", local_time(job.modify_time)),
        ("Version", str(job.version)),
    ]
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        if value:
            click.echo(f"{name.ljust(width)} = {value}")

    counts: dict[ExecutionStateType, int] = {}
    for execution in executions:
        counts[execution.state] = counts.get(execution.state, 0) + 1
    summary = [(s.label, counts[s]) for s in ExecutionStateType if s in counts and s != ExecutionStateType.CANCELLED]
    if summary:
        _section("Summary")
        label_width = max(len(label) for label, _ in summary)
        for label, count in summary:
            click.echo(f"{label.ljust(label_width)} = {count}")

    _section("Job History")
    job_rows = [
        [local_time(h.time), h.event.topic, h.event.message] for h in history if h.type == JobHistoryType.JOB_LEVEL
    ]
    print_table(["Time", "Topic", "Event"], job_rows, options)

    ordered = sorted(executions, key=lambda e: e.create_time, reverse=True)
    _section("Executions")
    rows = [
        [
            e.id if options.wide else short_id(e.id),
            e.node_id if options.wide else short_id(e.node_id),
            e.state.label,
            e.desired.label,
            str(e.revision),
            relative_time(e.create_time),
            relative_time(e.modify_time),
            e.compute_state.message,
        ]
        for e in ordered
    ]
    print_table(["ID", "Node ID", "State", "Desired", "Rev.", "Created", "Modified", "Comment"], rows, options)

    published = [(e, port) for e in ordered for port in e.allocated_ports]
    if published:  # where each execution's services listen, on its node
        _section("Published Ports")
        print_table(
            ["Execution", "Node ID", "Name", "Host Port", "Target", "Host Network"],
            [
                [
                    e.id if options.wide else short_id(e.id),
                    e.node_id if options.wide else short_id(e.node_id),
                    port.name,
                    str(port.static),
                    str(port.target or ""),
                    port.host_network or "0.0.0.0",
                ]
                for e, port in published
            ],
            options,
        )

    for execution in ordered:
        events = [h for h in history if h.execution_id == execution.id]
        if events:
            _section(f"Execution {short_id(execution.id)} History")
            print_table(
                ["Time", "Topic", "Event"],
                [[local_time(h.time), h.event.topic, h.event.message] for h in events],
                options,
            )

    outputs = [e for e in ordered if e.run_output is not None]
    if outputs:
        _section("Standard Output")
        for execution in outputs:
            output = execution.run_output
            assert output is not None
            if len(outputs) > 1:
                click.echo(f"Execution {short_id(execution.id)}:")
            text = output.stdout
            if output.stderr:
                text += "\n" + output.stderr
            if output.stdout_truncated or output.stderr_truncated:
                text += "...\nOutput truncated"
            click.echo(text.rstrip("\n"))


@job_group.command("logs", help="Print a job's output (stdout and stderr) from the node that runs it.")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the execution ends.")
@click.option("-t", "--tail", is_flag=True, help="Start from the end: print only new output.")
@click.option("-e", "--execution-id", default="", help="This execution's output (default: the latest one).")
@version_flag
@namespace_flag
def job_logs(job_id: str, follow: bool, tail: bool, execution_id: str, job_version: int, namespace: str) -> None:
    lines = (
        cli_context()
        .client()
        .logs(job_id, follow=follow, tail=tail, execution_id=execution_id, namespace=namespace, version=job_version)
    )
    for line in lines:
        click.echo(line, nl=False)


@job_group.command("stop", help="Stop a running job.")
@click.argument("job_id")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@namespace_flag
def stop_job(job_id: str, quiet: bool, namespace: str) -> None:
    client = cli_context().client()
    job = client.job(job_id, namespace=namespace)
    if job.is_terminal:
        raise InvalidRequest(f"Job is already in a terminal state.\nThe current state is: {job.state.state_type.value}")
    evaluation_id = client.stop_job(job.id, "Stopped at user request")
    if not quiet:
        click.echo(f"Job stop successfully submitted with evaluation ID: {evaluation_id}")


@job_group.command("get", help="Download a job's results.")
@click.argument("job_ref")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write results here (it must exist); default ./job-<id>.",
)
@click.option("--raw", is_flag=True, help="Keep each result as downloaded, without merging.")
@click.option(
    "--download-timeout-secs",
    default="5m",
    callback=duration_seconds,
    metavar="DURATION",
    show_default=True,
    help="Give up if the download takes longer (a duration such as 90s or 10m, or seconds).",
)
@version_flag
@namespace_flag
def get_results(
    job_ref: str, output_dir: Path | None, raw: bool, download_timeout_secs: float, job_version: int, namespace: str
) -> None:
    from bacalhau.cli.download import download_results

    job_id, _, inner_path = job_ref.partition("/")
    client = cli_context().client()
    click.echo(f"Fetching results of job '{job_id}'...", err=True)
    job = client.job(job_id, namespace=namespace)
    results = client.results(job.id, version=job_version)
    if not results:
        click.echo("No results found")
        click.echo("You can check the logged output of the job using the logs command.")
        click.echo(f"\n  bacalhau job logs {job_id}")
        return
    if output_dir is None:
        name = f"job-{job_id}" if job.namespace == "default" else f"job-{job.namespace}-{job_id}"
        output_dir = Path.cwd() / name
        output_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif not output_dir.is_dir():
        raise InvalidRequest(f"output directory {output_dir} does not exist", hint="create it first")
    download_results(results, output_dir, raw=raw, timeout=download_timeout_secs, show_progress=sys.stderr.isatty())
    if inner_path:
        _keep_only(output_dir, inner_path)
    click.echo(f"Results for job '{job_id}' have been written to...")
    click.echo(str(output_dir.resolve()))


def _keep_only(output_dir: Path, inner_path: str) -> None:
    """``job get ID/path``: keep just that file or folder of the results."""
    wanted = (output_dir / inner_path).resolve()
    if not wanted.exists():
        raise NotFound(f"the results have no {inner_path}", hint="run 'bacalhau job get' without a path")
    for entry in list(output_dir.iterdir()):
        if entry.resolve() != wanted and not wanted.is_relative_to(entry.resolve()):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
