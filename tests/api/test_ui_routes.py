"""``/api/v1/ui``: the web UI's summary and filtered job list (ours), with bounds on everything a client sends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import finish, noop_job
from tests.helpers import submit


def get(base_url: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{base_url}/api/v1/ui/{path}", params=params, timeout=10)


def test_the_summary_counts_every_job(base_url: str, namespace: str) -> None:
    before = get(base_url, "summary").json()
    job_id = submit(base_url, noop_job(Namespace=namespace))
    finish(base_url, job_id, "Completed")
    after = get(base_url, "summary").json()
    assert set(after) == {"JobsByState", "TotalJobs", "Ended"}
    assert after["TotalJobs"] == sum(after["JobsByState"].values()) >= before["TotalJobs"] + 1
    assert after["JobsByState"]["Completed"] >= before["JobsByState"].get("Completed", 0) + 1
    ended = after["Ended"]
    assert ended["IntervalSeconds"] == 60 and len(ended["Completed"]) == len(ended["Failed"]) == 60
    assert ended["Completed"][-1] >= 1 or ended["Completed"][-2] >= 1  # (a minute may have turned since)


def test_the_job_list_filters_newest_first(base_url: str, namespace: str) -> None:
    first = submit(base_url, noop_job(Namespace=namespace, Name="alpha-report", Labels={"team": "a"}))
    second = submit(base_url, noop_job(Namespace=namespace, Name="beta", Labels={"team": "b"}))
    for job_id in (first, second):
        finish(base_url, job_id, "Completed")

    def listed(**params: Any) -> list[str]:
        response = get(base_url, "jobs", namespace=namespace, **params)
        assert response.status_code == 200, response.text
        return [job["ID"] for job in response.json()["Items"]]

    assert listed() == [second, first]
    assert listed(state="completed") == [second, first]  # states in any case
    assert listed(state=["Running", "Failed"]) == []
    assert listed(type="batch") == [second, first]
    assert listed(labels="team=a") == [first]
    assert listed(name="REPORT") == [first]
    page = get(base_url, "jobs", namespace=namespace, limit=1).json()
    assert [job["ID"] for job in page["Items"]] == [second] and page["NextToken"]
    rest = get(base_url, "jobs", namespace=namespace, next_token=page["NextToken"]).json()
    assert [job["ID"] for job in rest["Items"]] == [first] and rest["NextToken"] == ""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "Nope"}, "invalid state"),
        ({"type": "cron"}, "invalid type"),
        ({"limit": "101"}, "limit may be at most 100"),
        ({"limit": "-1"}, "strconv.ParseUint"),
        ({"labels": "a=" + "b" * 2000}, "labels may be at most 1024 characters"),
        ({"name": "n" * 1025}, "name may be at most 1024 characters"),
        ({"labels": "a in (b"}, "invalid labels selector"),
        ({"next_token": "not-a-token"}, ""),
    ],
)
def test_what_a_client_sends_is_bounded(base_url: str, params: dict[str, str], message: str) -> None:
    response = get(base_url, "jobs", **params)
    assert response.status_code == 400, response.text
    assert message in response.json()["Message"]
