"""Flag value parsers shared by several commands (used as click callbacks)."""

from __future__ import annotations

import click

from bacalhau.config import parse_duration


def duration_seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """A Go-style duration (``90s``, ``5m``, ``1h30m``) or a bare number of seconds, as seconds."""
    try:
        seconds = parse_duration(str(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration: use for example 30s, 5m or 1h") from None
    if seconds <= 0:
        raise click.BadParameter(f"{value!r} must be longer than zero")
    return seconds
