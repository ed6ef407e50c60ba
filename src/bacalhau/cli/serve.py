"""``bacalhau serve``: run an orchestrator, a compute node, or both."""

from __future__ import annotations

import logging
from typing import Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.logs import setup_logging
from bacalhau.node import Node, run_nodes

log = logging.getLogger("bacalhau.serve")


@click.command("serve", help="Start a Bacalhau node (orchestrator, compute, or both: a hybrid node).")
@click.option("--orchestrator", is_flag=True, default=None, help="Run the orchestrator role.")
@click.option("--compute", is_flag=True, default=None, help="Run the compute role.")
@click.option("--name", default="", help="The node's name (used on first start, then kept in the data dir).")
@click.option("--labels", default=None, help="Node labels, key=value,... (for job constraints).")
@click.option("--orchestrators", default=None, help="Orchestrator NATS URLs a compute node connects to.")
@click.option("--webui", is_flag=True, default=None, help="Serve the web UI (WebUI.Enabled; on WebUI.Listen).")
def serve_command(
    orchestrator: bool | None,
    compute: bool | None,
    name: str,
    labels: str | None,
    orchestrators: str | None,
    webui: bool | None,
) -> None:
    context = cli_context()
    flags: dict[str, Any] = {}
    if orchestrator:
        flags["Orchestrator.Enabled"] = True
    if compute:
        flags["Compute.Enabled"] = True
    if webui:
        flags["WebUI.Enabled"] = True
    if labels is not None:
        flags["Labels"] = dict(item.partition("=")[::2] for item in labels.split(",") if item)
    if orchestrators is not None:
        flags["Compute.Orchestrators"] = [u.strip() for u in orchestrators.split(",") if u.strip()]
    if context.api_host is not None:
        flags["API.Host"] = context.api_host
    if context.api_port is not None:
        flags["API.Port"] = context.api_port
    config = context.config(flags)
    setup_logging(context.log_level or config.logging.level, config.logging.mode)
    if not config.orchestrator.enabled and not config.compute.enabled:
        log.warning("neither --orchestrator nor --compute was given: starting an orchestrator")
        config.orchestrator.enabled = True
    run_nodes(Node(config, name=name, compute_process=True))
