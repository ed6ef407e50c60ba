"""``bacalhau profile save|list|show|select|delete``: named connection settings for Bacalhau clusters.

Use one for a command with ``--profile NAME`` (or ``BACALHAU_PROFILE``); ``select`` makes one the default.
"""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.auth import read_secret
from bacalhau.cli.context import cli_context
from bacalhau.cli.output import options_from, output_flags, print_data, print_table
from bacalhau.config import go_quote
from bacalhau.config.profiles import Profile, ProfileError, ProfileStore

_REDACT_BELOW = 8  # tokens this short are hidden entirely


@click.group("profile", help="Manage CLI connection profiles for Bacalhau clusters.")
def profile_group() -> None:
    pass


def _store() -> ProfileStore:
    return cli_context().profile_store()


@profile_group.command("save", help="Create or update a profile (only the options given change).")
@click.argument("name")
@click.option("--endpoint", default=None, help="API endpoint: host:port or a full URL (https://host:1234).")
@click.option("--description", default=None, help="Profile description.")
@click.option("--timeout", default=None, help="Request timeout (e.g. 30s, 1m). [default: 30s]")
@click.option("--insecure/--no-insecure", default=None, help="Skip TLS certificate verification.")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read an API key (sent as 'Authorization: Bearer') from stdin; typed without echo at a terminal.",
)
@click.option("--no-token", is_flag=True, help="Remove the profile's API key.")
@click.option("--select", "select_after", is_flag=True, help="Make it the current profile after saving.")
def save(
    name: str,
    endpoint: str | None,
    description: str | None,
    timeout: str | None,
    insecure: bool | None,
    token_stdin: bool,
    no_token: bool,
    select_after: bool,
) -> None:
    if token_stdin and no_token:
        raise click.UsageError("--token-stdin and --no-token contradict each other")
    store = _store()
    if store.exists(name):
        profile = store.load(name)
    elif not endpoint:
        raise ProfileError(
            "endpoint is required when creating a new profile",
            hint=f"bacalhau profile save {name} --endpoint host:port",
        )
    else:
        profile = Profile(endpoint=endpoint)
    if endpoint:
        profile.endpoint = endpoint
    if description is not None:
        profile.description = description
    if timeout is not None:
        profile.timeout = timeout
    if insecure is not None:
        profile.insecure = insecure
    if token_stdin:
        profile.token = read_secret("API key: ")
    if no_token:
        profile.token = ""
    store.save(name, profile)
    click.echo(f"Profile {go_quote(name)} saved")
    if select_after:
        store.select(name)
        click.echo(f"Switched to profile {go_quote(name)}")


@profile_group.command("list", help="List all CLI profiles ('*' marks the current one).")
@output_flags()
def list_profiles(**kwargs: Any) -> None:
    options = options_from(kwargs)
    store = _store()
    names = store.names()
    if not names and options.format in ("table", "csv"):
        click.echo("No profiles found")
        return
    current = store.current()
    entries = []
    for name in names:
        profile = store.load(name)
        entries.append(
            {
                "current": "*" if name == current else "",
                "name": name,
                "endpoint": profile.endpoint,
                "auth": "token" if profile.token else "",
            }
        )
    if options.format in ("json", "yaml"):
        print_data(entries, options)
        return
    print_table(["Current", "Name", "Endpoint", "Auth"], [list(entry.values()) for entry in entries], options)


def redact(token: str) -> str:
    """Enough of a token to recognise it, never enough to use it."""
    return "****" if len(token) <= _REDACT_BELOW else f"{token[:4]}****{token[-4:]}"


@profile_group.command("show", help="Show a profile (by default the one in use: --profile, BACALHAU_PROFILE, current).")
@click.argument("name", required=False)
@click.option("--show-token", is_flag=True, help="Show the whole token instead of a redacted one.")
def show(name: str | None, show_token: bool) -> None:
    store = _store()
    current = store.current()
    name = name or cli_context().profile or current
    if not name:
        raise ProfileError(
            "no current profile set",
            hint="select one with 'bacalhau profile select <name>' (see 'bacalhau profile list')",
        )
    profile = store.load(name)
    auth = f"token ({profile.token if show_token else redact(profile.token)})" if profile.token else "none"
    lines = [
        ("Name", f"{name} (current)" if name == current else name),
        ("Endpoint", profile.endpoint),
        ("Auth", auth),
        ("TLS", "insecure" if profile.insecure else "secure"),
        ("Timeout", profile.effective_timeout),
    ]
    if profile.description:
        lines.append(("Description", profile.description))
    for label, value in lines:
        click.echo(f"{label + ':':<13}{value}")


@profile_group.command("select", help="Make a profile the current one, used when no --profile is given.")
@click.argument("name")
def select(name: str) -> None:
    _store().select(name)
    click.echo(f"Switched to profile {go_quote(name)}")


@profile_group.command("delete", help="Delete a profile (asks first if it is the current one).")
@click.argument("name")
@click.option("-f", "--force", is_flag=True, help="Do not ask before deleting the current profile.")
def delete(name: str, force: bool) -> None:
    store = _store()
    if not store.exists(name):
        raise ProfileError(f"profile {go_quote(name)} not found", hint="run 'bacalhau profile list'")
    if store.current() == name and not force:
        try:
            confirmed = click.confirm(f"Profile {go_quote(name)} is the current profile. Delete anyway?", default=False)
        except click.Abort:
            confirmed = False
        if not confirmed:
            click.echo("Deletion cancelled")
            return
    store.delete(name)
    click.echo(f"Profile {go_quote(name)} deleted")
