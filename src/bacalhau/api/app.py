"""The HTTP API application (FastAPI), with the original's error format and headers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import iter_route_contexts
from pydantic.json_schema import models_json_schema
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from bacalhau import __version__
from bacalhau.api import errors, metrics
from bacalhau.api.auth import AuthMiddleware, document_security
from bacalhau.api.context import ApiContext
from bacalhau.api.middleware import ApiMiddleware
from bacalhau.api.routes import agent, jobs, legacy, logs, nodes, ui
from bacalhau.api.schemas import REQUEST_MODELS
from bacalhau.errors import BacalhauError


class Cors(CORSMiddleware):
    """Any origin may call the API; an accepted preflight is a bodiless 204, as the original answers it."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            kept = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
            return Response(status_code=204, headers=kept)
        return response


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Bacalhau API",
        version=__version__,
        description="Bacalhau's REST API (v1.9 wire format), served by the Python implementation.",
    )
    app.add_exception_handler(BacalhauError, errors.handle_bacalhau_error)
    app.add_exception_handler(StarletteHTTPException, errors.handle_http_error)
    if context.jobs is not None and context.logs is not None:
        app.include_router(jobs.router(context.jobs))
        app.include_router(logs.router(context.jobs, context.logs))
        app.include_router(ui.router(context.jobs))
    if context.nodes is not None:
        app.include_router(nodes.router(context.nodes))
    app.include_router(agent.router(context))
    app.include_router(legacy.router(context))
    if context.metrics is not None:
        app.include_router(metrics.router(context.metrics))
    # The last added runs first: the request ID and headers, then CORS (preflights pass), then the users' rights.
    if context.authorizer is not None:
        app.add_middleware(AuthMiddleware, authorizer=context.authorizer)
    app.add_middleware(
        Cors,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"],
        allow_headers=["*"],
    )
    app.add_middleware(ApiMiddleware)
    if context.metrics is not None:  # outermost: every answer is timed, refusals too
        histogram = metrics.request_histogram(context.metrics)
        app.add_middleware(metrics.RequestMetrics, histogram=histogram, templates=lambda: _templates(app))
    app.openapi = lambda: _openapi(app, secured=context.authorizer is not None)  # type: ignore[method-assign]
    return app


def _templates(app: FastAPI) -> list[str]:
    """Every route's path template, in the order the router tries them."""
    return [route.path for route in iter_route_contexts(app.routes) if isinstance(route.path, str)]


def _openapi(app: FastAPI, *, secured: bool) -> dict[str, Any]:
    """FastAPI's document, plus the request bodies that handlers parse themselves (with the original's rules)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, definitions = models_json_schema(
            [(model, "validation") for model in REQUEST_MODELS], ref_template="#/components/schemas/{model}"
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in definitions.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        # FastAPI documents a 422 for every route with parameters; this API never sends one (bad input is a 400).
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        # What a submission must name (the models default every field, so that they can be partial elsewhere).
        schemas["Job"]["required"] = ["Type", "Tasks"]
        schemas["Task"]["required"] = ["Name", "Engine"]
        if secured:
            document_security(document)
        app.openapi_schema = document
    return app.openapi_schema
