"""The credentials a client sends, and what to tell its user when a node refuses them.

They come from the environment as the original's CLI reads it (an API key, or a username and password for HTTP
Basic), else from the profile in use (its token, sent as a Bearer token).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from bacalhau.errors import BacalhauError, ConfigurationError

API_KEY = "BACALHAU_API_KEY"
USERNAME = "BACALHAU_API_USERNAME"
PASSWORD = "BACALHAU_API_PASSWORD"
VARIABLES = (API_KEY, USERNAME, PASSWORD)
WHAT_TO_SET = f"{API_KEY}, or {USERNAME} and {PASSWORD}"


@dataclass(frozen=True)
class Credentials:
    """An ``Authorization`` header's value, and where it came from (a variable's name or a profile) for messages."""

    authorization: str = field(repr=False)
    source: str


def from_environment(environ: Mapping[str, str]) -> Credentials | None:
    """The credentials the variables give (None when none is set); a mix that means nothing is an error."""
    key, username, password = (environ.get(name, "").strip() for name in VARIABLES)
    if key and (username or password):
        raise _refused(f"can't use both {API_KEY} and {USERNAME}/{PASSWORD} simultaneously")
    if key:
        return Credentials(f"Bearer {key}", API_KEY)
    if username and password:
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
        return Credentials(f"Basic {encoded}", f"{USERNAME}/{PASSWORD}")
    if username:
        raise _refused(f"{USERNAME} provided but not {PASSWORD}")
    if password:
        raise _refused(f"{PASSWORD} provided but not {USERNAME}")
    return None


def from_profile(name: str, token: str) -> Credentials | None:
    return Credentials(f"Bearer {token}", f"the profile '{name}'") if token else None


def _refused(problem: str) -> ConfigurationError:
    return ConfigurationError(f"authentication error: {problem}", hint=f"set either {WHAT_TO_SET}")


def explain_refusal(error: BacalhauError, status: int, credentials: Credentials | None) -> tuple[str, str]:
    """The message and hint for a 401 or 403: the node's words and reason, then which variables to set."""
    reason = error.details.get("reason", "")
    message = f"{error.message}: {reason}" if reason else error.message
    if status == 403:
        advice = f"use the credentials of a user that has this capability ({WHAT_TO_SET})"
    elif credentials is None:
        advice = f"the node needs credentials: set {WHAT_TO_SET}"
    else:
        advice = f"the node does not accept the credentials from {credentials.source}: check them, or set {WHAT_TO_SET}"
    return message, f"{error.hint} {advice[0].upper()}{advice[1:]}" if error.hint else advice
