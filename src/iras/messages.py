"""What travels on the queues and where things live in the buckets.

Pure encoding and decoding, no I/O. A request carries keys, never image bytes, and
stays under the request queue's 1 KiB limit whatever name the user's file had. A result
is the JSON shape of the HTTP contract (`request_id`, `job_id`, `name`, `label`, `top`,
`model`, `model_version`, `worker`, `timings`, or `error` instead of a label), so that the worker's reply
and the output bucket's object are the very bytes a client reads.

Keys are made by the server from ids, never from user input, so no file name can reach
a path. A request is checked field by field as it is decoded, for anyone who can send to
the request queue can put anything there, and one unfit field must cost its own message
only, never the batch it arrives with (see `decode_request`). The CSE546 course's graders
look for a plain-text label under the image's name in the output bucket; that object is
written too (see `Settings.write_name_objects`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from iras.config import Settings

#: A request names an S3 key and a reply queue, never the image: 1 KiB is plenty.
REQUEST_MAX_MESSAGE_BYTES = 1024

#: Longest user-supplied name kept in a request, in UTF-8 bytes.
MAX_NAME_BYTES = 255

_REQUEST_VERSION = 1

#: What a request or job id may be: the gateway makes uuid4 hex ids; they become S3 keys.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Longest reply queue URL a request may name (a real one is under 120 characters).
MAX_REPLY_TO_CHARS = 512

#: A plausible SQS queue URL: http(s), a host (and port), any path prefix, then the
#: 12-digit account and a queue name (1 to 80 letters, digits, '-' and '_', '.fifo').
REPLY_TO_PATTERN = re.compile(
    r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~-]+)*/[0-9]{12}/[A-Za-z0-9_-]{1,80}(?:\.fifo)?"
)

#: Longest piece of a refused value quoted in an error (they are logged and sent back).
_SHOWN_CHARS = 60

#: Where uploaded images live in the input bucket, and job manifests in the output bucket.
INPUTS_PREFIX = "inputs/"
JOBS_PREFIX = "jobs/"
#: Where gateways claim what only one may hold, in the state bucket (`iras.web.reply_claim`).
CLAIMS_PREFIX = "claims/"
#: Where workers record the model they serve, in the state bucket (`iras.worker.model_record`).
MODELS_PREFIX = "models/"
#: Where gateways keep results by image content and model, in the state bucket
#: (`iras.web.result_cache`).
CACHE_PREFIX = "cache/"


class MessageError(ValueError):
    """A queue message that is not a well-formed IRAS message."""


class RefusedRequest(MessageError):
    """A request whose address is sound (request id, job id, reply queue) but another
    field is not: it cannot be classified, yet it can be answered, with an error result.

    `request` carries the address and a name fit to print; its key is empty, for nothing
    is to be fetched.
    """

    def __init__(self, reason: str, request: Request) -> None:
        super().__init__(reason)
        self.request = request


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
    #: The model's version (its card's); empty from workers older than the field.
    model_version: str = ""

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
    """Parse a request message body, checking every field; raise `MessageError` saying
    what is wrong, or `RefusedRequest` when only fields beyond the address are.

    The address (the ids and the reply queue) must be sound for a result to be addressed
    at all; then the key must be the one the gateway makes from the request id, the name
    a string that UTF-8 can encode (JSON may carry a lone surrogate, `"\\ud800"`, which
    no S3 key or SQS body can) within `MAX_NAME_BYTES`, the submit time a finite number.
    """
    data = _json_object(body, "request")
    request_id = _id(data, "request_id")
    job_id = _id(data, "job_id")
    reply_to = _reply_to(data)
    raw_name = data.get("name")
    try:
        return Request(
            request_id=request_id,
            job_id=job_id,
            key=_key(data, request_id),
            name=_name(raw_name),
            reply_to=reply_to,
            submitted_at=_submitted_at(data),
        )
    except MessageError as error:
        address = Request(request_id, job_id, "", _printable_name(raw_name), reply_to, 0.0)
        raise RefusedRequest(str(error), address) from None


def _id(data: dict[str, Any], field_name: str) -> str:
    value = data.get(field_name)
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise _malformed(field_name, f"must be 1 to 64 of A-Z a-z 0-9 - _, got {_shown(value)}")
    return value


def _reply_to(data: dict[str, Any]) -> str | None:
    value = data.get("reply_to")
    if value is None or value == "":  # nobody listens: the output bucket is the answer
        return None
    if (
        not isinstance(value, str)
        or len(value) > MAX_REPLY_TO_CHARS
        or not REPLY_TO_PATTERN.fullmatch(value)
    ):
        raise _malformed("reply_to", f"must be an SQS queue URL or null, got {_shown(value)}")
    return value


def _key(data: dict[str, Any], request_id: str) -> str:
    value, expected = data.get("key"), input_key(request_id)
    if value != expected:  # the gateway's key for this id, so no message names another object
        raise _malformed("key", f"must be {expected!r}, got {_shown(value)}")
    return expected


def _name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed("name", f"must be a string, got {_shown(value)}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise _malformed(
            "name", f"is not valid Unicode ({error.reason}): {_shown(value)}"
        ) from None
    if size > MAX_NAME_BYTES:
        raise _malformed("name", f"is {size} bytes of UTF-8, over {MAX_NAME_BYTES}")
    return value


def _printable_name(value: Any) -> str:
    """`value` as a name an error result can carry: what UTF-8 cannot encode is replaced."""
    if not isinstance(value, str):
        return ""
    return clip_utf8(value.encode("utf-8", errors="replace").decode("utf-8"), MAX_NAME_BYTES)


def _submitted_at(data: dict[str, Any]) -> float:
    value = data.get("submitted_at", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed("submitted_at", f"must be a number, got {_shown(value)}")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise _malformed("submitted_at", f"must be a finite time, got {_shown(value)}")
    return seconds


def _malformed(field_name: str, problem: str) -> MessageError:
    return MessageError(f"malformed request message: field {field_name!r} {problem}")


def _shown(value: Any) -> str:
    """`value` quoted for an error: ASCII only (a lone surrogate is shown escaped, so the
    error itself can be logged and sent), and clipped."""
    text = ascii(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


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
        "model_version": result.model_version,
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
            model_version=str(data.get("model_version", "")),
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
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise MessageError(f"{what} message is not JSON: {error}") from None
    except RecursionError:  # `[[[[...`: 1 KiB nests deeper than the decoder's stack
        raise MessageError(f"{what} message is JSON nested too deeply") from None
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


#: An object to write: its bucket, key, bytes and media type.
StoredObject = tuple[str, str, bytes, str]


def result_objects(
    settings: Settings, request_id: str, name: str, label: str | None, data: bytes
) -> list[StoredObject]:
    """What a result is stored as: its JSON `data` among IRAS's records and, for the
    course's graders, the label under the image's name in the output bucket (a worker
    writes these for what it classifies, a gateway for what its result cache answers)."""
    stored = [(settings.records_bucket, result_key(settings, request_id), data, _JSON)]
    stem = name_stem(name)
    if settings.write_name_objects and label is not None and stem:
        stored.append((settings.output_bucket, stem, label.encode("utf-8"), _TEXT))
    return stored


_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def job_key(job_id: str) -> str:
    """The manifest of `job_id` (its requests and their names), in the output bucket."""
    return f"{JOBS_PREFIX}{job_id}.json"


def model_key(name: str, version: str) -> str:
    """The record of a model the fleet serves, in the state bucket (`iras.worker.model_record`).

    Name and version are a model card's, which allows only letters, digits, '.', '_' and
    '-' in them (`iras.model.card.NAME_PATTERN`): no key can leave the folder.
    """
    return f"{MODELS_PREFIX}{name}/{version}.json"
