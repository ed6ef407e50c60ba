"""``bacalhau wasm run``: run a WebAssembly module as a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.cli.globalargs import ProgramCommand
from bacalhau.cli.job import runtime_flags, submit_and_follow
from bacalhau.cli.jobspec import JobFlags, SpecError, inline_source, job_to_yaml, parse_input, validate_spec


def job_flags(func: Any) -> Any:
    """The job and task flags ``docker run`` and ``wasm run`` share."""
    for option in reversed(
        [
            click.option("--name", default="", help="The name to refer to this job by."),
            click.option("--namespace", default="default", show_default=True),
            click.option("--priority", type=int, default=0, help="The priority of the job."),
            click.option("--count", type=int, default=1, show_default=True, help="How many nodes should run the job."),
            click.option(
                "--target",
                type=click.Choice(["any", "all"]),
                default="any",
                show_default=True,
                help="any: one node (batch); all: every matching node (ops).",
            ),
            click.option("--concurrency", type=int, default=None, hidden=True),
            click.option("--constraints", default="", help="Node label selector, e.g. 'region=eu,gpu!=true'."),
            click.option("-s", "--selector", default=None, hidden=True),
            click.option("-l", "--labels", multiple=True, help="Job labels, key=value (repeatable)."),
            click.option("--task-name", default="main", show_default=True),
            click.option("-e", "--env", multiple=True, help="Environment variable NAME=value (repeatable)."),
            click.option(
                "-i",
                "--input",
                "inputs",
                multiple=True,
                help="Input, as URI[:target] or src=URI,dst=PATH[,opt=k=v] (repeatable).",
            ),
            click.option("-o", "--output", "outputs", multiple=True, help="Result path name:path (repeatable)."),
            click.option(
                "-p",
                "--publisher",
                default="local",
                show_default=True,
                help="Where to publish results: local, noop, ipfs or s3://bucket/key.",
            ),
            click.option("--cpu", default="", help="CPU, e.g. 500m or 2."),
            click.option("--memory", default="", help="Memory, e.g. 512Mb or 2Gb."),
            click.option("--disk", default="", help="Disk, e.g. 10Gb."),
            click.option("--gpu", default="", help="Number of GPUs."),
            click.option("--network", default="default", help="none, host, full, http, bridge or default."),
            click.option("--domain", "domains", multiple=True, help="Domain the job may reach (repeatable)."),
            click.option("--timeout", type=int, default=0, help="Job timeout in seconds (0: none)."),
            click.option("--queue-timeout", type=int, default=0, help="How long the job may wait for a node."),
        ]
    ):
        func = option(func)
    return func


# The original's deprecated spellings: (old flag, its replacement, the JobFlags field both set).
DEPRECATED_FLAGS = (("concurrency", "count", "count"), ("selector", "constraints", "constraints"))


def flags_from(options: dict[str, Any]) -> JobFlags:
    """The shared flags as JobFlags, with a deprecated spelling standing in for its replacement (never both)."""
    ctx = click.get_current_context()
    for old, new, field_name in DEPRECATED_FLAGS:
        value = options.pop(old)
        if value is None:
            continue
        if ctx.get_parameter_source(new) == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"--{old} and --{new} cannot be used together: use --{new}")
        click.echo(f"Flag --{old} has been deprecated, use --{new}")
        options[field_name] = value
    names = JobFlags.__dataclass_fields__
    return JobFlags(**{k: options.pop(k) for k in list(options) if k in names})


def entry_module_input(value: str) -> tuple[dict[str, Any] | None, str]:
    """The entry module: a local file (inlined), a URI, or a path an input already mounts."""
    if value.startswith(("http://", "https://", "s3://", "ipfs://")):
        source = parse_input(value, default_target="main.wasm")
        return source, source["Target"]
    path_text, _, target = value.partition(":")
    path = Path(path_text).expanduser()
    if path.is_file():
        return {"Source": inline_source(path), "Target": target or "main.wasm"}, target or "main.wasm"
    if path.exists():
        raise SpecError(f"{path_text!r} should point to a single file")
    return None, value


@click.group("wasm", help="Run WebAssembly jobs.")
def wasm_group() -> None:
    pass


@wasm_group.command(
    "run",
    cls=ProgramCommand,
    help="Run a WASM module: a local file, a URL, or the target path of an --input.",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("module")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@job_flags
@click.option("-I", "--import-modules", multiple=True, help="Target paths (or file:target) of modules to import.")
@click.option("--entry-point", default="_start", show_default=True, help="The function to call.")
@runtime_flags
def wasm_run(
    module: str, args: tuple[str, ...], import_modules: tuple[str, ...], entry_point: str, **options: Any
) -> None:
    flags = flags_from(options)
    entry, entry_path = entry_module_input(module)
    if entry is not None:
        flags.extra_inputs.append(entry)
    imports = []
    for item in import_modules:
        source, path = entry_module_input(item)
        if source is not None:
            if ":" not in item:
                raise SpecError(f"import module {item!r} must specify a target path using the format 'path:target'")
            flags.extra_inputs.append(source)
        imports.append(path)
    engine: dict[str, Any] = {
        "Type": "wasm",
        "Params": {"EntryModule": entry_path, "Entrypoint": entry_point, "Parameters": list(args)},
    }
    if imports:
        engine["Params"]["ImportModules"] = imports
    spec = flags.build(engine)
    validate_spec(spec)
    if options["dry_run"]:
        click.echo(job_to_yaml(spec), nl=False)
        return
    submit_and_follow(cli_context().client(), spec, options)
