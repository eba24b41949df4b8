"""Traces: one upload, one trace, from the gateway's HTTP request to the worker's reply.

Off unless the standard `OTEL_*` variables ask for it: an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and neither
`OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`. Then `start_tracing` installs
the SDK's `TracerProvider` with a `BatchSpanProcessor` and the OTLP/HTTP (protobuf)
exporter, which read the rest of the `OTEL_*` variables themselves (headers, timeouts,
sampler). gRPC is not shipped: one transport keeps the install small, and every
collector speaks OTLP/HTTP.

Off, `TRACER` is the OpenTelemetry API's no-op tracer: a span costs a call returning
the one non-recording span, nothing is built for it (callers look at `is_recording()`
before computing attributes), no message attribute is sent or asked for
(`iras.telemetry.propagation`) and FastAPI's request spans stay off (`HTTP_SPANS_ONLY`).

The span names, one upload's trace:
- gateway: the HTTP request (`POST /upload`, FastAPI's own server span), and under
  it `iras.validate` (reading and checking the form), `iras.store` (S3 puts) and
  `iras.queue` (SendMessageBatch), whose context travels in each request message;
- worker: `iras.receive` per receive call, `iras.batch`, and under the batch
  `iras.download`, `iras.inference` and `iras.publish`, whose context travels in each
  reply;
- gateway again: `iras.reply` per receive call of replies.

Work done at once for several messages is one span (`start_linked_span`): a child of
its first message's span, linking every message's, so a batch of one sits in its
upload's trace and a batch of ten is found from all ten. Spans are few because each one
costs ~0.15 ms of CPU to record and export: at c=50 an upload makes 5.1 of them, where
a span per message (and an `iras.upload` beside the request's own) made 7.6.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, Tracer

from iras.telemetry.propagation import parent_context

log = logging.getLogger(__name__)

#: The gateway's HTTP spans, by FastAPI's own OpenTelemetry support (`FastAPI(telemetry=)`,
#: active only once a provider is installed): one server span per request, without
#: FastAPI's spans of each dependency, endpoint and serialization (IRAS's own spans say
#: what an upload did, at a fifth of their cost), its HTTP metrics (Prometheus has them:
#: `iras.web.metrics`) or its exception logs (the gateway logs its own). The probes and
#: the scrapes are not traced.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
HTTP_SPANS_ONLY: TelemetryConfig = {
    "tracing": True,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "exclude": lambda scope: scope.get("path") in UNTRACED_PATHS,
}

#: Every IRAS span comes from this tracer: the API's no-op one until `start_tracing`
#: installs a provider (a proxy, so modules may hold it from import time).
TRACER = trace.get_tracer("iras")

GATEWAY_SERVICE = "iras-gateway"
WORKER_SERVICE = "iras-worker"

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_provider: Any = None  # the SDK's TracerProvider once installed (the SDK loads only then)


def tracing_configured(environ: Mapping[str, str]) -> bool:
    """Whether `environ`'s `OTEL_*` variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "none" in exporters or "otlp" not in exporters:
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def start_tracing(default_service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the exporting provider if `environ` (the process's) configures one; return
    whether traces are on. Once per process: a second call (another app in the same
    process, as in tests) keeps the first provider, which is the process's."""
    global _provider
    if _provider is not None:
        return True
    environ = os.environ if environ is None else environ
    if not tracing_configured(environ):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL: IRAS exports traces over http/protobuf only")
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or default_service
    # shutdown_on_exit: the SDK's own atexit hook exports what is still buffered.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing on: service %s, OTLP/HTTP to %s", service, _endpoint(environ))
    return True


def tracing_on() -> bool:
    """Whether `start_tracing` installed an exporting provider in this process."""
    return _provider is not None


def flush_tracing(timeout_s: float = 5.0) -> None:
    """Export the spans still buffered (an app's or a worker's end; the process's exit
    shuts the provider down by itself)."""
    if _provider is not None and not _provider.force_flush(int(timeout_s * 1000)):
        log.warning("tracing: spans not exported within %.0f s at flush", timeout_s)


def start_linked_span(
    name: str,
    contexts: Sequence[SpanContext | None],
    start_time: int | None = None,
    tracer: Tracer = TRACER,
) -> Span | None:
    """`name`, one span for work done at once for several messages that each carried the
    context of the span that sent it (None: a message without one); None when none did.

    A child of the first message's span (work for one message belongs to its upload's
    trace), linking every distinct one, as OpenTelemetry's messaging conventions have a
    batch receive do. One span per call, not per message: a span costs ~0.15 ms of CPU to
    record and export, and per message the receives and replies were two of an upload's
    7.6 spans, against 0.43 now.
    """
    present: list[SpanContext] = []  # each sending span once, in the messages' order
    for context in contexts:
        if context is not None and all(context.span_id != seen.span_id for seen in present):
            present.append(context)
    if not present:
        return None
    links = [Link(context) for context in present]
    span = tracer.start_span(
        name, context=parent_context(present[0]), links=links, start_time=start_time
    )
    if span.is_recording():
        span.set_attribute("messaging.batch.message_count", len(contexts))
    return span


def start_batch_span(contexts: Sequence[SpanContext | None]) -> Span:
    """The `iras.batch` span of a batch whose requests came with `contexts` (None: a
    request without one): `start_linked_span`'s, or a root span when no request had one
    (the batch's stages are still traced under it)."""
    span = start_linked_span("iras.batch", contexts)
    return TRACER.start_span("iras.batch") if span is None else span


def under(span: Span | None) -> Context | None:
    """A context whose current span is `span` (None: the current context), to start a
    child of a span that is not current (a batch's, in the task that publishes it)."""
    return None if span is None else trace.set_span_in_context(span)


def _endpoint(environ: Mapping[str, str]) -> str:
    return next((environ[name] for name in _ENDPOINT_VARIABLES if environ.get(name)), "")
