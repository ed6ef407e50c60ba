"""The published OpenAPI document is accurate: fuzzed with schemathesis against a node of its own, which has API
users, so that every request also passes the auth layer.

No generated request may get a 5xx or hang, and every response must match the document (status, content type,
body schema); without credentials, every operation but the open ones is refused. Besides what the document
describes, the fuzzer sends the hostile job specs and strings of tests/strategies.py in bodies and query strings.
The examples are the same on every run (``derandomize``), so that the suite passes or fails on the code alone; raise
EXAMPLES_PER_OPERATION locally to explore further.
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
FUZZ_KEY = "schemathesis-api-key-0123456789"
CREDENTIALS = {"Authorization": f"Bearer {FUZZ_KEY}"}
OPEN = {
    ("GET", "/api/v1/agent/alive"),
    ("GET", "/api/v1/agent/version"),
    ("GET", "/api/v1/agent/authconfig"),
    ("GET", "/api/v1/livez"),
    ("POST", "/api/v1/version"),
    ("GET", "/"),
}


@pytest.fixture(scope="module")
def fuzz_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The fuzzer approves, rejects and deletes nodes at random, so it gets a node of its own."""
    node = ServeProcess(tmp_path_factory.mktemp("fuzz") / "node", "--orchestrator", "--compute")
    node.with_config({"API": {"Auth": {"Users": [{"APIKey": FUZZ_KEY, "Capabilities": [{"Actions": ["*"]}]}]}}})
    node.start()
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
            response = case.call_and_validate(timeout=10, checks=CHECKS, headers=CREDENTIALS)
            assert response.status_code not in (401, 403), response.text  # the key may do everything

        try:
            conforms()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = str(exc)[:2000]
        tested += 1
    assert tested >= 15
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_without_credentials_only_the_open_operations_answer(fuzz_node: ServeProcess) -> None:
    """Each operation's document says whether it needs credentials (and may answer 401/403), and it does."""
    schema = schemathesis.openapi.from_url(f"{fuzz_node.url}/openapi.json")
    seen = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        seen.add(key)
        secured = "security" in operation.definition.raw
        assert secured == (key not in OPEN), key
        assert ("401" in operation.definition.raw["responses"]) == secured, key
        answers_without_credentials(fuzz_node.url, operation, is_open=key in OPEN)
    assert seen >= OPEN


def answers_without_credentials(url: str, operation: Any, *, is_open: bool) -> None:
    """Requests of this operation (without any Authorization header) are answered if it is open, else refused."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=5, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )  # fmt: skip
    def answers(case: schemathesis.Case) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = httpx.request(case.method, url + case.formatted_path, params=case.query, headers=headers, timeout=10)
        if is_open:
            assert response.status_code < 400, response.text
        else:
            assert response.status_code == 401, response.text
            assert response.json()["Details"] == {"reason": "Missing Authorization header"}

    answers()


def test_the_document_and_interactive_docs_are_published(shared_node: ServeProcess) -> None:
    document = httpx.get(f"{shared_node.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/orchestrator/jobs" in document["paths"]
    assert "422" not in str(document["paths"]["/api/v1/orchestrator/jobs"])
    assert httpx.get(f"{shared_node.url}/docs").status_code == 200
