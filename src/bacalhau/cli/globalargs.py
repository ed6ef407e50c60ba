"""The global options, as the original's persistent flags: given before the command or after any (sub)command,
``bacalhau job list --config x.yaml -c API.Port=1235`` is ``bacalhau --config x.yaml -c API.Port=1235 job list``.

The root group declares them, with their environment variables (:func:`root_options`). Every command gets a copy of
them when it is loaded (:func:`persist`); a copy adds its value to the one :class:`CliContext`, after those given
before it, so the last ``--api-port`` wins and every ``-c`` counts, in order. A command's own option of the same
spelling wins, as a subcommand's flag shadows a persistent one in cobra: ``config set --config FILE`` names the file
to write. After a program's name (``docker run IMAGE sh -c 'echo hi'``, ``wasm run MODULE ...``) a short ``-c``
belongs to the program, as it did before these copies existed (the original takes it as its config flag and fails);
``--config`` is the config flag everywhere.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

import click

from bacalhau.cli.context import CliContext

_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--api-host",),
        {"envvar": "BACALHAU_API_HOST", "help": "The API host (or URL) to talk to; serve listens there."},
    ),
    (
        ("--api-port",),
        {"envvar": "BACALHAU_API_PORT", "type": int, "help": "The API port. [default: 1234]"},
    ),
    (
        ("--data-dir",),
        {"envvar": "BACALHAU_DIR", "help": "The data directory. [default: ~/.bacalhau]"},
    ),
    (
        ("-c", "--config", "config_values"),
        {"multiple": True, "help": "A config file, or Key=Value (a bare Key means true). Repeatable."},
    ),
    (
        ("--log-level",),
        {"envvar": "LOG_LEVEL", "help": "debug, info, warn or error."},
    ),
    (
        ("--profile",),
        {"envvar": "BACALHAU_PROFILE", "help": "Use this saved connection profile (see 'bacalhau profile')."},
    ),
)
_persisted: weakref.WeakSet[click.Command] = weakref.WeakSet()


def _help(settings: dict[str, Any]) -> str:
    return str(settings["help"]) + (f" [env: {settings['envvar']}]" if "envvar" in settings else "")


def root_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The global options on the root group, each with its environment variable."""
    for decls, settings in reversed(_OPTIONS):
        func = click.option(*decls, **{**settings, "help": _help(settings)})(func)
    return func


def configure_logging(level: str) -> None:
    """``--log-level``: the last one given wins, wherever it is."""
    name = level.upper() if level.upper() != "TRACE" else "DEBUG"
    logging.basicConfig(level=name)
    logging.getLogger().setLevel(name)


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """A copy's value, given after a command: added to the context the root made (none when completing)."""
    context = ctx.find_object(CliContext)
    if context is None or value is None or value == ():
        return
    if param.name == "config_values":
        context.config_values = (*context.config_values, *value)
        return
    setattr(context, str(param.name), value)
    if param.name == "log_level":
        configure_logging(value)


class ProgramCommand(click.Command):
    """A command whose arguments after the first are a program's (``docker run``, ``wasm run``): there ``-c`` is the
    program's, so the global short ``-c`` is understood only before that first argument."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            opt
            for param in self.get_params(ctx)
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for opt in param.opts
        }
        args = list(args)
        index = 0
        while index < len(args) and args[index] != "--":
            arg = args[index]
            if arg == "-c" or (arg.startswith("-c") and not arg.startswith("--")):
                args[index : index + 1] = ["--config", arg[2:]] if len(arg) > 2 else ["--config"]
                index += 2
            elif arg.startswith("-") and len(arg) > 1:
                index += 2 if arg in takes_value else 1
            else:
                break  # the program's name: the rest is its own
        return super().parse_args(ctx, args)


def persist(command: click.Command) -> None:
    """Give ``command`` (and its subcommands) copies of the global options it does not spell itself."""
    if command in _persisted:
        return
    _persisted.add(command)
    own = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for decls, settings in _OPTIONS:
        spellings = [decl for decl in decls if decl.startswith("-") and decl not in own]
        if isinstance(command, ProgramCommand) and "-c" in spellings:
            spellings.remove("-c")
        if not spellings:
            continue
        name = decls[-1] if not decls[-1].startswith("-") else decls[-1].lstrip("-").replace("-", "_")
        command.params.append(
            click.Option(
                [*spellings, name],
                type=settings.get("type"),
                multiple=settings.get("multiple", False),
                help=_help(settings),
                expose_value=False,
                callback=_store,
            )
        )
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            persist(subcommand)
