"""The HTTP contract's JSON bodies as pydantic models: what `/openapi.json` documents.

The routes declare these (`response_model=`, and `responses=` from `error_responses` for
every 4xx and 5xx they can answer) but do not pass their answers through them: a route
returns a `JSONResponse` of the very dict it has (`json_answer`). Measured on a finished
500-image job (top-5 each; FastAPI 0.165, pydantic 2.14, this 2-core machine): FastAPI's
validation and serialization through the model costs 10 ms, `json.dumps` of the dict 3 ms
(and FastAPI's path for a returned dict, `jsonable_encoder` first, which the routes took
before, 26 ms). And pydantic writes floats its own way (`1.2e-05` becomes `0.000012`): a
small score would no longer be the bytes the worker wrote and the output bucket keeps.
That the models describe the answers exactly is checked by tests/web/test_openapi.py,
against a running gateway.

A result is the worker's JSON (`iras.messages.encode_result`) as it is: either `label`
and `top`, or `error`, never both; hence two models and their union. Fields may be added
to any of these bodies (clients should ignore the ones they do not know), never renamed
or dropped.

Not documented: the 499 an upload's client gets when it leaves before its body ended
(nobody reads it; it exists for the counters), and the plain-text 500 of an unexpected
failure (a bug; S3 failing a lookup is a documented 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, RootModel
from pydantic.json_schema import SkipJsonSchema


def json_answer(body: Mapping[str, Any]) -> JSONResponse:
    """A 200 carrying `body` as the gateway has it, unfiltered (see the module docstring)."""
    return JSONResponse(body)


# --- results ------------------------------------------------------------------


class Scored(BaseModel):
    """One label of the ranked top-k and the model's confidence in it."""

    label: str = Field(
        description="One of the model's labels (ImageNet class names for the built-in models)."
    )
    score: float = Field(
        description="The model's probability for this label, 0 to 1, rounded to 6 decimals."
    )


_TIMINGS = (
    "What the worker measured, in milliseconds unless named otherwise: `queue_ms` (from "
    "submission until a worker received the request), `download_ms` (reading the batch's "
    "images from S3), `decode_ms` (decoding, cropping and stacking the batch's images), "
    "`inference_ms` (the batch's forward pass alone), `batch_size` (images classified "
    "together, a count), `batch_id` (the same number on every result of one batch of one "
    "worker), `worker_rate_ips` (the worker's images per second of "
    "busy time over its recent batches, busy meaning at least one batch classifying) and "
    "`worker_up_s` (seconds since the worker began receiving, when the result was made: "
    "the autoscaler measures boot times with it). Empty when the image was gone from the "
    "input bucket. Other keys may be added."
)


def _without_default(schema: dict[str, Any]) -> None:
    """Drop a field's `default: null` from its schema: absent is not the same as null."""
    schema.pop("default", None)


class _ResultIds(BaseModel):
    request_id: str = Field(description="The id of the image's request, unique per image.")
    job_id: str = Field(description="The job the request belongs to (one upload call).")
    name: str = Field(description="The uploaded file's name, cleaned of folders and controls.")
    model: str = Field(description="The model that classified it, e.g. `efficientnet_lite0`.")
    model_version: str | SkipJsonSchema[None] = Field(
        None,
        description=(
            "That model's version, from its card (`imagenet-1k` for a built-in model on its "
            "own weights); absent from results of workers older than the field."
        ),
        json_schema_extra=_without_default,
    )
    worker: str = Field(description="The worker (instance or process) that answered.")


class ClassifiedResult(_ResultIds):
    """An image that was classified: its best label and the ranked labels it came from."""

    label: str = Field(description="The best label; the same as `top[0].label`.")
    top: list[Scored] = Field(description="The best labels, most likely first (IRAS_TOP_K).")
    timings: dict[str, float] = Field(description=_TIMINGS)
    cached: bool | SkipJsonSchema[None] = Field(
        None,
        description=(
            "`true` when the result cache answered (IRAS_RESULT_CACHE): the same bytes were "
            "classified before by the same model, name, version and precision; `worker` and "
            "`timings` are then that classification's. Absent otherwise."
        ),
        json_schema_extra=_without_default,
    )


