"""``bacalhau node ...``: list, describe, approve, reject and delete nodes."""

from __future__ import annotations

from typing import Any

import click

from bacalhau.cli.context import cli_context
from bacalhau.cli.output import options_from, output_flags, print_data, print_table
from bacalhau.models.ids import short_id
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources, format_bytes

COLUMN_GROUPS = ("labels", "capacity", "version", "features")


def _capacity(resources: Resources, maximum: Resources) -> str:
    parts = [
        f"CPU {resources.cpu:g}/{maximum.cpu:g}",
        f"Mem {format_bytes(resources.memory)}/{format_bytes(maximum.memory)}",
    ]
    if maximum.gpu:
        parts.append(f"GPU {resources.gpu}/{maximum.gpu}")
    return ", ".join(parts)


def _row(node: NodeState, show: list[str], wide: bool) -> list[str]:
    info = node.info
    row = [info.node_id if wide else short_id(info.node_id), info.node_type, node.membership, node.connection]
    compute = info.compute_node_info
    if "labels" in show:
        row.append(" ".join(f"{k}={v}" for k, v in sorted(info.labels.items())))
    if "capacity" in show:
        row.append(_capacity(compute.available_capacity, compute.max_capacity) if compute else "")
    if "version" in show:
        row.append(info.bacalhau_version.git_version)
    if "features" in show:
        row.append(
            "; ".join(
                f"{name}: {' '.join(values)}"
                for name, values in (
                    ("engines", compute.execution_engines if compute else []),
                    ("inputs", compute.storage_sources if compute else []),
                    ("publishers", compute.publishers if compute else []),
                )
                if values
            )
        )
    return row


@click.group("node", help="List and manage the nodes of the network.")
def node_group() -> None:
    pass


@node_group.command("list", help="List nodes.")
@click.option(
    "--show", default="labels,capacity", show_default=True, help=f"Extra column groups: {', '.join(COLUMN_GROUPS)}."
)
@click.option("--labels", default="", help="Filter by a label selector, e.g. zone=eu.")
@click.option("--filter-approval", type=click.Choice(["approved", "pending", "rejected"], case_sensitive=False))
@click.option("--filter-status", type=click.Choice(["connected", "disconnected"], case_sensitive=False))
@click.option("--limit", type=int, default=0, help="At most this many nodes.")
@click.option("--order-by", default="", help="id, type, approval, status, available_cpu, available_memory, ...")
@click.option("--order-reversed", is_flag=True)
@output_flags()
def list_nodes(
    show: str,
    labels: str,
    filter_approval: str | None,
    filter_status: str | None,
    limit: int,
    order_by: str,
    order_reversed: bool,
    **kwargs: Any,
) -> None:
    options = options_from(kwargs)
    groups = [group.strip() for group in show.split(",") if group.strip()]
    unknown = [group for group in groups if group not in COLUMN_GROUPS]
    if unknown:
        raise click.BadParameter(f"unknown column group(s) {', '.join(unknown)}", param_hint="--show")
    nodes = (
        cli_context()
        .client()
        .nodes(
            labels=labels or None,
            limit=limit or None,
            order_by=order_by or None,
            reverse=order_reversed or None,
            **{"filter-approval": filter_approval, "filter-status": filter_status},
        )
    )
    if options.format in ("json", "yaml"):
        print_data([node.to_wire() for node in nodes], options)
        return
    headers = ["ID", "Type", "Approval", "Status", *(g.capitalize() for g in groups)]
    print_table(headers, [_row(node, groups, options.wide) for node in nodes], options)


@node_group.command("describe", help="Show one node (by ID or unique prefix).")
@click.argument("node_id")
@output_flags(default="yaml", choices=("json", "yaml"))
def describe_node(node_id: str, **kwargs: Any) -> None:
    body = cli_context().client().request("GET", f"/api/v1/orchestrator/nodes/{node_id}")
    print_data(body.get("Node", body), options_from(kwargs))


def _act(action: str, node_id: str, message: str) -> None:
    cli_context().client().request(
        "PUT", f"/api/v1/orchestrator/nodes/{node_id}", body={"Action": action, "Message": message}
    )
    click.echo("Ok")


@node_group.command("approve", help="Let a pending (or rejected) node receive work.")
@click.argument("node_id")
@click.option("-m", "--message", default="", help="Why (logged).")
def approve(node_id: str, message: str) -> None:
    _act("approve", node_id, message)


@node_group.command("reject", help="Stop a node from receiving work.")
@click.argument("node_id")
@click.option("-m", "--message", default="", help="Why (logged).")
def reject(node_id: str, message: str) -> None:
    _act("reject", node_id, message)


@node_group.command("delete", help="Forget a node.")
@click.argument("node_id")
@click.option("-m", "--message", default="", help="Why (logged).")
def delete(node_id: str, message: str) -> None:
    _act("delete", node_id, message)
