"""``/api/v1/ui``: the reads the web UI needs that the original's API has no cheap way to give (ours; behind
``read:job``). A dashboard must not download every job to count them, and a filtered job list must not page through
every job to find a few."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.query import binding_error, get_all, get_str, get_uint
from bacalhau.api.render import json_response
from bacalhau.api.schemas import ERRORS, ListJobsResponse, UiSummaryResponse, query
from bacalhau.models.job import JOB_TYPES
from bacalhau.models.limits import MAX_FILTER_LENGTH, MAX_UI_PAGE
from bacalhau.models.selector import SelectorError, matches, parse_selector
from bacalhau.models.state import JobStateType
from bacalhau.orchestrator.jobs import JobService

PREFIX = "/api/v1/ui"
DEFAULT_PAGE = 20
_STATES = {state.value.lower(): state.value for state in JobStateType}


def _bounded(request: Request, name: str) -> list[str]:
    values = get_all(request, name)
    if sum(len(value) for value in values) > MAX_FILTER_LENGTH:
        raise binding_error(f"{name} may be at most {MAX_FILTER_LENGTH} characters")
    return values


def router(jobs: JobService) -> APIRouter:
    api = APIRouter(tags=["Web UI"])

    @api.get(
        PREFIX + "/summary",
        summary="Jobs by state, and the jobs completed and failed per minute over the last hour",
        responses={200: {"model": UiSummaryResponse}, **ERRORS},
    )
    async def summary(request: Request) -> Response:
        found = await jobs.summary()
        return json_response(
            request,
            {
                "JobsByState": found.by_state,
                "TotalJobs": sum(found.by_state.values()),
                "Ended": {
                    "Now": found.now,
                    "IntervalSeconds": found.interval // 1_000_000_000,
                    "Completed": found.completed,
                    "Failed": found.failed,
                },
            },
        )

    @api.get(
        PREFIX + "/jobs",
        summary="List jobs newest first, filtered by state, type, labels and name",
        responses={200: {"model": ListJobsResponse}, **ERRORS},
        openapi_extra=query(
            ("state", "string", "Only jobs in this state (repeat for several)"),
            ("type", "string", "Only jobs of this type: batch, ops, daemon or service"),
            ("labels", "string", "A label selector, e.g. env=prod"),
            ("name", "string", "Only jobs whose name or ID contains this (any case)"),
            ("namespace", "string", "A namespace; empty or * for all"),
            ("limit", "integer", f"Page size, at most {MAX_UI_PAGE} (default {DEFAULT_PAGE})"),
            ("next_token", "string", "Continue a previous page (with the same filters)"),
        ),
    )
    async def list_jobs(request: Request) -> Response:
        states = []
        for value in _bounded(request, "state"):
            for part in filter(None, (item.strip() for item in value.split(","))):
                state = _STATES.get(part.lower())
                if state is None:
                    raise binding_error(f"invalid state: {part[:64]!r}")
                states.append(state)
        job_type = get_str(request, "type").lower()
        if job_type and job_type not in JOB_TYPES:
            raise binding_error(f"invalid type: {job_type[:64]!r}")
        try:
            selector = parse_selector(",".join(_bounded(request, "labels")))
        except SelectorError as exc:
            raise binding_error(f"invalid labels selector: {exc}") from None
        name = "".join(_bounded(request, "name")[:1]).strip()
        namespace = "".join(_bounded(request, "namespace")[:1])
        limit = get_uint(request, "limit") or DEFAULT_PAGE
        if limit > MAX_UI_PAGE:
            raise binding_error(f"limit may be at most {MAX_UI_PAGE}")
        items, token = await jobs.list_jobs(
            namespace=namespace or "*",
            reverse=True,
            limit=limit,
            next_token="".join(_bounded(request, "next_token")[:1]),
            keep=(lambda job: matches(selector, job.labels)) if selector else None,
            states=sorted(set(states)),
            job_type=job_type,
            name=name,
        )
        return json_response(request, {"NextToken": token, "Items": [job.to_wire() for job in items]})

    return api