class FailedResult(_ResultIds):
    """An image that could not be classified (it would not decode, or it was gone)."""

    error: str = Field(description="Why it could not be classified, for people.")
    timings: dict[str, float] = Field(description=_TIMINGS)


class Result(RootModel[ClassifiedResult | FailedResult]):
    """The outcome for one image: a label and its ranked scores, or an error, never both."""


# --- jobs ---------------------------------------------------------------------


class RequestState(BaseModel):
    """One image of a job, and its result once that has come."""

    request_id: str = Field(description="Look it up alone at `/v1/results/{request_id}`.")
    name: str = Field(description="The uploaded file's name, cleaned of folders and controls.")
    result: Result | SkipJsonSchema[None] = Field(
        None,
        description=(
            "Present once the image is classified; absent (not null) before. `POST "
            "/v1/classify` carries every result with `?wait=true` and none without."
        ),
        json_schema_extra=_without_default,
    )


class JobLinks(BaseModel):
    """Where to follow the job."""

    self_: str = Field(alias="self", description="This job: `GET` it for its progress.")
    ws: str = Field(description="A WebSocket that sends each result as it comes, then closes.")


class Job(BaseModel):
    """A job: the images of one upload call, in the order sent, and how far they are."""

    job_id: str = Field(description="The job's id, for `/v1/jobs/{job_id}`.")
    status: Literal["pending", "done"] = Field(
        description="`pending` until every image has its result, then `done`."
    )
    total: int = Field(description="Images in the job.")
    done: int = Field(description="Images that have their result.")
    requests: list[RequestState] = Field(description="One per image, in the order uploaded.")
    links: JobLinks = Field(description="The URLs to poll the job and to stream its results.")


# --- models -------------------------------------------------------------------


class ModelInput(BaseModel):
    """What a model's graph takes: IRAS resizes, crops and lays out each image so."""

    layout: Literal["NHWC", "NCHW"] = Field(description="Axis order of the graph's input.")
    dtype: Literal["uint8", "float32"] = Field(
        description="`uint8` pixels, or `float32` on 0-1 pixels (normalised as its card says)."
    )
    size: int = Field(description="The square crop's side, in pixels.")


class ServedModel(BaseModel):
    """One model version, as its card describes it."""

    name: str = Field(description="The model's name, as results carry it in `model`.")
    version: str = Field(description="Its version, as results carry it in `model_version`.")
    labels: int = Field(description="How many labels (classes) it tells apart.")
    output: Literal["logits", "probabilities"] = Field(
        description="What its graph gives; results always carry probabilities."
    )
    input: ModelInput = Field(description="What its graph takes.")
    sources: list[Literal["workers", "gateway"]] = Field(
        description=(
            "Where it was seen: `workers` (a worker recorded it when it started; records "
            "stay after the workers are gone) and `gateway` (this gateway's IRAS_MODEL, when "
            "that is a built-in model)."
        )
    )
    seen_at: float | SkipJsonSchema[None] = Field(
        None,
        description="When a worker last started with it (Unix seconds); absent if none has.",
        json_schema_extra=_without_default,
    )


class ModelList(BaseModel):
    """The models the fleet serves, by name then version."""

    models: list[ServedModel] = Field(description="One per model name and version.")


# --- errors -------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error the gateway answers, whatever its status."""

    error: str = Field(description="A short code to branch on, e.g. `not_found`, `rate_limited`.")
    detail: str = Field(description="What went wrong and what to do, for people.")


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}

#: What each route that needs a key (when IRAS_API_KEYS is set) and counts toward the
#: client's rate may answer.
API_CALL_ERRORS = {
    401: "`unauthorized`: API keys are on (IRAS_API_KEYS) and the call presented none or a "
    "wrong one, as the `X-API-Key` header or a bearer token (never in the URL).",
    429: "`rate_limited`: this client's requests are over IRAS_RATE_LIMIT_PER_S; or "
    "`too_many_wrong_keys`: this address presented over IRAS_MAX_KEY_FAILURES_PER_MIN "
    "wrong keys in a minute, and no key from it is checked for Retry-After seconds.",
}

