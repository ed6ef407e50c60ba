"""Printing: tables like the original's (upper-case headers, short IDs, relative times), JSON, YAML and CSV."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "csv", "json", "yaml")


@dataclass
class OutputOptions:
    format: str = "table"
    pretty: bool = False
    wide: bool = False
    no_style: bool = False
    hide_header: bool = False


def output_flags(default: str = "table", choices: Sequence[str] = FORMATS) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(
            [
                click.option(
                    "--output",
                    "output_format",
                    type=click.Choice(choices),
                    default=default,
                    show_default=True,
                    help="The output format.",
                ),
                click.option("--pretty", is_flag=True, help="Indent JSON output."),
                click.option("--wide", is_flag=True, help="Print full IDs and values, without truncation."),
                click.option("--no-style", is_flag=True, help="Plain tables, without colours or borders."),
                click.option("--hide-header", is_flag=True, help="Leave the header row out of tables and CSV."),
            ]
        ):
            func = option(func)
        return func

    return decorate


def options_from(kwargs: dict[str, Any]) -> OutputOptions:
    return OutputOptions(
        format=kwargs.pop("output_format", "table"),
        pretty=kwargs.pop("pretty", False),
        wide=kwargs.pop("wide", False),
        no_style=kwargs.pop("no_style", False),
        hide_header=kwargs.pop("hide_header", False),
    )


def console(stderr: bool = False) -> Console:
    """A console that never truncates: when not printing to a terminal there is no width to respect."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 100_000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_data(data: Any, options: OutputOptions) -> None:
    if options.format == "yaml":
        import yaml  # only for YAML output: loading it costs every other listing 20 ms

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
    else:
        click.echo(json.dumps(data, indent=2 if options.pretty else None, ensure_ascii=False))


def print_table(headers: list[str], rows: list[list[str]], options: OutputOptions) -> None:
    if options.format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not options.hide_header:
            writer.writerow([h.upper() for h in headers])
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    table = Table(box=None, show_header=not options.hide_header, pad_edge=True, padding=(0, 1), expand=False)
    style = "" if options.no_style or not sys.stdout.isatty() else "bold"
    for header in headers:
        table.add_column(header.upper(), header_style=style, no_wrap=not options.wide, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console().print(table)


def relative_time(ns: int, now: float | None = None) -> str:
    """``3m ago`` style, as the original prints times in tables."""
    if not ns:
        return ""
    seconds = max(0.0, (now or time.time()) - ns / 1e9)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole = int(seconds // size)
            rest = int((seconds % size) // (size // (24 if unit == "d" else 60)))
            suffix = {"d": "h", "h": "m", "m": "s"}[unit]
            return f"{whole}{unit}{rest}{suffix} ago" if rest else f"{whole}{unit} ago"
    return f"{int(seconds)}s ago"


def local_time(ns: int, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.localtime(ns / 1e9)) if ns else ""
