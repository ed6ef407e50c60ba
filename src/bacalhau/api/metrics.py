"""``/metrics`` (Prometheus' text format) and the API's own metric: request latency by route and status.

Labels are bounded whatever clients send: the route is the template a request matched (``/api/v1/orchestrator/jobs/
{job_id}``, never the path itself), ``unmatched`` when none did; the method is one of the methods HTTP has, else
``other``; the status is a number the server chose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from prometheus_client import Histogram
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bacalhau.lib.metrics import CONTENT_TYPE, LATENCY_BUCKETS, NodeMetrics

PATH = "/metrics"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})


def router(metrics: NodeMetrics) -> APIRouter:
    api = APIRouter(tags=["Agent"])

    @api.get(PATH, include_in_schema=False)
    async def scrape() -> Response:
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    return api


def request_histogram(metrics: NodeMetrics) -> Histogram:
    return Histogram(
        "bacalhau_api_request_duration_seconds",
        "How long the API took to answer, by method, route template and status",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=metrics.registry,
    )


class RequestMetrics:
    """Times each HTTP request, to the end of its response, by method, route template and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram, templates: Callable[[], list[str]]) -> None:
        """``histogram``: from :func:`request_histogram`; ``templates``: the app's route templates (read once, at the
        first request refused before routing)."""
        self.app = app
        self._templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None
        self._histogram = histogram
        self._series: dict[tuple[str, str, str], Any] = {}  # each label set's child, bounded as the labels are

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            labels = (scope["method"] if scope["method"] in METHODS else "other", self._template(scope), str(status))
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = self._histogram.labels(*labels)
            series.observe(elapsed)

    def _template(self, scope: Scope) -> str:
        """The route template the request matched; for one refused before routing (auth, the client version), the
        route it would have matched."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        if self._patterns is None:
            self._patterns = [(compile_path(template)[0], template) for template in self._templates()]
        for pattern, template in self._patterns:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED
