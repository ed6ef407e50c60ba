"""OpenTelemetry traces: one trace per job, from its submission to its end, across orchestrator and compute nodes.

Off, and free, unless the standard OpenTelemetry environment asks for traces (:func:`wanted`): until then this module
imports nothing of OpenTelemetry (FastAPI imports its API package on its own; the SDK and exporters stay unloaded),
:data:`ENABLED` is False, and every helper here returns at once (the call sites on hot paths test :data:`ENABLED`
before building anything). When it is on, each process exports its spans with the SDK's
``BatchSpanProcessor`` and OTLP exporter (http/protobuf; the SDK reads the ``OTEL_*`` settings itself).

A trace's context travels as a W3C ``traceparent`` string: stored with the job (the orchestrator's ``jobs`` table),
and carried in the messages that start work on a compute node (``AskForBid``, ``BidAccepted``). Every such string
that comes from outside (an HTTP header, a NATS message) is bounded and parsed by the W3C propagator; garbage is
ignored, never an error.

A process has its own tracer provider (not OpenTelemetry's global one), set up by :func:`setup` in each process after
any fork (a ``BatchSpanProcessor``'s thread does not survive one) and flushed by :func:`shutdown` when the process
ends.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # never at run time: nothing of OpenTelemetry is loaded until tracing is set up
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.trace import Span as OtelSpan
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

T = TypeVar("T")

ENABLED = False
"""Whether this process records spans. Read it as ``tracing.ENABLED`` (it changes at set-up)."""

MAX_TRACE_PARENT = 256  # characters: a version-00 traceparent has 55; anything longer from outside is ignored
HANDED_OVER_KEPT = 10_000  # run contexts waiting for their execution to start (see hand_over)
SHUTDOWN_TIMEOUT = 5.0  # seconds a process's end may wait for the collector to take its last spans
TRACER_NAME = "bacalhau"
DEFAULT_SERVICE_NAME = "bacalhau"

# Span attribute names.
JOB_ID = "bacalhau.job.id"
JOB_TYPE = "bacalhau.job.type"
JOB_VERSION = "bacalhau.job.version"
JOB_NAMESPACE = "bacalhau.job.namespace"
JOB_STATE = "bacalhau.job.state"
EXECUTION_ID = "bacalhau.execution.id"
EVALUATION_ID = "bacalhau.evaluation.id"
NODE_ID = "bacalhau.node.id"
ENGINE = "bacalhau.engine"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_pid = 0
_handed_over: dict[str, str] = {}
_handed_over_lock = threading.Lock()


# ---- configuration


def _flag(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip().lower()


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OpenTelemetry environment asks for traces: an OTLP endpoint (for all signals or for
    traces), or ``OTEL_TRACES_EXPORTER`` naming an exporter; never with ``OTEL_SDK_DISABLED=true`` or
    ``OTEL_TRACES_EXPORTER=none``."""
    env = os.environ if environ is None else environ
    if _flag(env, "OTEL_SDK_DISABLED") == "true":
        return False
    exporters = _exporters(env)
    if exporters is not None:
        return bool(exporters)
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def _exporters(env: Mapping[str, str]) -> list[str] | None:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (None when it is unset; empty for ``none``)."""
    value = _flag(env, "OTEL_TRACES_EXPORTER")
    if not value:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return [] if "none" in names else names


def setup(environ: Mapping[str, str] | None = None) -> bool:
    """Start exporting this process's spans if the environment asks for it (once per process: call it again after a
    fork). Whether tracing is on. A setting this process cannot honour is one warning, and tracing stays off."""
    env = os.environ if environ is None else environ
    if ENABLED and _pid == os.getpid():
        return True
    _reset()
    if not wanted(env):
        return False
    try:
        processors = _processors(env)
        if processors:
            _start(processors)
    except Exception as exc:  # a setting the SDK refuses: the node runs untraced rather than not at all
        log.warning("traces are off: OpenTelemetry could not be set up: %s", exc)
        _reset()
    if ENABLED:
        log.info("traces on: this process exports its spans (%s)", ", ".join(_exporters(env) or ["otlp"]))
    return ENABLED


def _processors(env: Mapping[str, str]) -> list[SpanProcessor]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    processors: list[SpanProcessor] = []
    for name in _exporters(env) or ["otlp"]:
        exporter: SpanExporter | None
        if name == "otlp":
            exporter = _otlp_exporter(env)
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s: this node exports traces only with otlp or console", name)
            exporter = None
        if exporter is not None:
            processors.append(BatchSpanProcessor(exporter))
    return processors


def _otlp_exporter(env: Mapping[str, str]) -> Any:
    protocol = _flag(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _flag(env, "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = protocol or "http/protobuf"
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            log.warning(
                "traces are off: OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the package "
                "opentelemetry-exporter-otlp-proto-grpc, which is not installed (or set the protocol to "
                "http/protobuf, with the collector's HTTP endpoint, usually port 4318)"
            )
            return None
        return GrpcSpanExporter()
    log.warning("traces are off: OTLP protocol %r is not supported (use http/protobuf)", protocol)
    return None


def _start(processors: list[SpanProcessor]) -> None:
    global ENABLED, _provider, _tracer, _pid
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    from bacalhau import __version__

    resource = Resource.create({"process.pid": os.getpid()})  # with OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    defaults: dict[str, str] = {}
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if "service.version" not in resource.attributes:
        defaults["service.version"] = __version__
    resource = resource.merge(Resource(defaults))
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for processor in processors:
        provider.add_span_processor(processor)
    _provider, _tracer, _pid = provider, provider.get_tracer(TRACER_NAME), os.getpid()
    ENABLED = True
    atexit.register(shutdown)  # for a process that ends without saying so (idempotent: nothing left the second time)


def install(processor: SpanProcessor) -> None:
    """Trace with this span processor alone, whatever the environment (for tests: an in-memory exporter)."""
    _reset()
    _start([processor])


def shutdown() -> None:
    """Export what is left and stop this process's exporter (at its end: spans ended after this are dropped),
    waiting :data:`SHUTDOWN_TIMEOUT` seconds at most: a collector that is down (whose exporter retries for as long as
    its own timeout) must not hold up a node's stop."""
    provider = _provider if _pid == os.getpid() else None
    _reset()
    if provider is None:
        return
    worker = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    worker.start()
    worker.join(SHUTDOWN_TIMEOUT)
    if worker.is_alive():
        log.warning("traces: the last spans could not be exported within %.0f s; they are dropped", SHUTDOWN_TIMEOUT)


def _reset() -> None:
    """Forget the provider (shut down by the caller, or inherited from the parent of a fork: not ours to flush)."""
    global ENABLED, _provider, _tracer, _pid
    ENABLED, _provider, _tracer, _pid = False, None, None, 0
    with _handed_over_lock:
        _handed_over.clear()


# ---- spans


class Span:
    """A span to end later (when its work is done or durable); every method is a no-op on :data:`NO_SPAN`."""

    __slots__ = ("_span",)

    def __init__(self, span: OtelSpan | None) -> None:
        self._span = span

    @property
    def traceparent(self) -> str:
        """This span's context as a W3C ``traceparent``, for a message or the store ("" when not tracing)."""
        if self._span is None:
            return ""
        context = self._span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    def set(self, **attributes: str | int | bool) -> None:
        if self._span is not None:
            self._span.set_attributes(_attributes(attributes))

    def fail(self, message: str) -> None:
        """Mark the span's work as failed."""
        if self._span is not None:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_status(Status(StatusCode.ERROR, message[:1024]))

    def end(self) -> None:
        if self._span is not None:
            self._span.end()


NO_SPAN = Span(None)


def _attributes(attributes: Mapping[str, str | int | bool]) -> dict[str, str | int | bool]:
    """Keyword names as attribute names: ``job_id`` -> ``bacalhau.job.id`` (names with a dot are kept)."""
    return {_ATTRIBUTE_NAMES.get(key, key): value for key, value in attributes.items()}


