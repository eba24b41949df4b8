"""A trace's context across SQS: W3C `traceparent` (and `tracestate`) as message attributes.

The context rides in message attributes, not in the body: bodies stay what the message
formats say (`iras.messages`), and a receiver that does not trace never reads it. SQS
counts attributes in a message's size (each name, its type "String" and its value), and
a request must stay within the request queue's 1 KiB (`REQUEST_MAX_MESSAGE_BYTES`): a
`tracestate` that would not fit is left out (it is a vendor's hint; the trace goes on
without it), and a context that would not fit at all is not sent (the message matters
more than its trace).

With no recording span current (tracing off) nothing is added, so a request message is
exactly what it was before traces existed.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from iras.aws.types import OutboundMessage

#: The attributes a traced message may carry; a traced receive asks for these.
TRACE_ATTRIBUTE_NAMES = ("traceparent", "tracestate")

#: The data type every one of them is sent as (SQS counts it in the size too).
ATTRIBUTE_TYPE = "String"

_W3C = TraceContextTextMapPropagator()


def sqs_message_bytes(body: str, attributes: Mapping[str, str]) -> int:
    """The size SQS counts for a message: its body and each attribute's name, data type
    and value, in UTF-8."""
    size = len(body.encode("utf-8"))
    for name, value in attributes.items():
        size += len(name.encode()) + len(ATTRIBUTE_TYPE) + len(value.encode("utf-8"))
    return size


def trace_attributes(body: str, max_message_bytes: int) -> dict[str, str]:
    """The current span's context as message attributes for `body`, within
    `max_message_bytes` in all; empty when no span is recording."""
    if not trace.get_current_span().is_recording():
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    if sqs_message_bytes(body, carrier) > max_message_bytes:
        carrier.pop("tracestate", None)
    if sqs_message_bytes(body, carrier) > max_message_bytes:
        return {}
    return carrier


def traced_message(body: str, max_message_bytes: int) -> str | OutboundMessage:
    """`body` with the current span's context (`trace_attributes`); the bare body, the
    message as it always was, when there is none."""
    attributes = trace_attributes(body, max_message_bytes)
    return OutboundMessage(body, attributes) if attributes else body


def extract_span_context(attributes: Mapping[str, str]) -> SpanContext | None:
    """The remote span context a received message carries, or None (none, or invalid)."""
    if "traceparent" not in attributes:
        return None
    context = trace.get_current_span(_W3C.extract(attributes)).get_span_context()
    return context if context.is_valid else None


def parent_context(span_context: SpanContext | None) -> Context | None:
    """A context whose parent is `span_context` (None: the current one), for a span
    started under a message's remote span."""
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))
