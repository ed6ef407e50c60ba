"""``bacalhau auth info|hash-password``: which credentials the CLI would send, and bcrypt hashes for API users."""

from __future__ import annotations

import getpass
import os
import sys

import click

from bacalhau.cli.context import cli_context
from bacalhau.client.auth import API_KEY, PASSWORD, USERNAME
from bacalhau.errors import BacalhauError

HASH_COST = 10  # the original's (Go's bcrypt.DefaultCost)
HASH_MAX_LENGTH = 100  # the original's limit for this command
BCRYPT_MAX_BYTES = 72


@click.group("auth", help="Authentication commands for Bacalhau.")
def auth_group() -> None:
    pass


def read_secret(prompt: str) -> str:
    """A secret typed at a terminal (not echoed; the prompt on stderr, so that stdout holds only the result), or the
    first line of piped stdin. Never an argument: those show in ``ps`` and in shell history."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt, stream=sys.stderr)
    try:
        return sys.stdin.buffer.readline().decode().strip()
    except UnicodeDecodeError:
        raise BacalhauError("failed to read the secret from stdin: it is not UTF-8 text") from None


@auth_group.command("hash-password", help="Hash a password using bcrypt (typed without echo, or piped to stdin).")
def hash_password() -> None:
    import bcrypt  # only this command needs it: the CLI starts faster without

    password = read_secret("Enter password: ").encode()
    if not password:
        raise BacalhauError("password cannot be empty")
    if len(password) > HASH_MAX_LENGTH:
        raise BacalhauError(f"password exceeds maximum length of {HASH_MAX_LENGTH} characters")
    if len(password) > BCRYPT_MAX_BYTES:
        raise BacalhauError(f"failed to hash password: bcrypt: password length exceeds {BCRYPT_MAX_BYTES} bytes")
    click.echo(bcrypt.hashpw(password, bcrypt.gensalt(HASH_COST, prefix=b"2a")).decode())


def _status(value: str) -> str:
    return "Set" if value else "Not Set"


@auth_group.command("info", help="Display authentication information.")
def info() -> None:
    context = cli_context()
    endpoint = context.endpoint()
    lines = ["", f"Target environment: {endpoint.url}", "", "Environment Variables:"]
    for label, variable in (("API Key", API_KEY), ("Username", USERNAME), ("Password", PASSWORD)):
        lines.append(f"{label}: {_status(os.environ.get(variable, ''))}")
    if endpoint.profile:
        lines.append(f"Profile '{endpoint.profile}' token: {_status(endpoint.token)}")
    lines.append("")
    try:  # open on every node: asked without credentials, which may be what is being checked
        settings = context.client(anonymous=True).auth_config()
    except BacalhauError:
        lines.append("Server does not support Basic Auth, API Keys, or SSO logins")
        click.echo("\n".join(lines))
        return
    sso = settings.get("Config") or {}
    lines.append("Node SSO Authentication:")
    if sso.get("ProviderID"):
        lines.append(f"Provider Name: {sso.get('ProviderName', '')}")
        lines.append(f"Provider ID: {sso['ProviderID']}")
        lines.append(f"Version: {settings.get('Version', '')}")
    else:
        lines.append("Server does not support SSO login")
    lines.append("")
    lines.append("Note: Environment variables take precedence over other authentication mechanisms including SSO.")
    lines.append("To use SSO login, please unset Auth related environment variables first.")
    click.echo("\n".join(lines))
