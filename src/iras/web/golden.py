"""`/readyz?deep=1`: a golden image classified end to end, to show the fleet really answers.

`/readyz` says the gateway can store, queue and receive; only a result says a worker
takes requests, reads the input bucket, classifies and replies. The golden image is a
tiny JPEG made in memory (the same bytes every time), submitted through the gateway's
`Submitter` as any upload is: stored, queued, batched by a worker, answered on this
gateway's reply queue, so the time reported is what an upload would take now. Like any
upload it wakes the autoscaler: with the fleet at 0 workers the first deep check waits
for a worker's boot, hence its long default timeout (`IRAS_DEEP_READINESS_TIMEOUT_S`).

One golden image at a time per gateway: deep checks that come while one is on its way
share it (each waiting at most its own timeout, while the image itself is waited for up
to `MAX_WAIT_S`, whoever sent it: a first caller's short timeout must not end a later
caller's longer wait), so polling `?deep=1` cannot fill the queue. It is an API call (a key when keys are on, and the client's rate); its job has no
manifest and belongs to nobody, and its result is written to the output bucket like any
other, under the name `GOLDEN_NAME`.
"""

from __future__ import annotations

import asyncio
import functools
import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image

from iras.web.readiness import NotReady
from iras.web.submit import AwsUnavailable
from iras.web.uploads import ImageFile
from iras.web.validation import inspect_image

if TYPE_CHECKING:
    from iras.web.gateway import Gateway

#: The longest a deep check may wait (`?timeout_s=`), and so the golden image's trip.
MAX_WAIT_S = 300.0

#: The golden image's file name, as results and the output bucket's name object show it.
GOLDEN_NAME = "iras-readiness-golden.jpg"
_GOLDEN_SIZE = (64, 64)


@functools.cache
def golden_jpeg() -> bytes:
    """A small valid JPEG, the same bytes on every call: a gradient, so it is an image
    with content rather than a flat field."""
    image = Image.new("RGB", _GOLDEN_SIZE)
    width, height = _GOLDEN_SIZE
    image.putdata(
        [(255 * x // width, 255 * y // height, 128) for y in range(height) for x in range(width)]
    )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def golden_image(max_pixels: int) -> ImageFile:
    """The golden image as an upload that passed the same checks as any other."""
    blob = golden_jpeg()
    return ImageFile(GOLDEN_NAME, blob, inspect_image(blob, GOLDEN_NAME, max_pixels))


class GoldenCheck:
    """Sends the golden image through the fleet; one at a time, shared by concurrent askers."""

    def __init__(self, gateway: Gateway, clock: Callable[[], float] = time.monotonic) -> None:
        self._gateway = gateway
        self._clock = clock
        self._running: asyncio.Future[dict[str, Any] | NotReady] | None = None

    async def run(self, timeout_s: float) -> dict[str, Any] | NotReady:
        """The golden image's trip (its time, label, worker), or why it did not come back
        within `timeout_s`."""
        if self._running is None:
            self._running = asyncio.ensure_future(self._trip(MAX_WAIT_S))
            self._running.add_done_callback(self._finished)
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self._running)
        except TimeoutError:
            return _not_back(timeout_s)

    def _finished(self, trip: asyncio.Future[dict[str, Any] | NotReady]) -> None:
        self._running = None
        if not trip.cancelled():
            trip.exception()  # seen: every asker may have gone before it came

    async def _trip(self, wait_s: float) -> dict[str, Any] | NotReady:
        """The image's trip, waited for up to `wait_s` (each asker stops at its own)."""
        gateway = self._gateway
        submitter = gateway.submitter
        if submitter is None:
            return NotReady("not_ready", gateway.not_ready_reason)
        started_s = self._clock()
        try:
            job = await submitter.submit(
                [golden_image(gateway.settings.max_image_pixels)], manifest=False, cached=False
            )
        except AwsUnavailable as error:
            return NotReady("aws_unavailable", f"the golden image was not accepted: {error}")
        request_id = job.requests[0].request_id
        left_s = max(wait_s - (self._clock() - started_s), 0.0)
        result = await gateway.book.wait_for(request_id, left_s)
        if result is None:
            return _not_back(wait_s)  # its job stays in the book for a late result
        elapsed_s = self._clock() - started_s
        gateway.book.discard(job.job_id)  # complete, and nobody was given its id
        worker = str(result.get("worker", ""))
        if "error" in result:
            return NotReady(
                "golden_image_failed",
                f"worker {worker!r} answered the golden image with an error after "
                f"{elapsed_s:.2f} s: {result['error']}",
            )
        return {
            "elapsed_s": round(elapsed_s, 3),
            "request_id": request_id,
            "label": str(result.get("label", "")),
            "worker": worker,
            "model": str(result.get("model", "")),
        }


def _not_back(timeout_s: float) -> NotReady:
    return NotReady(
        "golden_image_timeout",
        f"the golden image was not classified within {timeout_s:g} s (?timeout_s=, else "
        "IRAS_DEEP_READINESS_TIMEOUT_S): no worker answered it in time (with the autoscaler "
        "at 0 workers, the first one must boot); it is still queued",
    )
