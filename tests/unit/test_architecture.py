"""The import rules of DESIGN.md and docs/architecture.md: which part may import which, read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "bacalhau"


def imports() -> dict[str, set[str]]:
    """Every module of ours (dotted name) and the modules of ours it imports."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts).removesuffix(".__init__")
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        found[module] = {target for target in targets if target == "bacalhau" or target.startswith("bacalhau.")}
    return found


IMPORTS = imports()


def violations(importer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """``importer.* -> target`` for every import of a forbidden part (a package or module) not explicitly allowed."""
    found = []
    for module, targets in sorted(IMPORTS.items()):
        if module != importer and not module.startswith(importer + "."):
            continue
        for target in sorted(targets):
            hits = any(target == part or target.startswith(part + ".") for part in forbidden)
            if hits and not any(target == ok or target.startswith(ok + ".") for ok in allowed):
                found.append(f"{module} -> {target}")
    return found


PARTS = ("api", "cli", "client", "compute", "orchestrator", "transport", "lib", "node", "hybrid")


def ours(*names: str) -> tuple[str, ...]:
    return tuple(f"bacalhau.{name}" for name in names)


@pytest.mark.parametrize(
    ("importer", "forbidden", "allowed", "rule"),
    [
        (
            "bacalhau.models",
            ours(*PARTS, "errors", "config", "logs", "version"),
            (),
            "models import nothing of ours",
        ),
        (
            "bacalhau.orchestrator",
            ours("compute", "api", "cli", "node", "hybrid"),
            (),
            "orchestrator and compute meet ",
        ),
        ("bacalhau.compute", ours("orchestrator", "api", "cli", "node"), (), "only through transport messages"),
        (
            "bacalhau.api",
            ours("compute", "transport", "orchestrator", "cli", "node", "hybrid"),
            ours("orchestrator.jobs", "orchestrator.nodes", "orchestrator.logs"),
            "the API calls the orchestrator's services, never its store or the compute side",
        ),
        (
            "bacalhau.cli",
            ours("orchestrator", "compute", "api", "transport", "hybrid"),
            ("bacalhau.transport.natsserver",),  # devstack picks the NATS port of the nodes it starts
            "the CLI talks to a node only through the client",
        ),
        ("bacalhau.client", ours("api", "orchestrator", "compute", "cli", "transport", "node"), (), "a plain client"),
        (
            "bacalhau.transport",
            ours("orchestrator", "compute", "api", "cli", "node", "client"),
            (),
            "transport is shared",
        ),
        ("bacalhau.lib", ours(*PARTS[:-3], "node", "hybrid"), ("bacalhau.lib",), "lib is plumbing under everything"),
        (
            "bacalhau.webui",
            ours(*(part for part in PARTS if part != "lib"), "config"),
            (),
            "the web UI's server only serves its files: the browser reads jobs and nodes through the API",
        ),
        (
            "bacalhau.config",
            ours(*(part for part in PARTS if part != "lib"), "logs"),
            (),
            "the node and the CLI read the config; it reads neither (lib is plumbing under it too)",
        ),
    ],
)
def test_import_rules(importer: str, forbidden: tuple[str, ...], allowed: tuple[str, ...], rule: str) -> None:
    assert violations(importer, forbidden, allowed) == [], rule


def test_only_serve_and_devstack_start_nodes_from_the_cli() -> None:
    starters = {
        module
        for module, targets in IMPORTS.items()
        if module.startswith("bacalhau.cli") and "bacalhau.node" in targets
    }
    assert starters <= {"bacalhau.cli.serve", "bacalhau.cli.devstack"}


def test_engines_inputs_and_publishers_know_nothing_of_scheduling_or_each_other() -> None:
    for plugin in ("executors", "inputs", "publishers"):
        others = ours("compute.runner", "compute.bidder", "compute.handler", "compute.buffer", "compute.node")
        assert violations(f"bacalhau.compute.{plugin}", others) == [], plugin


def test_the_rules_see_the_code() -> None:
    """The scan finds imports at all (a rule over nothing would pass)."""
    assert "bacalhau.orchestrator.jobs" in IMPORTS["bacalhau.api.routes.jobs"]
    assert "bacalhau.api.routes.jobs -> bacalhau.orchestrator.jobs" in violations("bacalhau.api", ours("orchestrator"))
    assert len(IMPORTS) > 100