#: What both upload routes may answer before an image is accepted.
UPLOAD_ERRORS = {
    **API_CALL_ERRORS,
    400: "The form is not what this endpoint reads: `invalid_form` (malformed, or too many "
    "files: one for `/upload`, IRAS_MAX_FILES_PER_REQUEST for `/v1/classify`), "
    "`unexpected_field`, `missing_file`, `not_a_file`; or an image is not one: "
    "`empty_file`, `truncated_image`, `invalid_image`.",
    413: "Too big: `request_too_large` (IRAS_MAX_REQUEST_BYTES; `/upload`: one file's "
    "IRAS_MAX_UPLOAD_BYTES and the form), `file_too_large` (IRAS_MAX_UPLOAD_BYTES) or "
    "`too_many_pixels` (IRAS_MAX_IMAGE_PIXELS).",
    415: "`multipart_expected`: the body is not multipart/form-data; or "
    "`unsupported_media_type`: a file is not a JPEG, PNG, WebP or GIF image by its content.",
    429: "`rate_limited` (IRAS_RATE_LIMIT_PER_S), `too_many_uploads`: this client already "
    "has IRAS_MAX_UPLOADS_PER_CLIENT uploads in progress, or `too_many_jobs`: it has "
    "IRAS_MAX_JOBS_PER_CLIENT jobs in memory, none complete and unwatched.",
    503: "Nothing was accepted: `not_ready` (the gateway is still connecting to AWS), "
    "`aws_unavailable` (storing or queueing failed or missed IRAS_AWS_DEADLINE_S) or "
    "`upload_budget` (the gateway holds IRAS_UPLOAD_BUDGET_BYTES of uploads already).",
}

#: The answer of a request that waited for its results longer than IRAS_WAIT_TIMEOUT_S.
WAIT_TIMEOUT = (
    "`result_timeout`: no result within IRAS_WAIT_TIMEOUT_S; the images are still queued, "
    "look them up later."
)


#: Every route's `default` response: any status not listed has the same body (405
#: `method_not_allowed`, for one). It also keeps FastAPI from listing a 422 with a body
#: of its own for every route with a parameter: the gateway reshapes validation
#: errors (see `iras.web.errors`), and a route with nothing to validate never sends one.
_ANY_OTHER = "Any other error (e.g. 405 `method_not_allowed`) has the same body."


