"""``bacalhau agent ...`` and ``bacalhau version``: the node's liveness, version, info, config and debug state."""

from __future__ import annotations

from typing import Any

import click

from bacalhau import __version__
from bacalhau.cli.context import cli_context
from bacalhau.cli.output import options_from, output_flags, print_data, print_table
from bacalhau.errors import BacalhauError
from bacalhau.version import API_VERSION, build_info


@click.group("agent", help="Query the node the CLI talks to.")
def agent_group() -> None:
    pass


@agent_group.command("alive", help="Is the node alive?")
@output_flags(default="yaml", choices=("json", "yaml"))
def alive(**kwargs: Any) -> None:
    print_data(cli_context().client().alive(), options_from(kwargs))


@agent_group.command("version", help="The node's version.")
@output_flags(default="", choices=("", "json", "yaml"))
def agent_version(**kwargs: Any) -> None:
    options = options_from(kwargs)
    info = cli_context().client().version()
    if options.format:
        print_data(info.to_wire(), options)
        return
    click.echo(f"Bacalhau {info.git_version}\nBuildDate {info.to_wire()['BuildDate']}\nGitCommit {info.git_commit}")


@agent_group.command("node", help="The node's info.")
@output_flags(default="yaml", choices=("json", "yaml"))
def agent_node(**kwargs: Any) -> None:
    print_data(cli_context().client().agent_node(), options_from(kwargs))


@agent_group.command("config", help="The node's configuration (secrets masked).")
@output_flags(default="yaml", choices=("json", "yaml"))
def agent_config(**kwargs: Any) -> None:
    body = cli_context().client().agent_config()
    print_data(body.get("config", body), options_from(kwargs))


@agent_group.command(
    "debug", help="What the node is doing: who leads, queues, streams, store, uptime, config, recent errors."
)
@output_flags(default="yaml", choices=("json", "yaml"))
def agent_debug(**kwargs: Any) -> None:
    print_data(cli_context().client().agent_debug(), options_from(kwargs))


SERVER_VERSION_TIMEOUT = 3.0  # seconds: an unreachable server must not hold up the client's own version


@click.command("version", help="Get the client and server version.")
@click.option("--client", "client_only", is_flag=True, help="Only the client version (no server required).")
@output_flags(choices=("table", "csv", "json", "yaml"))
def version_command(client_only: bool, **kwargs: Any) -> None:
    options = options_from(kwargs)
    server = None
    if not client_only:
        context = cli_context()
        try:
            server = context.client(timeout=SERVER_VERSION_TIMEOUT).version()
        except BacalhauError as exc:
            click.secho(f"Warning: could not get the server version: {exc.message}", fg="yellow", err=True)
            click.secho("Hint:  showing the client version only; use --client to skip the server", err=True)
    if options.format in ("json", "yaml"):
        data: dict[str, Any] = {"clientVersion": build_info().to_wire()}
        if server is not None:
            data["serverVersion"] = server.to_wire()
        data["pythonPackageVersion"] = __version__
        print_data(data, options)
        return
    headers = ["Client"] + (["Server"] if server else [])
    row = [API_VERSION] + ([server.git_version] if server else [])
    print_table(headers, [row], options)
