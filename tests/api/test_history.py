"""Checklist group C (§9, items 17-19): job history, its filters, paging and time formats."""

from __future__ import annotations

import time
from datetime import datetime

from bacalhau_sdk.jobs import Jobs

from tests.api.support import JOBS, RFC3339, assert_api_error, decode_token, get, history

# ---- item 17: filters


def test_sdk_history_returns_only_execution_level_items(sdk_env: None, completed_job: str) -> None:
    """The SDK asks for ``event_type=execution`` by default (and sends the ignored ``node_id=``)."""
    response = Jobs().history(completed_job)
    assert response is not None
    assert response.items
    assert {item.type for item in response.items} == {"ExecutionLevel"}


def test_event_type_job_returns_only_job_level_items(base_url: str, completed_job: str) -> None:
    """Raw ``event_type=job`` keeps the job-level items only."""
    items = history(base_url, completed_job, event_type="job")["Items"]
    assert items
    assert {item["Type"] for item in items} == {"JobLevel"}


def test_event_type_all_returns_both_levels(base_url: str, completed_job: str) -> None:
    """``all`` (the default) keeps both kinds."""
    items = history(base_url, completed_job, event_type="all")["Items"]
    assert {item["Type"] for item in items} == {"JobLevel", "ExecutionLevel"}
    assert items == history(base_url, completed_job)["Items"]


def test_unknown_event_type_is_a_400(base_url: str, completed_job: str) -> None:
    """Only ``all``, ``job``, ``execution`` or empty are valid."""
    assert_api_error(get(base_url, f"{JOBS}/{completed_job}/history", event_type="foo"), 400)


def test_negative_since_is_a_400(base_url: str, completed_job: str) -> None:
    """``since`` must be ``>= 0`` (validator failure)."""
    assert_api_error(get(base_url, f"{JOBS}/{completed_job}/history", since=-1), 400)


def test_execution_id_filter(base_url: str, completed_job: str) -> None:
    """``execution_id`` keeps the items of that execution only."""
    execution_ids = {
        item.get("ExecutionID") for item in history(base_url, completed_job, event_type="execution")["Items"]
    }
    [execution_id] = execution_ids
    items = history(base_url, completed_job, execution_id=execution_id)["Items"]
    assert items
    assert {item.get("ExecutionID") for item in items} == {execution_id}


def test_since_in_the_future_keeps_nothing(base_url: str, completed_job: str) -> None:
    """``since`` is in Unix seconds; items recorded before it are left out."""
    assert history(base_url, completed_job, since=int(time.time()) + 3600)["Items"] == []


# ---- item 18: paging


def test_history_page_token_points_past_the_last_item(base_url: str, completed_job: str) -> None:
    """With ``limit=1`` the token is ``:N:1:<SeqNum + 1>`` (§3.2)."""
    page = history(base_url, completed_job, limit=1)
    [item] = page["Items"]
    assert decode_token(page["NextToken"]) == f":N:1:{item['SeqNum'] + 1}"


def test_following_history_tokens_walks_every_item_in_order(base_url: str, completed_job: str) -> None:
    """Tokens walk every item once, in SeqNum order, and a terminal job's last page has no token."""
    everything = history(base_url, completed_job)["Items"]
    walked, page = [], history(base_url, completed_job, limit=1)
    for _ in range(len(everything) + 1):
        walked += page["Items"]
        if not page["NextToken"]:
            break
        page = history(base_url, completed_job, next_token=page["NextToken"])
    assert page["NextToken"] == ""
    seq_nums = [item["SeqNum"] for item in walked]
    assert seq_nums == [item["SeqNum"] for item in everything]
    assert seq_nums == sorted(seq_nums) and len(set(seq_nums)) == len(seq_nums)


def test_terminal_job_last_history_page_has_no_token(base_url: str, completed_job: str) -> None:
    """Nothing more can happen to a terminal job, so its last page ends the walk."""
    assert history(base_url, completed_job)["NextToken"] == ""


def test_non_terminal_job_history_always_has_a_token(base_url: str, waiting_job: str) -> None:
    """A job that can still change is polled with its token, even past the last item."""
    page = history(base_url, waiting_job)
    assert page["Items"] and page["NextToken"]
    after = history(base_url, waiting_job, next_token=page["NextToken"])
    assert after["NextToken"]


def test_invalid_history_token_is_a_job_store_400(base_url: str, completed_job: str) -> None:
    """A token that does not decode is rejected by the store (§1.4)."""
    response = get(base_url, f"{JOBS}/{completed_job}/history", next_token="bm90LWEtdG9rZW4")  # "not-a-token"
    body = assert_api_error(response, 400)
    assert (body["Code"], body["Component"]) == ("BadRequest", "JobStore"), body
    assert body["Message"].startswith("invalid next token"), body


# ---- item 19: times


def test_history_times_are_rfc3339(base_url: str, completed_job: str) -> None:
    """``Time`` and ``Event.Timestamp`` are RFC 3339 strings with a zone, unlike the integer job times."""
    items = history(base_url, completed_job)["Items"]
    assert items
    for stamp in [item["Time"] for item in items] + [item["Event"]["Timestamp"] for item in items]:
        assert RFC3339.match(stamp), stamp
        assert datetime.fromisoformat(stamp).tzinfo is not None
