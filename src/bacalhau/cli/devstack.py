"""``bacalhau devstack``: an orchestrator and N compute nodes in one process, for trying things out locally."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.config import BacalhauConfig
from bacalhau.logs import setup_logging
from bacalhau.node import Node, run_nodes, shell_exports
from bacalhau.transport.natsserver import free_port

# Quicker failure detection than the production defaults, as the original's devstack has.
DEVSTACK_SETTINGS: dict[str, Any] = {
    "Compute.Heartbeat.Interval": "5s",
    "Orchestrator.NodeManager.DisconnectTimeout": "30s",
}


def node_config(base: BacalhauConfig, data_dir: Path, settings: dict[str, Any]) -> BacalhauConfig:
    """``base`` with the devstack settings and ``settings`` (dotted keys) applied, for one node."""
    return base.with_settings({**DEVSTACK_SETTINGS, "DataDir": str(data_dir), **settings}, "devstack")


@click.command("devstack", help="Run an orchestrator and compute nodes in one process, on this machine.")
@click.option(
    "--computes",
    "--compute-nodes",
    "computes",
    type=int,
    default=3,
    show_default=True,
    help="How many compute nodes to run.",
)
@click.option(
    "--stack-repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the nodes keep their data (default: a new temporary directory).",
)
def devstack_command(computes: int, stack_repo: Path | None) -> None:
    context = cli_context()
    base = context.config()
    setup_logging(context.log_level or base.logging.level, base.logging.mode)
    root = stack_repo or Path(tempfile.mkdtemp(prefix="bacalhau-devstack-"))
    predictable = bool(os.environ.get("PREDICTABLE_API_PORT"))
    nats_port = 4222 if predictable else free_port("127.0.0.1")

    def port(predictable_base: int, index: int) -> int:
        return predictable_base + index if predictable else 0

    nodes = [
        Node(
            node_config(
                base,
                root / "node-0",
                {
                    "Orchestrator.Enabled": True,
                    "Orchestrator.Port": nats_port,
                    "API.Port": port(1234, 0),
                    "Labels": {"id": "node-0", "name": "node-0", "env": "devstack"},
                },
            ),
            name="node-0",
        )
    ]
    for index in range(1, computes + 1):
        name = f"node-{index}"
        nodes.append(
            Node(
                node_config(
                    base,
                    root / name,
                    {
                        "Compute.Enabled": True,
                        "Compute.Orchestrators": [f"nats://127.0.0.1:{nats_port}"],
                        "API.Port": port(1234, index),
                        "Publishers.Types.Local.Port": port(6000, index),
                        "Labels": {"id": name, "name": name, "env": "devstack"},
                    },
                ),
                name=name,
            )
        )

    def ready() -> None:
        click.echo("Devstack is ready!")
        click.echo(f"Nodes: 1 orchestrator, {computes} compute; data in {root}")
        click.echo("To use the devstack, run:")
        click.echo(shell_exports(nodes[0].client_environment()), nl=False)

    run_nodes(*nodes, on_ready=ready)
    click.echo("Shutting down devstack")
