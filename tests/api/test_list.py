"""Checklist group B (§9, items 11-16): listing jobs, paging, ordering and filtering."""

from __future__ import annotations

from typing import Any

import pytest
from bacalhau_apiclient import OrchestratorApi

from tests.api.support import JOBS, assert_api_error, decode_token, docker_job, finish, get, noop_job, unique
from tests.helpers import submit


def listed(base_url: str, **params: Any) -> dict[str, Any]:
    response = get(base_url, JOBS, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(items: list[Any]) -> list[str]:
    return [item["ID"] if isinstance(item, dict) else item.id for item in items]


@pytest.fixture(scope="module")
def seven_jobs(base_url: str) -> tuple[str, list[str]]:
    """Seven finished jobs in a namespace of their own: (namespace, IDs in submission order)."""
    namespace = unique("seven")
    job_ids = [submit(base_url, docker_job(Namespace=namespace)) for _ in range(7)]
    for job_id in job_ids:
        finish(base_url, job_id, "Failed")
    return namespace, job_ids


# ---- item 11: paging


def test_first_page_is_the_oldest_five(orchestrator: OrchestratorApi, seven_jobs: tuple[str, list[str]]) -> None:
    """``limit=5`` ascending by ``created_at`` gives the five oldest jobs and a token for the rest."""
    namespace, job_ids = seven_jobs
    page = orchestrator.orchestratorlist_jobs(namespace=namespace, limit=5, order_by="created_at", reverse=False)
    assert ids(page.items) == job_ids[:5]
    create_times = [job.create_time for job in page.items]
    assert create_times == sorted(create_times)
    assert page.next_token


def test_next_token_encodes_sort_reverse_limit_and_offset(
    orchestrator: OrchestratorApi, seven_jobs: tuple[str, list[str]]
) -> None:
    """The token is unpadded base64url of ``<sortBy>:<Y|N>:<limit>:<offset>`` (§3.1), plus the position of the page's
    last job (our addition, so that pages never repeat or skip a job)."""
    namespace, job_ids = seven_jobs
    page = orchestrator.orchestratorlist_jobs(namespace=namespace, limit=5, order_by="created_at", reverse=False)
    assert decode_token(page.next_token).startswith("created_at:N:5:5:")
    assert decode_token(page.next_token).endswith(f":{job_ids[4]}")


def test_next_token_overrides_the_limit(orchestrator: OrchestratorApi, seven_jobs: tuple[str, list[str]]) -> None:
    """The second page keeps the token's limit of 5 (so it holds the last 2 jobs) and has no further token."""
    namespace, job_ids = seven_jobs
    first = orchestrator.orchestratorlist_jobs(namespace=namespace, limit=5, order_by="created_at", reverse=False)
    second = orchestrator.orchestratorlist_jobs(namespace=namespace, next_token=first.next_token, limit=1)
    assert ids(second.items) == job_ids[5:]
    assert second.next_token == ""


def test_pages_never_repeat_jobs_submitted_meanwhile(base_url: str) -> None:
    """Newest first, with new jobs arriving between pages: offsets would repeat jobs; positions do not."""
    namespace = unique("keyset")
    first_ids = [submit(base_url, noop_job(Namespace=namespace)) for _ in range(4)]
    first = get(base_url, JOBS, namespace=namespace, limit=2, reverse="true").json()
    for _ in range(3):
        submit(base_url, noop_job(Namespace=namespace))
    second = get(base_url, JOBS, namespace=namespace, next_token=first["NextToken"]).json()
    listed = [job["ID"] for job in first["Items"] + second["Items"]]
    assert listed == first_ids[::-1]
    assert second["NextToken"] == ""


def test_invalid_next_token_is_a_400(base_url: str) -> None:
    """A token that does not decode to four parts is a client error (§3.1)."""
    body = assert_api_error(get(base_url, JOBS, next_token="bm90LWEtdG9rZW4"), 400)  # "not-a-token"
    assert "invalid paging token" in body["Message"], body


# ---- item 12: ordering


def test_reverse_lists_newest_first(orchestrator: OrchestratorApi, seven_jobs: tuple[str, list[str]]) -> None:
    """``reverse=True`` sorts by creation time, newest first."""
    namespace, job_ids = seven_jobs
    page = orchestrator.orchestratorlist_jobs(namespace=namespace, order_by="created_at", reverse=True)
    assert ids(page.items) == job_ids[::-1]
    assert page.next_token == ""


def test_order_by_modified_at(orchestrator: OrchestratorApi, seven_jobs: tuple[str, list[str]]) -> None:
    """``order_by=modified_at`` is accepted and sorts by ``ModifyTime``."""
    namespace, job_ids = seven_jobs
    page = orchestrator.orchestratorlist_jobs(namespace=namespace, order_by="modified_at", reverse=False)
    assert sorted(ids(page.items)) == sorted(job_ids)
    modify_times = [job.modify_time for job in page.items]
    assert modify_times == sorted(modify_times)


def test_unknown_order_by_is_a_400(base_url: str, seven_jobs: tuple[str, list[str]]) -> None:
    """The original answers a generic 500 here; the reference allows a 400, which we prefer: it is a client error."""
    assert_api_error(get(base_url, JOBS, namespace=seven_jobs[0], order_by="bogus"), 400)


# ---- item 13: namespaces


@pytest.fixture(scope="module")
def two_namespaces(base_url: str) -> tuple[str, str, str]:
    """One job in ``default`` and one in a fresh namespace: (that namespace, default job ID, other job ID)."""
    namespace = unique("ns2")
    in_default = submit(base_url, docker_job())
    in_other = submit(base_url, docker_job(Namespace=namespace))
    return namespace, in_default, in_other


def test_list_without_namespace_spans_all_namespaces(base_url: str, two_namespaces: tuple[str, str, str]) -> None:
    """No ``namespace`` means every namespace (§3.5)."""
    _, in_default, in_other = two_namespaces
    assert {in_default, in_other} <= set(ids(listed(base_url)["Items"]))


def test_list_with_star_namespace_spans_all_namespaces(base_url: str, two_namespaces: tuple[str, str, str]) -> None:
    """``*`` means every namespace as well."""
    _, in_default, in_other = two_namespaces
    assert {in_default, in_other} <= set(ids(listed(base_url, namespace="*")["Items"]))


def test_list_with_a_namespace_returns_only_its_jobs(base_url: str, two_namespaces: tuple[str, str, str]) -> None:
    """Any other value is an exact namespace match."""
    namespace, in_default, in_other = two_namespaces
    assert ids(listed(base_url, namespace=namespace)["Items"]) == [in_other]
    default_ids = ids(listed(base_url, namespace="default")["Items"])
    assert in_default in default_ids and in_other not in default_ids


# ---- item 14: label selectors


@pytest.fixture(scope="module")
def labelled(base_url: str) -> tuple[str, dict[str, str]]:
    """Jobs with different labels in a namespace of their own: (namespace, job ID by name)."""
    namespace = unique("labels")
    labels = {
        "prod-web": {"env": "prod", "tier": "web"},
        "prod-db": {"env": "prod", "tier": "db"},
        "dev": {"env": "dev"},
        "staging": {"env": "staging"},
        "unlabelled": {},
    }
    return namespace, {
        name: submit(base_url, docker_job(Namespace=namespace, Labels=value)) for name, value in labels.items()
    }


def selected(base_url: str, labelled: tuple[str, dict[str, str]], *selectors: str) -> set[str]:
    """The names of the labelled jobs that ``?labels=<selector>&labels=...`` lists."""
    namespace, job_ids = labelled
    query = [("namespace", namespace)] + [("labels", selector) for selector in selectors]
    response = get(base_url, JOBS, query)
    assert response.status_code == 200, response.text
    names = {job_id: name for name, job_id in job_ids.items()}
    return {names[job_id] for job_id in ids(response.json()["Items"])}


def test_label_equality_selector(base_url: str, labelled: tuple[str, dict[str, str]]) -> None:
    """``?labels=env%3Dprod`` keeps only jobs whose ``env`` label is ``prod``."""
    assert selected(base_url, labelled, "env=prod") == {"prod-web", "prod-db"}


def test_label_set_selector(base_url: str, labelled: tuple[str, dict[str, str]]) -> None:
    """Set-based selectors work too: ``env in (prod,dev)``."""
    assert selected(base_url, labelled, "env in (prod,dev)") == {"prod-web", "prod-db", "dev"}


def test_repeated_label_selectors_are_anded(base_url: str, labelled: tuple[str, dict[str, str]]) -> None:
    """Every ``labels`` value is joined with ``,`` into one selector (§3.4)."""
    assert selected(base_url, labelled, "env=prod", "tier=web") == {"prod-web"}


def test_invalid_label_selector_is_a_400(base_url: str, labelled: tuple[str, dict[str, str]]) -> None:
    """A selector that does not parse is a client error."""
    assert_api_error(get(base_url, JOBS, namespace=labelled[0], labels="env in (prod"), 400)


# ---- item 15: query binding


@pytest.mark.parametrize(("reverse", "newest_first"), [("False", False), ("True", True), ("1", True), ("false", False)])
def test_reverse_accepts_go_and_python_booleans(
    base_url: str, seven_jobs: tuple[str, list[str]], reverse: str, newest_first: bool
) -> None:
    """Booleans parse as Go's ParseBool does, which covers the Python client's ``True``/``False``."""
    namespace, job_ids = seven_jobs
    listed_ids = ids(listed(base_url, namespace=namespace, reverse=reverse)["Items"])
    assert listed_ids == (job_ids[::-1] if newest_first else job_ids)


def test_non_numeric_limit_is_a_400(base_url: str) -> None:
    """``limit`` is a uint32; junk is a binding error."""
    assert_api_error(get(base_url, JOBS, limit="abc"), 400)


def test_query_parameter_names_match_case_insensitively(base_url: str, seven_jobs: tuple[str, list[str]]) -> None:
    """Query names bind case-insensitively (§1.2)."""
    namespace, job_ids = seven_jobs
    assert ids(listed(base_url, Namespace=namespace, LIMIT=2)["Items"]) == job_ids[:2]


def test_repeated_query_parameter_keeps_the_first_value(base_url: str, seven_jobs: tuple[str, list[str]]) -> None:
    """A repeated key keeps its first value (§1.2)."""
    namespace, job_ids = seven_jobs
    response = get(base_url, JOBS, [("namespace", namespace), ("limit", "2"), ("limit", "5")])
    assert response.status_code == 200, response.text
    assert ids(response.json()["Items"]) == job_ids[:2]


def test_empty_limit_means_no_limit(base_url: str, seven_jobs: tuple[str, list[str]]) -> None:
    """An empty value binds as 0, and limit 0 means everything (the Python client sends empty values)."""
    namespace, job_ids = seven_jobs
    body = listed(base_url, namespace=namespace, limit="", next_token="", order_by="")
    assert ids(body["Items"]) == job_ids
    assert body["NextToken"] == ""


# ---- item 16: pretty printing and the trailing newline


@pytest.mark.parametrize("query", ["pretty", "pretty=", "pretty=false"])
def test_pretty_indents_with_two_spaces(base_url: str, seven_jobs: tuple[str, list[str]], query: str) -> None:
    """The key ``pretty`` switches indentation on, whatever its value."""
    response = get(base_url, JOBS, f"namespace={seven_jobs[0]}&{query}")
    assert response.status_code == 200, response.text
    assert '\n  "' in response.text
    assert response.text.endswith("}\n")


def test_compact_json_by_default(base_url: str, seven_jobs: tuple[str, list[str]]) -> None:
    """Without ``pretty`` the body is one line, ended by a newline."""
    text = get(base_url, JOBS, namespace=seven_jobs[0]).text
    assert text.endswith("}\n")
    assert text.count("\n") == 1


@pytest.mark.parametrize(
    "path",
    [JOBS, "/api/v1/agent/version", "/api/v1/agent/alive", "/api/v1/orchestrator/nodes", f"{JOBS}/j-does-not-exist"],
)
def test_every_json_body_ends_with_a_newline(base_url: str, path: str) -> None:
    """Go's encoder ends every body with a newline, errors included."""
    response = get(base_url, path)
    assert response.headers["content-type"].startswith("application/json")
    assert response.text.endswith("\n")
    assert response.text.count("\n") == 1


def test_html_characters_are_escaped(base_url: str) -> None:
    """Like Go's encoder, responses write ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e`` and ``\\u0026`` (§1.3)."""
    namespace = unique("html")
    submit(base_url, docker_job(Namespace=namespace, Meta={"note": "<b>&</b>"}))
    text = get(base_url, JOBS, namespace=namespace).text
    assert "<b>" not in text and "&" not in text
    assert r"\u003cb\u003e\u0026\u003c/b\u003e" in text
    assert listed(base_url, namespace=namespace)["Items"][0]["Meta"]["note"] == "<b>&</b>"