def error_responses(
    described: Mapping[int, str], *, text_route: bool = False
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status in `described`, and any other, is an `ErrorBody`.

    A route whose own answer is not JSON (`text_route`) names the schema itself: FastAPI
    files a response's `model` under the route's media type.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    entries: list[tuple[int | str, str]] = [*sorted(described.items()), ("default", _ANY_OTHER)]
    for status, description in entries:
        response: dict[str, Any] = {"description": description}
        if text_route:
            schema = {"$ref": "#/components/schemas/ErrorBody"}
            response["content"] = {"application/json": {"schema": schema}}
        else:
            response["model"] = ErrorBody
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


# --- upload bodies and links --------------------------------------------------

_IMAGE_FILE = {
    "type": "string",
    "format": "binary",
    "description": "A JPEG, PNG, WebP or GIF image (judged by its content, not its name or "
    "part type), at most IRAS_MAX_UPLOAD_BYTES and IRAS_MAX_IMAGE_PIXELS; the part's "
    "filename names the result.",
}


def multipart_upload(field: str, *, many: bool) -> dict[str, Any]:
    """`openapi_extra=` of an upload route: the multipart body it reads.

    The routes read the form themselves (streamed and checked field by field as it comes,
    `iras.web.uploads`) rather than through FastAPI parameters, so FastAPI cannot see the
    body; without this the document says the routes take none, and a client generated from
    it (or schemathesis) never sends an image.
    """
    if many:
        files: dict[str, Any] = {
            "type": "array",
            "items": _IMAGE_FILE,
            "minItems": 1,
            "description": "One part per image, each with this field name; at most "
            "IRAS_MAX_FILES_PER_REQUEST.",
        }
    else:
        files = _IMAGE_FILE
    schema = {
        "type": "object",
        "properties": {field: files},
        "required": [field],
        # Any other field is refused (400 `unexpected_field`), not ignored.
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


def _link(path: str, parameter: str, source: str, description: str) -> dict[str, Any]:
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/get",
        "parameters": {parameter: f"$response.body#{source}"},
        "description": description,
    }


#: The 200 of `POST /v1/classify` leads to its job and to its requests' results: OpenAPI
#: links, for clients and for schemathesis's stateful tests (tests/web/test_fuzz.py).
JOB_LINKS: dict[str, Any] = {
    "GetJob": _link("/v1/jobs/{job_id}", "job_id", "/job_id", "Poll the job's progress."),
    "GetFirstResult": _link(
        "/v1/results/{request_id}",
        "request_id",
        "/requests/0/request_id",
        "The first image's result, once classified (404 before).",
    ),
}


def with_links(links: Mapping[str, Any]) -> dict[str, Any]:
    """`openapi_extra=` that adds `links` to a route's 200 answer."""
    return {"responses": {"200": {"links": dict(links)}}}


# --- operations ---------------------------------------------------------------


class Health(BaseModel):
    """The process is alive (it says nothing of AWS: see `/readyz`)."""

    status: Literal["ok"] = Field(description="Always `ok`.")


class GoldenTrip(BaseModel):
    """The golden image's trip through the fleet (`/readyz?deep=1`)."""

    elapsed_s: float = Field(
        description="Seconds from submitting it until its result arrived: storing, queueing, "
        "a worker's batch and the reply, as an upload would take now."
    )
    request_id: str = Field(description="Its request's id.")
    label: str = Field(description="The label the worker gave it.")
    worker: str = Field(description="The worker (instance or process) that answered.")
    model: str = Field(description="The model that classified it.")


class Readiness(BaseModel):
    """The gateway can store, queue and receive replies: the request queue and the output
    bucket answer, and the reply listener is receiving (checked at most once a second)."""

    status: Literal["ready"] = Field(description="Always `ready` (else the answer is a 503).")
    gateway: str = Field(description="This gateway's id (IRAS_GATEWAY_ID, else random).")
    backlog: int = Field(description="Requests waiting in the request queue.")
    in_flight: int = Field(description="Requests a worker has taken and not yet answered.")
    deep: GoldenTrip | SkipJsonSchema[None] = Field(
        None,
        description="Only with `?deep=1`: the golden image, classified end to end.",
        json_schema_extra=_without_default,
    )


class _FleetFigures(BaseModel):
    workers: int = Field(description="Worker instances running.")
    starting: int = Field(description="Worker instances launched or started, not yet running.")
    desired: int = Field(description="How many workers the scaling policy last asked for.")
    backlog: int = Field(description="Requests waiting in the request queue, as last observed.")
    in_flight: int = Field(description="Requests taken by a worker and not yet answered.")


class ScalerPoint(_FleetFigures):
    """One observation of the queue and the fleet (after acting on it)."""

    t: float = Field(description="When, in seconds since the Unix epoch (to the millisecond).")


class CapacityFigure(BaseModel):
    """One figure of the capacity model: the configured guess and what was measured."""

    configured: float = Field(description="The starting guess, as configured.")
    measured: float | None = Field(
        description="The median of recent measurements; null before the first. The "
        "autoscaler uses it once there is one, the guess until then."
    )
    samples: int = Field(description="Measurements taken since this gateway started.")


class Capacity(BaseModel):
    """What one worker can do and how long one takes to come up, guessed and measured."""

    worker_rate_ips: CapacityFigure = Field(
        description="Images one worker classifies per second of busy time (at least one "
        "batch classifying), as workers report it with each result (IRAS_WORKER_RATE_IPS "
        "the guess); measured: the median over the recent workers' latest reports."
    )
    boot_s: CapacityFigure = Field(
        description="Seconds from a launch (or a start, with the warm pool) by this gateway "
        "until the instance's worker began receiving, from its first result "
        "(IRAS_WORKER_BOOT_S the guess); measured: the median of the last 15 launches."
    )


class DecisionFigures(BaseModel):
    """What the scaling policy concluded at its latest look, whether or not it changed
    the fleet."""

    reason: str = Field(description="Why, in words, e.g. `backlog 12 -> 3 workers`.")
    figures: dict[str, float | None] = Field(
        description="The figures the answer used, by name (which ones depends on the rule: "
        "work, arrival rate, worker rate, boot time, ...); null for one that is not finite."
    )


class ScaleEvent(DecisionFigures):
    """One change of the fleet's size, and the decision that made it."""

    t: float = Field(description="When, in seconds since the Unix epoch (to the millisecond).")
    from_: int = Field(
        alias="from", description="Live instances (running or starting) before the change."
    )
    to: int = Field(description="Instances the policy asked for.")


class LeaseFigures(BaseModel):
    """The scaler's lease (an S3 object written with conditional requests)."""

    term: int = Field(description="How many times the lease has changed hands (or been taken).")
    ttl_s: float = Field(description="Its time to live (IRAS_LEADER_LEASE_S).")
    held_for_s: float = Field(
        description="Seconds this gateway's hold is still valid; 0 when it does not hold it."
    )
    peers: list[str] = Field(
        description="Other gateways whose upload reports the leader received recently."
    )


class ScalerSnapshot(_FleetFigures):
    """The autoscaler: the fleet and the backlog as last observed, its bounds, its history,
    what it measured of the workers and what the fleet has cost.

    Before its first observation the figures are 0 and the timeline is empty.
    """

    leader: bool = Field(
        description="Whether this gateway's autoscaler is the one that sizes the fleet: it "
        "holds the scaler's lease (of several gateways, exactly one does). Every gateway "
        "observes; the others report their uploads to the leader."
    )
    leader_id: str | None = Field(
        description="The id of the gateway that holds the lease; null while none does."
    )
    lease: LeaseFigures = Field(description="The scaler's lease as this gateway sees it.")
    fleet: Literal["instances", "asg"] = Field(
        description="How the fleet is run (IRAS_FLEET): instances launched by IRAS, or an "
        "EC2 Auto Scaling group whose desired capacity IRAS sets."
    )
    replaced: int = Field(
        description="Instances this gateway terminated because their worker's heartbeat "
        "stopped for IRAS_WORKER_SILENT_S (crashed, hung or never started)."
    )
    min_workers: int = Field(description="Fewest workers it keeps (IRAS_MIN_WORKERS).")
    max_workers: int = Field(description="Most workers it runs (IRAS_MAX_WORKERS or a default).")
    warm_pool: bool = Field(
        description="Whether it starts and stops instances (IRAS_WARM_POOL) rather than "
        "launching and terminating them."
    )
    latency_target_s: float | None = Field(
        description="The p95 latency target it sizes the fleet for (IRAS_LATENCY_TARGET_S); "
        "null: it scales to min_workers once the fleet is idle."
    )
    capacity: Capacity = Field(
        description="Worker throughput and boot time: the configured guesses beside what "
        "was measured."
    )
    last_decision: DecisionFigures | None = Field(
        description="The policy's latest answer; null before its first look."
    )
    decisions: list[ScaleEvent] = Field(
        description="The last scale events, oldest first, up to 50: only looks that changed "
        "the fleet's size."
    )
    images: int = Field(
        description="Results received since this gateway started (images answered): its own, "
        "and while it leads those the other gateways reported."
    )
    instance_seconds: float = Field(
        description="Worker instance-seconds billed so far: each instance seen live, from its "
        "launch by this gateway (or, for one it found running, from when it first saw it) "
        "until it was seen gone or now, at least the billing minimum of each launch "
        "(IRAS_BILLING_MINIMUM_S) from the moment it is launched."
    )
    price_per_hour: float | None = Field(
        description="USD per instance-hour used for the cost (IRAS_PRICE_PER_HOUR, else the "
        "us-east-1 on-demand price of IRAS_WORKER_INSTANCE_TYPE); null when unknown."
    )
    cost: float | None = Field(
        description="Estimated USD of `instance_seconds` at `price_per_hour`; null when the "
        "price is unknown."
    )
    cost_per_1000: float | None = Field(
        description="`cost` per 1,000 of `images`; null before the first result or when the "
        "price is unknown."
    )
    timeline: list[ScalerPoint] = Field(
        description="The last observations, oldest first: one per step (about one a "
        "second, IRAS_SCALER_INTERVAL_S, and when uploads arrive), up to 600."
    )