_ATTRIBUTE_NAMES = {
    "job_id": JOB_ID,
    "job_type": JOB_TYPE,
    "job_version": JOB_VERSION,
    "namespace": JOB_NAMESPACE,
    "job_state": JOB_STATE,
    "execution_id": EXECUTION_ID,
    "evaluation_id": EVALUATION_ID,
    "node_id": NODE_ID,
    "engine": ENGINE,
}


def clean_parent(value: object) -> str:
    """A ``traceparent`` from outside as far as it can be kept: a string of bounded length (the propagator checks
    the rest when it is used), else ""."""
    return value if isinstance(value, str) and len(value) <= MAX_TRACE_PARENT else ""


def _context(parent: str | None) -> Any:
    """The OpenTelemetry context to start a span in: the current one for None, else the trace ``parent`` names (a
    new trace when it is empty or garbage)."""
    if parent is None:
        return None
    from opentelemetry.context import Context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = clean_parent(parent)
    if not parent:
        return Context()
    try:
        return TraceContextTextMapPropagator().extract({"traceparent": parent}, Context())
    except Exception:  # the propagator checks its input; never let a foreign string break the caller
        return Context()


def start(name: str, parent: str | None = None, **attributes: str | int | bool) -> Span:
    """Start a span under ``parent`` (a ``traceparent``; None for the current span), to be ended by the caller."""
    return start_span(name, parent, attributes)


def start_span(
    name: str, parent: str | None, attributes: Mapping[str, str | int | bool], start_time: int | None = None
) -> Span:
    """:func:`start` with its attributes in a mapping, and ``start_time`` (Unix ns) when its work began earlier."""
    if _tracer is None:
        return NO_SPAN
    context, named = _context(parent), _attributes(attributes)
    return Span(_tracer.start_span(name, context=context, attributes=named, start_time=start_time))


@contextlib.contextmanager
def span(name: str, parent: str | None = None, **attributes: str | int | bool) -> Iterator[Span]:
    """A span around a block, current inside it (spans started within are its children); an exception that leaves
    the block marks it failed."""
    if _tracer is None:
        yield NO_SPAN
        return
    from opentelemetry import trace

    started = _tracer.start_span(name, context=_context(parent), attributes=_attributes(attributes))
    with trace.use_span(started, end_on_exit=True, record_exception=True, set_status_on_exception=True):
        yield Span(started)


def traced(name: str, work: Awaitable[T], parent: str | None = None, **attributes: str | int | bool) -> Awaitable[T]:
    """``work`` inside a span (a child of the current one unless ``parent`` is given); ``work`` itself when not
    tracing."""
    if _tracer is None:
        return work
    return _traced(name, work, parent, attributes)


async def _traced(name: str, work: Awaitable[T], parent: str | None, attributes: dict[str, str | int | bool]) -> T:
    with span(name, parent, **attributes):
        return await work


def current() -> Span:
    """The current span (to annotate it, or mark it failed)."""
    if _tracer is None:
        return NO_SPAN
    from opentelemetry import trace

    found = trace.get_current_span()
    return Span(found) if found.get_span_context().is_valid else NO_SPAN


# ---- a context handed from a message's handler to the task that does the work


def hand_over(key: str, traceparent: str) -> None:
    """Keep ``traceparent`` for the work ``key`` names (an execution's run, started later by another task)."""
    if _tracer is None or not traceparent:
        return
    with _handed_over_lock:
        _handed_over[key] = traceparent
        while len(_handed_over) > HANDED_OVER_KEPT:  # work that never started: forget the oldest
            del _handed_over[next(iter(_handed_over))]


def take_over(key: str) -> str:
    """The ``traceparent`` handed over for ``key`` ("" if none), forgotten once taken."""
    if not _handed_over:
        return ""
    with _handed_over_lock:
        return _handed_over.pop(key, "")
