"""``/api/v1/orchestrator/jobs``: submit (or update by name), diff, list, get, stop, rerun, versions, executions,
history, results. Every ``{job_id}`` is a job ID, a job name (in ``namespace``) or a unique ID prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from bacalhau.api.body import bool_field, field_of, read_json, text_field, uint_field, validate_model
from bacalhau.api.query import binding_error, get_all, get_bool, get_int, get_str, get_uint
from bacalhau.api.render import json_response
from bacalhau.api.schemas import (
    ERRORS,
    DiffJobRequest,
    DiffJobResponse,
    ExecutionsPage,
    GetJobResponse,
    HistoryPage,
    ListJobsResponse,
    PutJobRequest,
    PutJobResponse,
    RerunJobRequest,
    RerunJobResponse,
    ResultsPage,
    StopJobRequest,
    StopJobResponse,
    VersionsPage,
    body,
    query,
)
from bacalhau.models.job import Job
from bacalhau.models.selector import SelectorError, matches, parse_selector
from bacalhau.orchestrator.jobs import HistoryQuery, JobService, VersionFilter, validation_error

PREFIX = "/api/v1/orchestrator/jobs"


def _history_compat(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Go clients older than v1.5 crash without the deprecated JobState/ExecutionState keys."""
    version = request.headers.get("x-bacalhau-git-version", "")
    if version and version < "v1.5.":
        for item in items:
            item["ExecutionState" if item.get("ExecutionID") else "JobState"] = {}
    return items


NAMESPACE = ("namespace", "string", "The job's namespace, when it is named by its name (default: default)")
JOB_VERSION = ("job_version", "integer", "This version of the job (default: the latest)")
ALL_VERSIONS = ("all_job_versions", "boolean", "Every version of the job")


def _job_in_body(body: Any) -> Job:
    raw_job = field_of(body, "Job")
    if not isinstance(raw_job, dict):
        raise validation_error(["empty/nil job"])
    return validate_model(Job, raw_job)


def _versions(request: Request) -> VersionFilter:
    return VersionFilter(get_uint(request, "job_version", bits=63), every=get_bool(request, "all_job_versions"))


