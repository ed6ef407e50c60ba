"""``bacalhau docker run``: run a container image as a job."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.cli.globalargs import ProgramCommand
from bacalhau.cli.job import runtime_flags, submit_and_follow
from bacalhau.cli.jobspec import SpecError, job_to_yaml, validate_spec
from bacalhau.cli.wasm import flags_from, job_flags


@click.group("docker", help="Run Docker jobs.")
def docker_group() -> None:
    pass


@docker_group.command(
    "run",
    cls=ProgramCommand,
    help="Run IMAGE[:TAG|@DIGEST] [COMMAND] [ARG...] as a job.",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@job_flags
@click.option("-w", "--workdir", default="", help="The working directory inside the container (absolute).")
@click.option("--entrypoint", default="", help="Override the image's entrypoint (comma-separated list).")
@runtime_flags
def docker_run(image: str, command: tuple[str, ...], workdir: str, entrypoint: str, **options: Any) -> None:
    flags = flags_from(options)
    if workdir and not workdir.startswith("/"):
        raise SpecError(f"--workdir {workdir!r} must be an absolute path")
    params: dict[str, Any] = {"Image": image}
    if entrypoint:
        params["Entrypoint"] = [part for part in entrypoint.split(",") if part]
    if command:
        params["Parameters"] = list(command)
    if workdir:
        params["WorkingDirectory"] = workdir
    spec = flags.build({"Type": "docker", "Params": params})
    validate_spec(spec)
    if options["dry_run"]:
        click.echo(job_to_yaml(spec), nl=False)
        return
    submit_and_follow(cli_context().client(), spec, options)
