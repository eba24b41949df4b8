"""What travels on the queues and where things live in the buckets.

Pure encoding and decoding, no I/O. A request carries keys, never image bytes, and
stays under the request queue's 1 KiB limit whatever name the user's file had. A result
is the JSON shape of the HTTP contract (`request_id`, `job_id`, `name`, `label`, `top`,
`model`, `worker`, `timings`, or `error` instead of a label), so that the worker's reply
and the output bucket's object are the very bytes a client reads.

Keys are made by the server from ids, never from user input, so no file name can reach
a path. The CSE546 course's graders look for a plain-text label under the image's name in
the output bucket; that object is written too (see `Settings.write_name_objects`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iras.config import Settings

#: A request names an S3 key and a reply queue, never the image: 1 KiB is plenty.
REQUEST_MAX_MESSAGE_BYTES = 1024

#: Longest user-supplied name kept in a request, in UTF-8 bytes.
MAX_NAME_BYTES = 255

_REQUEST_VERSION = 1

#: Where uploaded images live in the input bucket, and job manifests in the output bucket.
INPUTS_PREFIX = "inputs/"
JOBS_PREFIX = "jobs/"


class MessageError(ValueError):
    """A queue message that is not a well-formed IRAS message."""


@dataclass(frozen=True, slots=True)
class Request:
    """One image to classify: where it is, who asked, and where to answer."""

    request_id: str
    job_id: str
    key: str
    name: str
    reply_to: str | None
    submitted_at: float


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome for one request: a label and ranked scores, or an error."""

    request_id: str
    job_id: str
    name: str
    model: str
    worker: str
    label: str | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def clip_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8, never inside a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def name_stem(name: str) -> str:
    """A file name without folders and without its last extension: `a/b.test.jpg` -> `b.test`.

    This is the `name` of the course protocol (`name:label`) and of `iras predict`.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


def encode_request(request: Request) -> str:
    """The message body for `request`; long names are clipped to fit the 1 KiB limit."""
    body = {
        "v": _REQUEST_VERSION,
        "request_id": request.request_id,
        "job_id": request.job_id,
        "key": request.key,
        "name": clip_utf8(request.name, MAX_NAME_BYTES),
        "reply_to": request.reply_to,
        "submitted_at": round(request.submitted_at, 6),
    }
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode("utf-8"))
    if size > REQUEST_MAX_MESSAGE_BYTES:
        raise MessageError(
            f"request {request.request_id} encodes to {size} bytes, over the queue's "
            f"{REQUEST_MAX_MESSAGE_BYTES}-byte limit: shorten the key or reply queue URL"
        )
    return text


def decode_request(body: str) -> Request:
    """Parse a request message body; raise `MessageError` saying what is wrong."""
    data = _json_object(body, "request")
    try:
        return Request(
            request_id=_text(data, "request_id"),
            job_id=_text(data, "job_id"),
            key=_text(data, "key"),
            name=str(data.get("name") or ""),
            reply_to=data.get("reply_to") or None,
            submitted_at=float(data.get("submitted_at") or 0.0),
        )
    except (TypeError, ValueError, OverflowError) as error:
        raise MessageError(f"malformed request message: {error}") from None


def encode_result(result: Result) -> str:
    """The JSON of a result, without empty fields that do not apply (label or error).

    The dict is built by hand: `dataclasses.asdict` deep-copies `top` and `timings`,
    which made this 80 us instead of 15, for every result a worker publishes.
    """
    data: dict[str, Any] = {
        "request_id": result.request_id,
        "job_id": result.job_id,
        "name": result.name,
        "model": result.model,
        "worker": result.worker,
    }
    if result.error is None:
        data["label"] = result.label
        data["top"] = result.top
    else:
        data["error"] = result.error
    data["timings"] = result.timings
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode_result(body: str | bytes) -> Result:
    """Parse a result written by `encode_result`."""
    data = _json_object(body, "result")
    try:
        return Result(
            request_id=_text(data, "request_id"),
            job_id=_text(data, "job_id"),
            name=str(data.get("name", "")),
            model=str(data.get("model", "")),
            worker=str(data.get("worker", "")),
            label=data.get("label"),
            top=list(data.get("top", [])),
            error=data.get("error"),
            timings=dict(data.get("timings", {})),
        )
    except (TypeError, ValueError) as error:
        raise MessageError(f"malformed result message: {error}") from None


#: What a gateway report says it is, in its `kind` field (results have none).
GATEWAY_REPORT_KIND = "gateway-report"


@dataclass(frozen=True, slots=True)
class GatewayReport:
    """What a gateway that does not lead tells the leading one, on the leader's reply
    queue: the uploads it took since its last report, those being stored now, the results
    it received (for the fleet's cost per image), and whether an upload may need more
    workers at once. With them the leader's policy sees the uploads of every gateway."""

    gateway: str
    uploads: int
    arriving: int
    answered: int
    urgent: bool = False


def encode_gateway_report(report: GatewayReport) -> str:
    return json.dumps(
        {
            "kind": GATEWAY_REPORT_KIND,
            "gateway": report.gateway,
            "uploads": report.uploads,
            "arriving": report.arriving,
            "answered": report.answered,
            "urgent": report.urgent,
        },
        separators=(",", ":"),
    )


def decode_gateway_report(data: dict[str, Any]) -> GatewayReport:
    """A report from the JSON object of a reply-queue message whose kind says it is one."""
    try:
        uploads, arriving, answered = (
            int(data.get(key, 0)) for key in ("uploads", "arriving", "answered")
        )
        if min(uploads, arriving, answered) < 0:
            raise ValueError(f"negative count in {data}")
        return GatewayReport(
            _text(data, "gateway"), uploads, arriving, answered, urgent=bool(data.get("urgent"))
        )
    except (TypeError, ValueError) as error:
        raise MessageError(f"malformed gateway report: {error}") from None


def _json_object(body: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MessageError(f"{what} message is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{what} message is JSON but not an object: {type(data).__name__}")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MessageError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


# --- where things live in the buckets --------------------------------------------


def input_key(request_id: str) -> str:
    """The uploaded image of `request_id`, in the input bucket."""
    return f"{INPUTS_PREFIX}{request_id}"


def result_key(settings: Settings, request_id: str) -> str:
    """The JSON result of `request_id`, in the output bucket."""
    return f"{settings.results_prefix}{request_id}.json"


def job_key(job_id: str) -> str:
    """The manifest of `job_id` (its requests and their names), in the output bucket."""
    return f"{JOBS_PREFIX}{job_id}.json"
