"""The ``bacalhau`` command."""

from __future__ import annotations

import importlib
import logging
import re
import sys

import click

from bacalhau import __version__
from bacalhau.cli.context import CliContext
from bacalhau.cli.globalargs import configure_logging, persist, root_options
from bacalhau.client.auth import API_KEY, PASSWORD, USERNAME
from bacalhau.errors import BacalhauError

# Each command's module, imported only when the command runs (or help lists them): `bacalhau job list` then pays
# nothing for what `serve` needs (the node, its engines, its servers).
COMMANDS = {
    "agent": "bacalhau.cli.agent:agent_group",
    "auth": "bacalhau.cli.auth:auth_group",
    "completion": "bacalhau.cli.completion:completion_command",
    "config": "bacalhau.cli.configcmd:config_group",
    "devstack": "bacalhau.cli.devstack:devstack_command",
    "docker": "bacalhau.cli.docker:docker_group",
    "job": "bacalhau.cli.job:job_group",
    "node": "bacalhau.cli.node:node_group",
    "profile": "bacalhau.cli.profile:profile_group",
    "serve": "bacalhau.cli.serve:serve_command",
    "version": "bacalhau.cli.agent:version_command",
    "wasm": "bacalhau.cli.wasm:wasm_group",
}


class BacalhauGroup(click.Group):
    """The root group: loads each command when needed, giving it the global options (see globalargs)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, name = target.partition(":")
        command = getattr(importlib.import_module(module), name)
        assert isinstance(command, click.Command)
        persist(command)
        return command


AUTH_VARIABLES = f"""\b
Auth environment variables:
  {API_KEY}         API key for builtin authentication
  {USERNAME}    Username for Basic Auth builtin authentication
  {PASSWORD}    Password for Basic Auth builtin authentication"""


@click.group(
    cls=BacalhauGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=AUTH_VARIABLES,
)
@root_options
@click.version_option(__version__, "--version", prog_name="bacalhau (Python)")
@click.pass_context
def cli(
    ctx: click.Context,
    api_host: str | None,
    api_port: int | None,
    data_dir: str | None,
    config_values: tuple[str, ...],
    log_level: str | None,
    profile: str | None,
) -> None:
    """Compute over data: submit jobs to a Bacalhau network and get their results."""
    ctx.obj = CliContext(api_host, api_port, data_dir, config_values, log_level, profile)
    ctx.call_on_close(ctx.obj.close)
    if log_level:
        configure_logging(log_level)


_GO_BOOL = re.compile(r"^--([a-z][a-z0-9-]*)=(true|false|True|False|TRUE|FALSE|1|0|t|f|T|F)$")
_DEFAULT_TRUE_FLAGS = {"wait"}


def go_style_bools(args: list[str]) -> list[str]:
    """Accept Go's ``--flag=true|false`` for boolean flags, as the original CLI does (``--wait=false``)."""
    result: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return result + args[index:]
        match = _GO_BOOL.match(arg)
        if not match:
            result.append(arg)
            continue
        name, value = match.groups()
        if value.lower() in ("true", "1", "t"):
            result.append(f"--{name}")
        elif name in _DEFAULT_TRUE_FLAGS:
            result.append(f"--no-{name}")
    return result


def run(args: list[str]) -> int:
    """Run one command line; returns the exit code (errors printed as the original prints them)."""
    try:
        cli.main(args=go_style_bools(args), prog_name="bacalhau", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BacalhauError as exc:
        click.secho(f"\nError: {exc.message}", fg="red", bold=True, err=True)
        if exc.hint:
            click.secho(f"Hint:  {exc.hint}", fg="green", err=True)
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one clear line, with the traceback a flag away
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        click.secho(f"\nError: unexpected {type(exc).__name__}: {exc}", fg="red", bold=True, err=True)
        click.secho("Hint:  run again with --log-level debug for the full details", fg="green", err=True)
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
