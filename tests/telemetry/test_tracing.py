"""When tracing is on, and what a traced message carries: within the request queue's
1 KiB, and nothing at all when tracing is off."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from iras.aws import AwsClients
from iras.aws.types import OutboundMessage
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import MAX_NAME_BYTES, REQUEST_MAX_MESSAGE_BYTES, Request, encode_request
from iras.telemetry.propagation import (
    TRACE_ATTRIBUTE_NAMES,
    extract_span_context,
    sqs_message_bytes,
    trace_attributes,
)
from iras.telemetry.tracing import start_linked_span, tracing_configured, tracing_on
from iras.web.validation import clean_name
from tests.support import image_bytes
from tests.web.conftest import serve_gateway, wait_ready

ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("environ", "configured"),
    [
        ({}, False),  # nothing asks for traces: off
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ENDPOINT + "/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "console"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, False),  # no endpoint named: off
    ],
)
def test_tracing_is_on_only_when_otel_variables_ask(
    environ: dict[str, str], configured: bool
) -> None:
    assert tracing_configured(environ) is configured


@pytest.fixture
def recording() -> Iterator[trace.Tracer]:
    """A tracer of a provider of the test's own (the process's stays the no-op one)."""
    provider = TracerProvider()
    yield provider.get_tracer("test")
    provider.shutdown()


def remote_parent(state: TraceState) -> trace.Span:
    """A span context as the ASGI middleware makes it of a client's traceparent."""
    context = SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=state
    )
    return NonRecordingSpan(context)


def largest_request() -> str:
    """The biggest request a gateway sends: every id at its length, a name of 255 bytes of
    what JSON escapes to two characters, the longest reply queue URL AWS gives."""
    name = clean_name('"' * 1000)
    reply_to = "https://sqs.ap-southeast-4.amazonaws.com/000000000000/" + "q" * 80
    request_id = "f" * 32
    return encode_request(
        Request(request_id, "e" * 32, f"inputs/{request_id}", name, reply_to, 1e10 - 1e-6)
    )


def test_no_attributes_without_a_recording_span() -> None:
    assert not tracing_on()  # the test process never installs an exporting provider
    assert trace_attributes("body", REQUEST_MAX_MESSAGE_BYTES) == {}
    with trace.use_span(remote_parent(TraceState())):  # current, but not recording
        assert trace_attributes("body", REQUEST_MAX_MESSAGE_BYTES) == {}


def test_a_traced_request_stays_within_the_queue_limit(recording: trace.Tracer) -> None:
    body = largest_request()
    assert len(clean_name('"' * 1000).encode()) <= MAX_NAME_BYTES
    small = TraceState([("v", "1")])
    with recording.start_as_current_span(
        "q", context=trace.set_span_in_context(remote_parent(small))
    ):
        carried = trace_attributes(body, REQUEST_MAX_MESSAGE_BYTES)
    assert set(carried) == set(TRACE_ATTRIBUTE_NAMES)
    assert sqs_message_bytes(body, carried) <= REQUEST_MAX_MESSAGE_BYTES
    context = extract_span_context(carried)
    assert context is not None and context.trace_id == 0x1234 and context.trace_state == small

    # A client's tracestate of hundreds of bytes would not fit: it is left out.
    big = TraceState([(f"v{i}", "x" * 200) for i in range(3)])
    with recording.start_as_current_span(
        "q", context=trace.set_span_in_context(remote_parent(big))
    ):
        carried = trace_attributes(body, REQUEST_MAX_MESSAGE_BYTES)
    assert list(carried) == ["traceparent"]
    assert sqs_message_bytes(body, carried) <= REQUEST_MAX_MESSAGE_BYTES
    # And a context that fits in no way is not sent: the request matters more.
    with recording.start_as_current_span("q"):
        assert trace_attributes(body, len(body.encode()) + 10) == {}


@pytest.mark.both_aws_clients
async def test_the_largest_traced_request_is_accepted_by_sqs(
    aws: AwsClients, resources: Resources, recording: trace.Tracer
) -> None:
    body = largest_request()
    with recording.start_as_current_span("q"):
        carried = trace_attributes(body, REQUEST_MAX_MESSAGE_BYTES)
    url = resources.request_queue_url
    assert await aws.messages.send_batch(url, [OutboundMessage(body, carried)]) == []
    (message,) = await aws.messages.receive(url, attribute_names=TRACE_ATTRIBUTE_NAMES)
    assert message.body == body and message.attributes == carried


@pytest.mark.both_aws_clients
async def test_untraced_uploads_queue_requests_without_attributes(
    settings: Settings, aws: AwsClients, resources: Resources
) -> None:
    quiet = settings.model_copy(update={"autoscaler": False})
    async with (
        serve_gateway(quiet) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)
        files = [("files", (f"i{i}.jpg", image_bytes(seed=i))) for i in range(3)]
        response = await http.post("/v1/classify?wait=false", files=files)
        assert response.status_code in (200, 202), response.text
    got = await aws.sqs.receive_message(
        QueueUrl=resources.request_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )
    messages = got["Messages"]
    assert len(messages) == 3
    assert all("MessageAttributes" not in message for message in messages)


def test_work_for_several_messages_is_one_span_in_the_first_ones_trace(
    recording: trace.Tracer,
) -> None:
    first, second = (
        SpanContext(0x1234, span_id, is_remote=True, trace_flags=TraceFlags(1))
        for span_id in (0x5678, 0x9ABC)
    )
    span = start_linked_span("iras.reply", [first, None, second, first], tracer=recording)
    assert isinstance(span, ReadableSpan)
    span.end()
    assert span.parent is not None and span.parent.span_id == first.span_id
    assert [link.context for link in span.links] == [first, second]  # each once, in order
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 4


def test_no_span_for_messages_that_carried_no_context(recording: trace.Tracer) -> None:
    assert start_linked_span("iras.receive", [None, None], tracer=recording) is None
