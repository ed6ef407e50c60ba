"""The published OpenAPI document is accurate: fuzzed with schemathesis against a node of its own.

No generated request may get a 5xx or hang, and every response must match the document (status, content type,
body schema). Besides what the document describes, the fuzzer sends the hostile job specs and strings of
tests/strategies.py in bodies and query strings. The examples are the same on every run (``derandomize``), so that
the suite passes or fails on the code alone; raise EXAMPLES_PER_OPERATION locally to explore further.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ServeProcess
from tests.strategies import hostile_query_text, job_spec

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The fuzzer approves, rejects and deletes nodes at random, so it gets a node of its own."""
    node = ServeProcess(tmp_path_factory.mktemp("fuzz") / "node", "--orchestrator", "--compute").start()
    yield node
    node.stop()


def hostile_bodies(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """A submission's body as the document describes it, or a hostile job spec."""
    operation = context.operation
    if operation is not None and operation.method.upper() in ("PUT", "POST") and operation.path.endswith("/jobs"):
        return st.one_of(st.just(body), job_spec().map(lambda spec: {"Job": spec}))
    return st.just(body)


def hostile_queries(context: schemathesis.HookContext, query: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """The generated query, or the same keys with hostile strings as values."""
    if not query:
        return st.just(query)
    hostile = st.fixed_dictionaries(dict.fromkeys(query, hostile_query_text))
    return st.one_of(st.just(query), hostile)


def test_every_operation_conforms_to_the_document(fuzz_node: ServeProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_node.url}/openapi.json")
    schema.hooks.register_hook_with_name(hostile_bodies, "flatmap_body")
    schema.hooks.register_hook_with_name(hostile_queries, "flatmap_query")
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