def router(jobs: JobService) -> APIRouter:
    api = APIRouter(tags=["Orchestrator"])

    async def submit(request: Request) -> Response:
        body = await read_json(request)
        job = _job_in_body(body)
        client = {
            "installation_id": request.headers.get("x-bacalhau-installationid", ""),
            "instance_id": request.headers.get("x-bacalhau-instanceid", ""),
        }
        # A client's W3C trace context parents the job's trace (bounded and checked by bacalhau.lib.tracing).
        trace_parent = request.headers.get("traceparent", "")
        result = await jobs.submit(job, client, force=bool_field(body, "Force"), trace_parent=trace_parent)
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

    @api.put(
        PREFIX + "/diff",
        summary="Compare a job spec with the stored job of the same name",
        responses={200: {"model": DiffJobResponse}, **ERRORS},
        openapi_extra=body(DiffJobRequest),
    )
    async def diff(request: Request) -> Response:
        job = _job_in_body(await read_json(request))
        text, warnings = await jobs.diff(job)
        return json_response(request, {"Diff": text, "Warnings": warnings or None})

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
        summary="Get a job (by ID, name or unique ID prefix)",
        responses={200: {"model": GetJobResponse}, **ERRORS},
        openapi_extra=query(
            ("include", "string", "history, executions, or both (comma separated)"), NAMESPACE, JOB_VERSION
        ),
    )
    async def get_job(request: Request, job_id: str) -> Response:
        version = get_uint(request, "job_version", bits=63)
        job = await jobs.get_job(job_id, namespace=get_str(request, "namespace"), version=version)
        response: dict[str, Any] = {"Job": job.to_wire()}
        include = {part.strip() for part in get_str(request, "include").split(",") if part.strip()}
        if "history" in include:
            page = await jobs.history(job.id, HistoryQuery(versions=VersionFilter(job.version)))
            items = _history_compat(request, [item.to_wire() for item in page.items])
            response["History"] = {"NextToken": "", "Items": items}
        if "executions" in include:
            executions = await jobs.executions(job.id, versions=VersionFilter(version))
            response["Executions"] = {"NextToken": "", "Items": [e.to_wire() for e in executions]}
        return json_response(request, response)

    @api.delete(
        PREFIX + "/{job_id}",
        summary="Stop a job",
        responses={200: {"model": StopJobResponse}, **ERRORS},
        openapi_extra={**body(StopJobRequest, required=False), **query(("reason", "string", "Why"), NAMESPACE)},
    )
    async def stop_job(request: Request, job_id: str) -> Response:
        body = await read_json(request)
        reason = text_field(body, "reason") or get_str(request, "reason")
        evaluation_id = await jobs.stop(job_id, reason, namespace=get_str(request, "namespace"))
        return json_response(request, {"EvaluationID": evaluation_id})

    @api.put(
        PREFIX + "/{job_id}/rerun",
        summary="Run a job again, as a new version (of its latest spec, or of JobVersion's)",
        responses={200: {"model": RerunJobResponse}, **ERRORS},
        openapi_extra={**body(RerunJobRequest, required=False), **query(NAMESPACE)},
    )
    async def rerun(request: Request, job_id: str) -> Response:
        body = await read_json(request)
        result = await jobs.rerun(
            job_id,
            namespace=get_str(request, "namespace"),
            version=uint_field(body, "JobVersion"),
            reason=text_field(body, "Reason"),
            trace_parent=request.headers.get("traceparent", ""),
        )
        return json_response(
            request,
            {
                "EvaluationID": result.evaluation_id,
                "JobID": result.job_id,
                "JobVersion": result.job_version,
                "Warnings": None,
            },
        )

    @api.get(
        PREFIX + "/{job_id}/versions",
        summary="List every version of a job, oldest first",
        responses={200: {"model": VersionsPage}, **ERRORS},
        openapi_extra=query(
            NAMESPACE,
            ("limit", "integer", "Page size; 0 for every version"),
            ("next_token", "string", "Continue a previous page"),
        ),
    )
    async def versions(request: Request, job_id: str) -> Response:
        items, token = await jobs.versions(
            job_id,
            namespace=get_str(request, "namespace"),
            limit=get_uint(request, "limit"),
            next_token=get_str(request, "next_token"),
        )
        return json_response(request, {"NextToken": token, "Items": [job.to_wire() for job in items]})

    @api.get(
        PREFIX + "/{job_id}/executions",
        summary="List a job's executions (of its latest version unless asked)",
        responses={200: {"model": ExecutionsPage}, **ERRORS},
        openapi_extra=query(
            ("limit", "integer", "At most this many; 0 for all"),
            ("order_by", "string", "created_at (default) or modified_at"),
            ("reverse", "boolean", "Newest first"),
            NAMESPACE,
            JOB_VERSION,
            ALL_VERSIONS,
        ),
    )
    async def executions(request: Request, job_id: str) -> Response:
        items = await jobs.executions(
            job_id,
            namespace=get_str(request, "namespace"),
            versions=_versions(request),
            order_by=get_str(request, "order_by"),
            reverse=get_bool(request, "reverse"),
            limit=get_uint(request, "limit"),
        )
        return json_response(request, {"NextToken": "", "Items": [e.to_wire() for e in items]})

    @api.get(
        PREFIX + "/{job_id}/history",
        summary="List a job's history (of its latest version unless asked)",
        responses={200: {"model": HistoryPage}, **ERRORS},
        openapi_extra=query(
            ("since", "integer", "Only events at or after this Unix time (seconds)"),
            ("event_type", "string", "all (default), job or execution"),
            ("execution_id", "string", "Only this execution's events (ID or prefix)"),
            ("limit", "integer", "Page size; 0 for 100"),
            ("next_token", "string", "Continue a previous page"),
            NAMESPACE,
            JOB_VERSION,
            ALL_VERSIONS,
        ),
    )
    async def history(request: Request, job_id: str) -> Response:
        query = HistoryQuery(
            namespace=get_str(request, "namespace"),
            versions=_versions(request),
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
        summary="List a job's published results (of its latest version unless asked)",
        responses={200: {"model": ResultsPage}, **ERRORS},
        openapi_extra=query(NAMESPACE, JOB_VERSION),
    )
    async def results(request: Request, job_id: str) -> Response:
        items = await jobs.results(
            job_id, namespace=get_str(request, "namespace"), version=get_uint(request, "job_version", bits=63)
        )
        return json_response(request, {"NextToken": "", "Items": [spec.to_wire() for spec in items]}, escape_html=False)

    return api
