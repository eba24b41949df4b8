"""One upload to a real `iras serve` (gateway and worker processes) makes one trace that
spans both, exported over OTLP/HTTP to a receiver of the test's own."""

from __future__ import annotations

from pathlib import Path

from tests.support import image_bytes, wait_until
from tests.telemetry.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.web.conftest import iras_serve


async def test_one_upload_is_one_trace_across_gateway_and_worker(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        async with iras_serve(tmp_path / "serve.log", env=env) as (_, http, _url):
            image = {"myfile": ("traced.jpg", image_bytes())}
            response = await http.post("/upload", files=image)
            assert response.status_code == 200 and response.text.startswith("traced:")

            async def complete() -> bool:  # the reply is the trace's last span
                return bool(receiver.named("iras.reply", "iras-gateway"))

            await wait_until(complete, timeout_s=30)

    (request,) = [s for s in receiver.named("POST /upload", "iras-gateway") if not s.parent_id]
    trace = [s for s in receiver.spans if s.trace_id == request.trace_id]
    assert {s.service for s in trace} == {"iras-gateway", "iras-worker"}

    def one(name: str, service: str) -> ReceivedSpan:
        (span,) = [s for s in trace if s.name == name and s.service == service]
        return span

    queue = one("iras.queue", "iras-gateway")
    # The request's span is the upload's: its stages are its children.
    for stage in ("iras.validate", "iras.store", "iras.queue"):
        assert one(stage, "iras-gateway").parent_id == request.span_id
    assert request.attributes["iras.images"] == 1
    # Across the queue: the message carried `iras.queue`'s context.
    receive = one("iras.receive", "iras-worker")
    assert receive.parent_id == queue.span_id
    assert receive.attributes["messaging.batch.message_count"] == 1
    assert receive.attributes["iras.receive_count"] == 1
    batch = one("iras.batch", "iras-worker")
    assert batch.parent_id == queue.span_id
    assert (queue.trace_id, queue.span_id) in batch.links
    for stage in ("iras.download", "iras.inference", "iras.publish"):
        assert one(stage, "iras-worker").parent_id == batch.span_id
    # And back: the reply carried `iras.publish`'s.
    assert one("iras.reply", "iras-gateway").parent_id == one("iras.publish", "iras-worker").span_id
