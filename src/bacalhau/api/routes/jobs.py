"""``/api/v1/orchestrator/jobs``: submit, list, get, stop, executions, history, results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.body import field_of, read_json, text_field, validate_model
from bacalhau.api.query import binding_error, get_all, get_bool, get_int, get_str, get_uint
from bacalhau.api.render import json_response
from bacalhau.api.schemas import (
    ERRORS,
    ExecutionsPage,
    GetJobResponse,
    HistoryPage,
    ListJobsResponse,
    PutJobRequest,
    PutJobResponse,
    ResultsPage,
    StopJobRequest,
    StopJobResponse,
    body,
    query,
)
from bacalhau.models.job import Job
from bacalhau.models.selector import SelectorError, matches, parse_selector
from bacalhau.orchestrator.jobs import HistoryQuery, JobService, validation_error

PREFIX = "/api/v1/orchestrator/jobs"


def _history_compat(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Go clients older than v1.5 crash without the deprecated JobState/ExecutionState keys."""
    version = request.headers.get("x-bacalhau-git-version", "")
    if version and version < "v1.5.":
        for item in items:
            item["ExecutionState" if item.get("ExecutionID") else "JobState"] = {}
    return items


def router(jobs: JobService) -> APIRouter:
    api = APIRouter(tags=["Orchestrator"])

    async def submit(request: Request) -> Response:
        body = await read_json(request)
        raw_job = field_of(body, "Job")
        if not isinstance(raw_job, dict):
            raise validation_error(["empty/nil job"])
        job = validate_model(Job, raw_job)
        client = {
            "installation_id": request.headers.get("x-bacalhau-installationid", ""),
            "instance_id": request.headers.get("x-bacalhau-instanceid", ""),
        }
        result = await jobs.submit(job, client)
        return json_response(
            request,
            {"JobID": result.job_id, "EvaluationID": result.evaluation_id, "Warnings": result.warnings or None},
        )

    api.add_api_route(
        PREFIX,
        submit,
        methods=["PUT", "POST"],
        summary="Submit a job",
        responses={200: {"model": PutJobResponse}, **ERRORS},
        openapi_extra=body(PutJobRequest),
    )

    @api.get(
        PREFIX,
        summary="List jobs",
        responses={200: {"model": ListJobsResponse}, **ERRORS},
        openapi_extra=query(
            ("namespace", "string", "A namespace; empty or * for all"),
            ("limit", "integer", "Page size; 0 for no limit"),
            ("next_token", "string", "Continue a previous page (overrides order_by, reverse and limit)"),
            ("order_by", "string", "created_at (default) or modified_at"),
            ("reverse", "boolean", "Newest first"),
            ("labels", "string", "A label selector, e.g. env=prod"),
        ),
    )
    async def list_jobs(request: Request) -> Response:
        selector_text = ",".join(get_all(request, "labels"))
        try:
            selector = parse_selector(selector_text)
        except SelectorError as exc:
            raise binding_error(f"invalid labels selector: {exc}") from None
        items, token = await jobs.list_jobs(
            namespace=get_str(request, "namespace"),
            order_by=get_str(request, "order_by"),
            reverse=get_bool(request, "reverse"),
            limit=get_uint(request, "limit"),
            next_token=get_str(request, "next_token"),
            keep=(lambda job: matches(selector, job.labels)) if selector else None,
        )
        return json_response(request, {"NextToken": token, "Items": [job.to_wire() for job in items]})

    @api.get(
        PREFIX + "/{job_id}",
        summary="Get a job (by ID or unique ID prefix)",
        responses={200: {"model": GetJobResponse}, **ERRORS},
        openapi_extra=query(("include", "string", "history, executions, or both (comma separated)")),
    )
    async def get_job(request: Request, job_id: str) -> Response:
        job = await jobs.get_job(job_id)
        response: dict[str, Any] = {"Job": job.to_wire()}
        include = {part.strip() for part in get_str(request, "include").split(",") if part.strip()}
        if "history" in include:
            page = await jobs.history(job.id, HistoryQuery())
            items = _history_compat(request, [item.to_wire() for item in page.items])
            response["History"] = {"NextToken": "", "Items": items}
        if "executions" in include:
            executions = await jobs.executions(job.id)
            response["Executions"] = {"NextToken": "", "Items": [e.to_wire() for e in executions]}
        return json_response(request, response)

    @api.delete(
        PREFIX + "/{job_id}",
        summary="Stop a job",
        responses={200: {"model": StopJobResponse}, **ERRORS},
        openapi_extra={**body(StopJobRequest, required=False), **query(("reason", "string", "Why"))},
    )
    async def stop_job(request: Request, job_id: str) -> Response:
        body = await read_json(request)
        reason = text_field(body, "reason") or get_str(request, "reason")
        evaluation_id = await jobs.stop(job_id, reason)
        return json_response(request, {"EvaluationID": evaluation_id})

    @api.get(
        PREFIX + "/{job_id}/executions",
        summary="List a job's executions",
        responses={200: {"model": ExecutionsPage}, **ERRORS},
        openapi_extra=query(
            ("limit", "integer", "At most this many; 0 for all"),
            ("order_by", "string", "created_at (default) or modified_at"),
            ("reverse", "boolean", "Newest first"),
        ),
    )
    async def executions(request: Request, job_id: str) -> Response:
        items = await jobs.executions(
            job_id,
            order_by=get_str(request, "order_by"),
            reverse=get_bool(request, "reverse"),
            limit=get_uint(request, "limit"),
        )
        return json_response(request, {"NextToken": "", "Items": [e.to_wire() for e in items]})

    @api.get(
        PREFIX + "/{job_id}/history",
        summary="List a job's history",
        responses={200: {"model": HistoryPage}, **ERRORS},
        openapi_extra=query(
            ("since", "integer", "Only events at or after this Unix time (seconds)"),
            ("event_type", "string", "all (default), job or execution"),
            ("execution_id", "string", "Only this execution's events (ID or prefix)"),
            ("limit", "integer", "Page size; 0 for 100"),
            ("next_token", "string", "Continue a previous page"),
        ),
    )
    async def history(request: Request, job_id: str) -> Response:
        query = HistoryQuery(
            since=get_int(request, "since"),
            event_type=get_str(request, "event_type") or "all",
            execution_id=get_str(request, "execution_id"),
            limit=get_uint(request, "limit"),
            next_token=get_str(request, "next_token"),
        )
        page = await jobs.history(job_id, query)
        items = _history_compat(request, [item.to_wire() for item in page.items])
        return json_response(request, {"NextToken": page.next_token, "Items": items})

    @api.get(
        PREFIX + "/{job_id}/results",
        summary="List a job's published results",
        responses={200: {"model": ResultsPage}, **ERRORS},
    )
    async def results(request: Request, job_id: str) -> Response:
        items = await jobs.results(job_id)
        return json_response(request, {"NextToken": "", "Items": [spec.to_wire() for spec in items]}, escape_html=False)

    return api
