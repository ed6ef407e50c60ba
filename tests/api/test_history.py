"""Checklist group C (§9, items 17-19): job history, its filters, paging and time formats."""

from __future__ import annotations

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
    items = history(base_url, completed_job, event_type="job")["Items"]
    assert items
    assert {item["Type"] for item in items} == {"JobLevel"}


def test_event_type_all_returns_both_levels(base_url: str, completed_job: str) -> None:
    items = history(base_url, completed_job, event_type="all")["Items"]
    assert {item["Type"] for item in items} == {"JobLevel", "ExecutionLevel"}
    assert items == history(base_url, completed_job)["Items"]


def test_unknown_event_type_is_a_400(base_url: str, completed_job: str) -> None:
    assert_api_error(get(base_url, f"{JOBS}/{completed_job}/history", event_type="foo"), 400)


def test_negative_since_is_a_400(base_url: str, completed_job: str) -> None:
    assert_api_error(get(base_url, f"{JOBS}/{completed_job}/history", since=-1), 400)


# ---- item 18: paging


def test_history_page_token_points_past_the_last_item(base_url: str, completed_job: str) -> None:
    """With ``limit=1`` the token is ``:N:1:<SeqNum + 1>`` (§3.2)."""
    page = history(base_url, completed_job, limit=1)
    [item] = page["Items"]
    assert decode_token(page["NextToken"]) == f":N:1:{item['SeqNum'] + 1}"


def test_following_history_tokens_walks_every_item_in_order(base_url: str, completed_job: str) -> None:
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
    assert history(base_url, completed_job)["NextToken"] == ""


def test_non_terminal_job_history_always_has_a_token(base_url: str, waiting_job: str) -> None:
    """A job that can still change is polled with its token, even past the last item."""
    page = history(base_url, waiting_job)
    assert page["Items"] and page["NextToken"]
    after = history(base_url, waiting_job, next_token=page["NextToken"])
    assert after["NextToken"]


# ---- item 19: times


def test_history_times_are_rfc3339(base_url: str, completed_job: str) -> None:
    items = history(base_url, completed_job)["Items"]
    assert items
    for stamp in [item["Time"] for item in items] + [item["Event"]["Timestamp"] for item in items]:
        assert RFC3339.match(stamp), stamp
        assert datetime.fromisoformat(stamp).tzinfo is not None

