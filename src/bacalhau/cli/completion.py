"""``bacalhau completion SHELL``: print the shell completion script, as the original's ``completion`` command does."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from bacalhau.errors import Unsupported

PROG_NAME = "bacalhau"
COMPLETE_VAR = "_BACALHAU_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell")

INSTALL = """\b
To load completions:
  bash:  source <(bacalhau completion bash)       # or save it under /etc/bash_completion.d/
  zsh:   source <(bacalhau completion zsh)        # in ~/.zshrc
  fish:  bacalhau completion fish > ~/.config/fish/completions/bacalhau.fish"""


@click.command("completion", help="Print the autocompletion script for SHELL.", epilog=INSTALL)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    completion_class = get_completion_class(shell)
    if completion_class is None:
        raise Unsupported(
            f"{shell} completion is not supported by this implementation of bacalhau",
            hint="use the bash, zsh or fish completion instead",
        )
    root = ctx.find_root().command
    click.echo(completion_class(root, {}, PROG_NAME, COMPLETE_VAR).source())
