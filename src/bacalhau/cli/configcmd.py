"""``bacalhau config list|set``: see every config key with its value and meaning; write keys to a config file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from bacalhau.cli.context import cli_context
from bacalhau.cli.output import options_from, output_flags, print_data, print_table
from bacalhau.config import CONFIG_FILE_NAME, DEFAULT_DATA_DIR, KEYS, lookup_key
from bacalhau.config.set import cast_value, write_setting
from bacalhau.errors import ConfigurationError

SET_EXAMPLES = """\b
Examples:
  bacalhau config set api.host=127.0.0.1
  bacalhau config set compute.orchestrators=nats://127.0.0.1:4222,nats://1.1.1.1:4222
  bacalhau config set labels=foo=bar,baz=buz
  bacalhau config set --config ./node.yaml orchestrator.enabled=true"""


@click.group("config", help="Interact with the bacalhau configuration system.")
def config_group() -> None:
    pass


def go_value(value: Any) -> str:
    """A value as the original's table shows it (Go's ``%v``): ``[a b]`` for lists, ``map[k:v]`` for maps."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_value(item)}" for key, item in sorted(value.items())) + "]"
    return str(value)


@config_group.command(
    "list",
    help="List all config keys, with their current values and descriptions.\n\n"
    "The values are what a command run now would use: defaults, then the config file, then BACALHAU_* "
    "environment variables, then flags and -c Key=Value. Change one with 'bacalhau config set Key=Value', or for "
    "one command with 'bacalhau -c Key=Value ...'.",
)
@output_flags()
def config_list(**kwargs: Any) -> None:
    options = options_from(kwargs)
    context = cli_context()
    config = context.config(context.api_flags())
    wire = config.redacted()
    if options.format == "yaml":
        print_data(wire, options)  # the whole effective config, as the original prints it
        return
    wire["DataDir"] = str(config.data_path)
    entries = []
    for key in sorted(KEYS, key=lambda item: item.name):
        value: Any = wire
        for part in key.path:
            value = value[part]
        entries.append({"Key": key.name, "Value": value, "Description": key.help})
    if options.format == "json":
        print_data(entries, options)
        return
    rows = [[entry["Key"], go_value(entry["Value"]), entry["Description"]] for entry in entries]
    print_table(["Key", "Value", "Description"], rows, options)


def complete_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Config keys for shell completion, with their descriptions."""
    keys = sorted(KEYS, key=lambda item: item.name)
    return [CompletionItem(key.name, help=key.help) for key in keys if key.name.lower().startswith(incomplete.lower())]


def target_file(option: str | None) -> Path:
    """``config set --config FILE``, else the last ``-c FILE`` given to bacalhau, else ``$BACALHAU_DIR/config.yaml``."""
    context = cli_context()
    if option is None:
        files, _ = context.split_config_values()
        option = files[-1] if files else None
    if option is not None:
        if not option.endswith((".yaml", ".yml")):
            raise ConfigurationError(
                f"config file {option!r} must end with '.yaml' or '.yml'",
                code="ValidationError",
                component="config",
            )
        return Path(option).expanduser()
    directory = context.data_dir or os.environ.get("BACALHAU_DIR") or str(DEFAULT_DATA_DIR)
    return Path(directory).expanduser() / CONFIG_FILE_NAME


@config_group.command(
    "set",
    help="Set a value in the config file: KEY=VALUE (the older KEY VALUE... form still works).\n\n"
    "Writes $BACALHAU_DIR/config.yaml, or the file given with --config. Lists take commas or several values; "
    "maps take key=value,key2=value2.",
    epilog=SET_EXAMPLES,
    context_settings={"ignore_unknown_options": True},
)
@click.option(
    "-c", "--config", "config_file", default=None, help="The config file to write (default $BACALHAU_DIR/config.yaml)."
)
@click.argument("key", shell_complete=complete_keys)
@click.argument("values", nargs=-1, type=click.UNPROCESSED)
def config_set(key: str, values: tuple[str, ...], config_file: str | None) -> None:
    if "=" in key:
        if values:
            raise ConfigurationError(
                f"unexpected arguments after {key!r}: {' '.join(values)}",
                code="ValidationError",
                component="config",
                hint="give one KEY=VALUE; a list takes commas, e.g. compute.orchestrators=nats://a:4222,nats://b:4222",
            )
        key, _, value = key.partition("=")
        given = [value]
    else:
        if not values:
            raise ConfigurationError(
                "must provide both key and value, or key=value",
                code="ValidationError",
                component="config",
                hint=f"e.g. bacalhau config set {key}=<value>",
            )
        click.secho("DEPRECATED: use key=value instead of space-separated key value", fg="yellow", err=True)
        given = list(values)
    config_key = lookup_key(key)
    path = target_file(config_file)
    write_setting(path, config_key, cast_value(config_key, given))
    click.echo(f"Writing config to {path}")
