"""The published OpenAPI document is accurate: fuzzed with schemathesis against a node of its own.

No generated request may get a 5xx or hang, and every response must match the document (status, content type,
body schema). The examples are the same on every run (``derandomize``), so that the suite passes or fails on the code
alone; raise EXAMPLES_PER_OPERATION locally to explore further.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ServeProcess

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The fuzzer approves, rejects and deletes nodes at random, so it gets a node of its own."""
    node = ServeProcess(tmp_path_factory.mktemp("fuzz") / "node", "--orchestrator", "--compute").start()
    yield node
    node.stop()


def test_every_operation_conforms_to_the_document(fuzz_node: ServeProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_node.url}/openapi.json")
    failures: dict[str, str] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        )  # fmt: skip
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(timeout=10, checks=CHECKS)

        try:
            conforms()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
        tested += 1
    assert tested >= 15
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_document_and_interactive_docs_are_published(shared_node: ServeProcess) -> None:
    document = httpx.get(f"{shared_node.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/orchestrator/jobs" in document["paths"]
    assert "422" not in str(document["paths"]["/api/v1/orchestrator/jobs"])
    assert httpx.get(f"{shared_node.url}/docs").status_code == 200
