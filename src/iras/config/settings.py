"""IRAS configuration: one settings class, read from `IRAS_*` environment variables.

Every process builds a `Settings` once at start-up and passes it explicitly to the
factories that need it (`Worker(settings, clients)`, `create_app(settings)`); nothing
reads the environment at import time. Defaults are safe for a laptop; on AWS only the
resource names (and perhaps the region) need setting. Credentials never live here: they
come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, cast, get_args

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from iras.config.course import check_course_id
from iras.messages import CACHE_PREFIX, CLAIMS_PREFIX, INPUTS_PREFIX, JOBS_PREFIX, MODELS_PREFIX
from iras.model.builtin import BUILTIN_MODELS
from iras.model.providers import CPU as CPU_PROVIDER
from iras.model.providers import parse_providers

#: The shortest API key accepted (`api_keys`): a short one is guessed.
MIN_API_KEY_CHARS = 16

#: What SQS allows in a queue name, and how long it may be.
GATEWAY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
SQS_QUEUE_NAME_MAX = 80

#: The course protocol's routes (`course_routes`): a path of plain URL characters, a
#: multipart field name of letters, digits, '_', '.' and '-'; and the paths IRAS's own
#: routes take (with what lies below them), which a course route must not shadow.
COURSE_PATH_PATTERN = re.compile(r"/[A-Za-z0-9._~/-]*")
COURSE_FIELD_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
RESERVED_PATHS = ("/v1", "/readyz", "/healthz", "/metrics", "/docs", "/redoc", "/openapi.json")

#: Who sets a setting an app-tier worker reads, as its field's `json_schema_extra` says.
#: "shared": the gateway that launches the worker passes its own value (one fleet, one
#: configuration: names, model, batching, timeouts; `iras.infra.app_tier`). "own": the
#: value belongs to the machine the worker runs on and is never passed (its instance, its
#: cores, its files). A test reads the worker's code and checks every setting it reads is
#: marked one or the other.
WorkerRole = Literal["shared", "own"]
WORKER_SHARED: JsonDict = {"worker": "shared"}
WORKER_OWN: JsonDict = {"worker": "own"}


class Settings(BaseSettings):
    """All of IRAS's knobs, each one an `IRAS_<FIELD>` environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="IRAS_",
        extra="ignore",
        frozen=True,
        protected_namespaces=(),
        populate_by_name=True,
    )

    # --- where AWS is -------------------------------------------------------------
    region: str = Field(
        "us-east-1",
        description="AWS region of the buckets, queues and instances.",
        validation_alias=AliasChoices("IRAS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION"),
        json_schema_extra=WORKER_SHARED,
    )
    # Shared when set (an emulated AWS the whole fleet uses); unset, nothing is passed.
    endpoint_url: str | None = Field(
        None,
        description=(
            "One endpoint for every AWS service (an embedded or emulated AWS). Unset means "
            "real AWS, or the standard AWS_ENDPOINT_URL variable when that is set."
        ),
        validation_alias=AliasChoices("IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        json_schema_extra=WORKER_SHARED,
    )

    # --- resource names -------------------------------------------------------------
    input_bucket: str = Field(
        "iras-input",
        description="S3 bucket that holds uploaded images.",
        json_schema_extra=WORKER_SHARED,
    )
    output_bucket: str = Field(
        "iras-output",
        description=(
            "S3 bucket that holds results: the label per image name (the course's), and "
            "IRAS's own records unless IRAS_STATE_BUCKET is set."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    state_bucket: str | None = Field(
        None,
        description=(
            "S3 bucket of IRAS's own records: the JSON result per request "
            "(IRAS_RESULTS_PREFIX), job manifests (jobs/) and the scaler's lease. Unset: "
            "the output bucket. Set (the course preset does) to keep the output bucket to "
            "one label object per image."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    request_queue: str = Field(
        "iras-requests",
        description="SQS queue of classification requests.",
        json_schema_extra=WORKER_SHARED,
    )
    # Shared though a worker never uses it: its settings must pass the same validation
    # (request_queue != dead_letter_queue) as the gateway's.
    dead_letter_queue: str = Field(
        "iras-requests-dlq",
        description="SQS queue that receives requests which failed max_receive_count times.",
        json_schema_extra=WORKER_SHARED,
    )
    results_prefix: str = Field(
        "results/",
        description=(
            "Folder of the per-request JSON results in the output bucket; not empty (results "
            "must not share keys with name objects), not inside jobs/ or inputs/."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    write_name_objects: bool = Field(
        True,
        description=(
            "Also write each label as a plain-text object keyed by the image's name (without "
            "extension) in the output bucket, as the CSE546 course's graders expect."
        ),
        json_schema_extra=WORKER_SHARED,
    )

    # --- queue behaviour ------------------------------------------------------------
    visibility_timeout_s: int = Field(
        60,
        ge=1,
        le=43200,
        description=(
            "How long a received request stays hidden before another worker may take it. "
            "Workers extend it for batches that run long."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    receive_wait_s: int = Field(
        20,
        ge=0,
        le=20,
        description="SQS long-poll wait of one receive call.",
        json_schema_extra=WORKER_SHARED,
    )
    max_receive_count: int = Field(
        3,
        ge=1,
        le=1000,
        description=(
            "Receives of one request before it moves to the dead-letter queue. A stopping "
            "worker classifies a request on its last receive rather than hand it back."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    message_retention_s: int = Field(
        4 * 24 * 3600, ge=60, le=14 * 24 * 3600, description="How long SQS keeps an unread request."
    )

    # --- the classifier ---------------------------------------------------------------
    # IRAS_MODEL_NAME is its older name, still read (built-in names were all it took).
    model_name: str = Field(
        "efficientnet_lite0",
        description=(
            "Classifier to run: a built-in model (efficientnet_lite0, the default, whose "
            "weights ship with IRAS; resnet18), a model folder (model.onnx, labels.txt, "
            "model.json), or a .onnx file with its card and labels beside it "
            "(iras.model.repository). A path must exist where the workers run."
        ),
        validation_alias=AliasChoices("IRAS_MODEL", "IRAS_MODEL_NAME"),
        json_schema_extra=WORKER_SHARED,
    )
    # Own: a path on the worker's disk, which the gateway's path need not name; custom
    # weights are baked into the worker image, with this set there.
    model_weights: Path | None = Field(
        None,
        description=(
            "File with the model's weights (a PyTorch state dict). Unset means the packaged "
            "weights (efficientnet_lite0) or the torch hub cache (resnet18)."
        ),
        json_schema_extra=WORKER_OWN,
    )
    top_k: int = Field(
        5,
        ge=1,
        le=20,
        description="How many ranked labels each result carries.",
        json_schema_extra=WORKER_SHARED,
    )
    model_engine: Literal["onnx", "torch"] = Field(
        "onnx",
        description=(
            "Inference engine: onnx (ONNX Runtime on an export cached next to the weights; "
            "2-3x faster, starts without torch) or torch (PyTorch, the reference). onnx falls "
            "back to torch, with a warning, when it cannot be used."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    model_precision: Literal["int8", "fp32"] = Field(
        "int8",
        description=(
            "Precision of a built-in model on ONNX Runtime's CPU provider: int8 (statically "
            "quantized, ~1.35x the images/s at the same top-1 on the sample set) or fp32. The "
            "int8 file is made once from the float export (~10 s) and cached next to it; "
            "`iras bake` makes both. Your own models and GPU providers run as they are."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    execution_providers: Annotated[tuple[str, ...], NoDecode] = Field(
        (CPU_PROVIDER,),
        description=(
            "ONNX Runtime execution providers, comma-separated, in order of preference: short "
            "names (cuda, tensorrt, cpu, ...) or onnxruntime's (CUDAExecutionProvider). The "
            "CPU is always the last fallback, appended when missing; a provider the worker's "
            "onnxruntime lacks is skipped with a warning (a GPU needs onnxruntime-gpu)."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    inference_threads: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "Threads for one forward pass and for decoding; 0 means one per CPU core "
            "(`iras serve`'s workers, which share one machine: the cores over IRAS_MAX_WORKERS)."
        ),
        json_schema_extra=WORKER_OWN,
    )

    # --- the worker ---------------------------------------------------------------------
    batch_size: int = Field(
        8,
        ge=1,
        le=256,
        description="Most images in one forward pass.",
        json_schema_extra=WORKER_SHARED,
    )
    batch_wait_ms: int = Field(
        40,
        ge=0,
        le=10_000,
        description=(
            "How long a partly filled batch waits for more requests before it runs, while "
            "the model is busy with another (an idle model takes what there is at once)."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    receivers: int = Field(
        2,
        ge=1,
        le=16,
        description="Concurrent SQS receive calls (each takes up to 10 messages).",
        json_schema_extra=WORKER_SHARED,
    )
    prefetch_batches: int = Field(
        1,
        ge=0,
        le=8,
        description=(
            "Batches a worker receives and downloads ahead of the one the model is running. "
            "More hides I/O better but holds messages another worker could take."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    idle_exit_s: float = Field(
        120.0,
        ge=0,
        description="A worker with nothing to do for this long exits (0 = never).",
        json_schema_extra=WORKER_SHARED,
    )
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description=(
            "Longest a stopping worker takes, all its steps together (receives in flight, the "
            "batch in hand, its publishing); what still runs then is cancelled. Handing back "
            "the requests it had not started is allowed 2 s past it."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description=(
            "Port of a worker's own Prometheus /metrics (its stage times, publish included); "
            "0 = off. The gateway's /metrics has every stage but publish from the results; "
            "a port taken (`iras serve`'s workers share a machine) is logged and skipped."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    instance_id: str | None = Field(
        None,
        description=(
            "EC2 instance this worker runs on, terminated when it exits idle. 'auto' asks the "
            "instance metadata service (IMDSv2); unset means not on EC2."
        ),
        json_schema_extra=WORKER_OWN,
    )
    imds_url: str = Field(
        "http://169.254.169.254",
        description="Instance metadata service, asked for the instance id when instance_id=auto.",
        json_schema_extra=WORKER_OWN,
    )
    worker_name: str | None = Field(
        None,
        description="Name the worker puts in its results; defaults to the instance id or host:pid.",
        json_schema_extra=WORKER_OWN,
    )

    # --- the gateway -------------------------------------------------------------------
    course_id: str | None = Field(
        None,
        description=(
            "The CSE546 course preset for this student id (`iras serve --course <id>`): "
            "every `iras` command then defaults to the course's names (<id>-in-bucket, "
            "<id>-out-bucket, <id>-req-queue, <id>-resp-queue), 15 workers at most, scaled "
            "to reach them for a burst of 100, and the region us-east-1 unless IRAS_REGION "
            "says otherwise (README, For CSE546 students)."
        ),
    )
    reply_queue_prefix: str = Field(
        "iras-replies",
        description="Each gateway creates its own reply queue named <prefix>-<gateway id>.",
    )
    reply_queue: str | None = Field(
        None,
        description=(
            "Exact name of this gateway's reply queue, instead of <prefix>-<gateway id> (the "
            "course's <id>-resp-queue). One gateway at a time holds it (a claim in the state "
            "bucket): a second one with the same name stays not ready, saying which holds "
            "it. Kept, empty, at stop. Other gateways cannot report their uploads to a "
            "leader whose queue is named so: for a lone gateway."
        ),
    )
    gateway_id: str | None = Field(
        None,
        description=(
            "This gateway's id, which names its reply queue (letters, digits, '-' and '_'); "
            "give each gateway its own. A gateway with a fixed id keeps its queue at stop and, "
            "restarted, takes the results that came while it was down. Unset: `iras gateway` "
            "takes <host>-<port> as its fixed id; `iras serve` a random one, whose queue goes "
            "at stop."
        ),
    )
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest image file accepted, in bytes."
    )
    max_request_bytes: int = Field(
        # The page's largest request: 8 files at IRAS_MAX_UPLOAD_BYTES's default, with the
        # form's room around each (iras.web.body_limits.FORM_ROOM_BYTES).
        8 * (10 * 1024 * 1024 + 64 * 1024),
        ge=1024,
        description=(
            "Largest HTTP request body, in bytes; bigger uploads are cut off while streaming "
            "(413). The default holds 8 of the largest images (the page's batch) or 500 "
            "course-sized ones. POST /upload, one image, has the smaller limit of "
            "IRAS_MAX_UPLOAD_BYTES plus 64 KiB for the form."
        ),
    )
    upload_budget_bytes: int = Field(
        # For a small instance (a t3.small's 2 GiB): a byte in flight costs about one byte
        # of memory (at most two, briefly, while a spooled file is read for its PUT), so
        # this leaves the gateway's own ~200 MB and the OS their room, and still holds
        # three of the largest requests, or thousands of course-sized (100 kB) images.
        256 * 1024 * 1024,
        ge=1024 * 1024,
        description=(
            "Upload bytes the gateway holds at once, all clients together (bodies being read, "
            "checked and stored): what bounds its memory. An upload that does not fit waits "
            "up to 1.5 s, then gets 503 with Retry-After; one larger than the budget is taken "
            "when no other upload is in progress."
        ),
    )
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest image accepted, in pixels (width x height)."
    )
    max_files_per_request: int = Field(
        500, ge=1, description="Most images in one POST /v1/classify."
    )
    course_routes: str = Field(
        "/upload=myfile,/=inputFile",
        description=(
            "The course protocol's routes, comma-separated <path>=<field>: each is a POST "
            "taking one image in multipart field <field> and answering `name:label` (the "
            "default: CSE546's older workload generator, then its 2024-2026 one). GET / stays "
            "the page; the paths of IRAS's own routes (/v1/..., /healthz, /readyz, /metrics, "
            "/docs, /openapi.json) are refused. Empty: no course routes."
        ),
    )
    wait_timeout_s: float = Field(
        120.0,
        gt=0,
        description=(
            "How long a waiting request (/upload, ?wait=true) waits for its result before a "
            "504; the work goes on and the result lands in the output bucket."
        ),
    )
    job_ttl_s: float = Field(
        3600.0, gt=0, description="How long the gateway keeps a job's results in memory."
    )
    max_jobs_in_memory: int = Field(
        10_000,
        ge=1,
        description=(
            "Most jobs kept in memory; the oldest are forgotten first, but never one a request "
            "waits on or a WebSocket follows (those may briefly take the book past it)."
        ),
    )
    result_cache: bool = Field(
        True,
        description=(
            "Answer an image already classified (the same bytes, the same model name, version "
            "and precision) from the result cache, without queueing it: in memory, and under "
            "`cache/` in the state bucket, shared by gateways and kept across restarts. "
            "Concurrent uploads of one new image are classified once."
        ),
    )
    result_cache_entries: int = Field(
        20_000,
        ge=1,
        description="Most results the result cache keeps in memory (~0.6 KB each).",
    )
    send_batch_wait_ms: float = Field(
        5.0,
        ge=0,
        description="How long a request waits for company before SendMessageBatch (0 = send at once).",
    )
    lookup_connections: int = Field(
        8,
        ge=1,
        le=1000,
        description=(
            "S3 connections for looking up jobs and results the gateway has forgotten (GET "
            "/v1/jobs, /v1/results): a pool apart from the uploads' own, so lookups never "
            "delay an upload; also the most such GETs in flight at once."
        ),
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "API keys, comma-separated, each at least 16 characters. Unset: the API is open. "
            "Set: every API and WebSocket call needs one (X-API-Key header or Authorization: "
            "Bearer; on WebSockets also the subprotocol `iras.key.<key, base64url>`; never in "
            "the URL), and a job is visible only to the key that created it."
        ),
    )
    max_key_failures_per_min: int = Field(
        10,
        ge=0,
        description=(
            "Wrong API keys one address may present per minute; 0 = no limit. Past it, every "
            "key from that address (the right one too) gets 429 with Retry-After."
        ),
    )
    forwarded_allow_ips: str = Field(
        "127.0.0.1,::1",  # uvicorn's own default: a proxy on this machine
        description=(
            "Peers trusted to say who the client is (X-Forwarded-For, X-Forwarded-Proto): "
            "comma-separated IPs or CIDRs, or '*'. Behind a load balancer, its addresses (an "
            "ALB: the VPC's CIDR), so that per-client limits key on each user, not on the "
            "balancer; from any other peer the headers are ignored."
        ),
    )
    rate_limit_per_s: float = Field(
        100.0,
        ge=0,
        description="API requests per second one client (key, or address) may make; 0 = no limit.",
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="Requests one client may make at once before the rate applies."
    )
    max_uploads_per_client: int = Field(
        200,
        ge=0,
        description=(
            "Uploads (POST /upload, /v1/classify) one client may have in progress, waiting "
            "ones included; 0 = no limit. Beyond it: 429."
        ),
    )
    max_jobs_per_client: int = Field(
        1000,
        ge=0,
        description=(
            "Jobs one client may have in the gateway's memory; 0 = no limit. At the limit its "
            "oldest complete job that nobody waits on or watches makes room (its results stay "
            "in the output bucket); with none, new uploads get 429 before anything is stored."
        ),
    )
    websocket_timeout_s: float = Field(
        600.0,
        gt=0,
        description=(
            "Longest a WebSocket follows a job; then a `timeout` message and close code 4408 "
            "(reconnecting replays the job from the start)."
        ),
    )
    max_websockets_per_client: int = Field(
        20,
        ge=0,
        description="WebSockets one client may hold open; 0 = no limit. Beyond it: close 4429.",
    )
    max_websockets: int = Field(
        1000,
        ge=0,
        description="WebSockets the gateway holds open in all; 0 = no limit. Beyond it: close 4503.",
    )
    deep_readiness_timeout_s: float = Field(
        30.0,
        gt=0,
        le=300,
        description=(
            "How long GET /readyz?deep=1 waits for its golden image's result before a 503 "
            "(with the autoscaler at 0 workers, a cold start takes a worker's boot); "
            "`?timeout_s=` sets it per call."
        ),
    )

    # --- the autoscaler and the fleet -------------------------------------------------
    autoscaler: bool = Field(
        True,
        description="Run the autoscaler in the gateway; turn off when the worker fleet is managed elsewhere.",
    )
    min_workers: int = Field(0, ge=0, description="Fewest workers the autoscaler keeps.")
    max_workers: int | None = Field(
        None,
        ge=1,
        description="Most workers the autoscaler runs; unset means 20 on AWS, the core count for local workers.",
    )
    backlog_per_worker: int = Field(
        10, ge=1, description="Queued and in-flight requests one worker is expected to handle."
    )
    scale_in_cooldown_s: float = Field(
        0.5,
        ge=0,
        description="Idle time (nothing queued or in flight, no upload) before scaling in.",
    )
    scaler_interval_s: float = Field(
        1.0, gt=0, description="How often the autoscaler observes the queue and the fleet."
    )
    latency_target_s: float | None = Field(
        None,
        gt=0,
        description=(
            "p95 target for upload -> result, in seconds: the autoscaler keeps the smallest "
            "fleet that meets it and scales in gradually. Unset: scale to min_workers as "
            "soon as the fleet is idle (what the CSE546 grader scores)."
        ),
    )
    worker_rate_ips: float = Field(
        20.0,
        gt=0,
        description=(
            "Starting guess of the images one worker classifies per second of busy time; "
            "replaced by what workers report."
        ),
    )
    worker_boot_s: float = Field(
        40.0,
        ge=0,
        description=(
            "Starting guess of an instance's time from launch to taking work; replaced by "
            "what launched workers show (`iras serve`: 3)."
        ),
    )
    billing_minimum_s: float = Field(
        60.0,
        ge=0,
        description=(
            "Seconds every instance is billed at least (EC2: 60); the latency objective "
            "does not release an instance before it (`iras serve`: 0)."
        ),
    )
    price_per_hour: float | None = Field(
        None,
        ge=0,
        description=(
            "Price of one worker instance per hour, for /v1/scaler's cost figures; unset: "
            "the us-east-1 on-demand price of worker_instance_type."
        ),
    )
    local_instances: bool = Field(
        False,
        description=(
            "Run one local iras-worker process per pending or running app-tier instance "
            "(what `iras serve` does; on AWS the instance's own boot starts the worker)."
        ),
    )
    warm_pool: bool = Field(
        False,
        description="Scale by starting and stopping app-tier instances instead of launching and terminating.",
        json_schema_extra=WORKER_SHARED,
    )
    fleet: Literal["instances", "asg"] = Field(
        "instances",
        description=(
            "How the fleet is run: instances (the autoscaler launches and terminates tagged "
            "EC2 instances itself, as the CSE546 course asks) or asg (it sets the desired "
            "capacity of an EC2 Auto Scaling group, which `iras provision --fleet` makes)."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    asg_name: str = Field(
        "iras-app-tier",
        description="Name of the workers' Auto Scaling group (fleet=asg).",
        json_schema_extra=WORKER_SHARED,
    )
    asg_subnet_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "Subnets (comma-separated ids, one per Availability Zone) the Auto Scaling group "
            "launches into and balances across; unset: the default VPC's default subnets."
        ),
    )
    asg_instance_types: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "More instance types (comma-separated) the Auto Scaling group may launch besides "
            "worker_instance_type: spot capacity is found more easily in several pools."
        ),
    )
    asg_on_demand_base: int = Field(
        0,
        ge=0,
        description="Workers of the Auto Scaling group that are always on-demand, whatever spot_percentage says.",
    )
    asg_spot_percentage: int = Field(
        0,
        ge=0,
        le=100,
        description=(
            "Share (%) of the Auto Scaling group's workers above asg_on_demand_base that are "
            "spot instances: cheaper, but AWS may reclaim them with two minutes' notice."
        ),
    )
    leader_lease_s: float = Field(
        10.0,
        ge=2.0,
        description=(
            "Time to live of the scaler's lease: of several gateways only the holder scales "
            "the fleet; another takes over this long after the holder stops renewing it."
        ),
    )
    leader_lease_key: str = Field(
        "scaler/leader.json",
        description="Object in the output bucket that holds the scaler's lease.",
        json_schema_extra=WORKER_SHARED,
    )
    worker_heartbeat_s: float = Field(
        15.0,
        ge=0,
        description=(
            "How often a worker on an instance tags it as alive (iras:heartbeat); 0 = never "
            "(`iras serve`: 2)."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    worker_silent_s: float = Field(
        180.0,
        ge=0,
        description=(
            "A live app-tier instance whose heartbeat has not changed for this long (its "
            "worker crashed, hung or never started) is terminated and replaced; 0 = never. "
            "Keep it above an instance's boot time (`iras serve`: 20)."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    # Own: what runs the worker process sets it (`iras serve`'s local workers).
    instance_watch: bool = Field(
        False,
        description=(
            "A worker watches its own instance and stops once it is no longer running (set "
            "by `iras serve` for local workers: on EC2 the instance's shutdown does it)."
        ),
        json_schema_extra=WORKER_OWN,
    )
    worker_name_prefix: str = Field(
        "app-tier-instance", description="Name tag of worker instances: <prefix>-<n>."
    )
    web_instance_name: str = Field(
        "web-instance",
        description=(
            "`iras serve` only: Name tag of the EC2 instance record it registers for the "
            "gateway in the embedded AWS while it runs (the course looks for one running "
            "web-instance beside the app tier); empty: none."
        ),
    )
    worker_image_id: str | None = Field(
        None, description="AMI of worker instances (or use worker_launch_template)."
    )
    worker_launch_template: str | None = Field(
        None,
        description=(
            "Launch template of worker instances; when set, the autoscaler launches from it "
            "instead of worker_image_id. `iras provision --fleet` writes it (unset: as "
            "iras-app-tier)."
        ),
    )
    worker_instance_type: str = Field("t3.medium", description="EC2 instance type of workers.")
    worker_instance_profile: str | None = Field(
        None,
        description=(
            "IAM instance profile (name or ARN) of worker instances, in their launch template "
            "or at each launch from worker_image_id: the role their AWS calls run as."
        ),
    )
    worker_security_group_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description=(
            "Security groups (comma-separated ids) of worker instances; unset means the "
            "VPC's default group. Workers need outbound HTTPS only."
        ),
    )

    # --- AWS client behaviour -------------------------------------------------------
    aws_max_attempts: int = Field(
        5,
        ge=1,
        le=20,
        description="Attempts per AWS call (botocore standard retry mode).",
        json_schema_extra=WORKER_SHARED,
    )
    aws_connect_timeout_s: float = Field(
        5.0, gt=0, description="TCP connect timeout to AWS.", json_schema_extra=WORKER_SHARED
    )
    aws_client: Literal["auto", "lean", "botocore"] = Field(
        "auto",
        description=(
            "What makes the per-image S3 and SQS calls: lean (IRAS's own signed HTTP "
            "calls, ~10x cheaper), botocore, or auto: lean, unless an HTTP(S) proxy or FIPS "
            "or dual-stack endpoints are configured, which only botocore honours."
        ),
        json_schema_extra=WORKER_SHARED,
    )
    aws_deadline_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description=(
            "Longest an upload waits for S3 and SQS to store and queue its images. Past it, "
            "or at once when the AWS endpoint refuses connections, the upload gets 503 with "
            "Retry-After and nothing is accepted."
        ),
    )

    # --- logs ---------------------------------------------------------------------------
    # Read by `iras.telemetry.logs` from the environment before the settings load; here to
    # be checked, documented and passed on to the fleet.
    log_format: Literal["auto", "text", "json"] = Field(
        "auto",
        description=(
            "Log lines as text (time, level, logger, message, then the request's ids as "
            "key=value) or JSON (one object per line, every field a key: request_id, "
            "job_id, worker, batch, a scale decision's figures); auto: text on a terminal, "
            "JSON otherwise."
        ),
        json_schema_extra=WORKER_SHARED,
    )

    @property
    def records_bucket(self) -> str:
        """The bucket of IRAS's own records (results, manifests, the lease)."""
        return self.state_bucket or self.output_bucket

    @property
    def course_route_fields(self) -> tuple[tuple[str, str], ...]:
        """The course routes as (path, multipart field) pairs, in the setting's order."""
        return parse_course_routes(self.course_routes)

    @field_validator("course_routes")
    @classmethod
    def _course_routes_are_routes(cls, value: str) -> str:
        """Refused at start: a bad path would otherwise shadow a route or answer nothing."""
        return ",".join(f"{path}={field}" for path, field in parse_course_routes(value))

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator(
        "worker_security_group_ids",
        "api_keys",
        "asg_subnet_ids",
        "asg_instance_types",
        mode="before",
    )
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """An environment variable holds the ids comma-separated, not as JSON."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("execution_providers", mode="before")
    @classmethod
    def _providers_are_known(cls, value: object) -> object:
        """Comma-separated in the environment; refused at start when misspelt, so a GPU
        worker does not quietly run on its CPU for want of a letter."""
        if isinstance(value, str | list | tuple):
            return parse_providers(value)
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_peers_are_addresses(cls, value: str) -> str:
        """Refused at start rather than trusted wrongly: uvicorn would take a typo for a
        host name, which no client's address ever matches."""
        peers = [part.strip() for part in value.split(",") if part.strip()]
        if not peers:
            raise ValueError("forwarded_allow_ips: name at least one IP or CIDR, or '*'")
        for peer in peers:
            if peer == "*":
                return "*"  # uvicorn trusts everyone only when told exactly that
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {peer!r} is not an IP address or CIDR (such as "
                    "10.0.0.0/16), nor '*'"
                ) from None
        return ",".join(peers)

    @field_validator("api_keys")
    @classmethod
    def _keys_are_long_enough(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """A short key is guessed: refuse it at start rather than serve with it."""
        for position, key in enumerate(value, start=1):
            if len(key) < MIN_API_KEY_CHARS:
                raise ValueError(
                    f"api_keys: key {position} of {len(value)} has {len(key)} characters; each "
                    f"needs at least {MIN_API_KEY_CHARS} (make one with: python -c "
                    "'import secrets; print(secrets.token_urlsafe(24))')"
                )
        return value

    @field_validator("model_name")
    @classmethod
    def _model_path_is_absolute(cls, value: str) -> str:
        """A model given by a relative path names the same files for the workers this
        process starts, whatever their working directory."""
        if value in BUILTIN_MODELS:
            return value
        path = Path(value).expanduser()
        return str(path.resolve()) if not path.is_absolute() and path.exists() else value

    @field_validator("results_prefix")
    @classmethod
    def _prefix_is_a_folder_of_its_own(cls, value: str) -> str:
        """Results live in a folder no other object's key can reach.

        Name objects (the course's label per image name) sit at the bucket's root under a
        name without folders; with no prefix, an upload named `<request id>.json.jpg` would
        write its label over that request's result. Manifests (`jobs/`) and uploads
        (`inputs/`) have folders of their own, which results must not share.
        """
        if not value.strip("/"):
            raise ValueError(
                "results_prefix must name a folder (such as 'results/'): at the bucket's "
                "root, results would share keys with the name objects of uploads"
            )
        folder = value if value.endswith("/") else value + "/"
        _outside_taken_folders("results_prefix", folder, example="results/")
        return folder

    @field_validator("leader_lease_key")
    @classmethod
    def _lease_has_a_folder_of_its_own(cls, value: str) -> str:
        """At the bucket's root the lease would share keys with the name objects of
        uploads (an upload named `lease.json.jpg` would overwrite it), and the app tier's
        policy denies its writes to the lease by this key (deploy/iam)."""
        folder, _, name = value.rpartition("/")
        if not folder.strip("/") or not name:
            raise ValueError(
                f"leader_lease_key {value!r} must name an object in a folder (such as "
                "'scaler/leader.json'): at the bucket's root it would share keys with the "
                "name objects of uploads"
            )
        _outside_taken_folders("leader_lease_key", value, example="scaler/")
        return value

    @field_validator("course_id")
    @classmethod
    def _course_id_names_buckets(cls, value: str | None) -> str | None:
        return check_course_id(value) if value else None

    @field_validator("reply_queue")
    @classmethod
    def _reply_queue_is_a_queue_name(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not GATEWAY_ID_PATTERN.fullmatch(value) or len(value) > SQS_QUEUE_NAME_MAX:
            raise ValueError(
                f"reply_queue must be an SQS queue name (1 to {SQS_QUEUE_NAME_MAX} letters, "
                f"digits, '-' and '_'), got {value!r}"
            )
        return value

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id_fits_a_queue_name(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not GATEWAY_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "gateway_id may hold only letters, digits, '-' and '_' (it ends the reply "
                f"queue's name), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _lease_is_not_a_result(self) -> Settings:
        if self.leader_lease_key.startswith(self.results_prefix):
            raise ValueError(
                f"leader_lease_key {self.leader_lease_key!r} is inside results_prefix "
                f"{self.results_prefix!r}: keep the lease out of the results' folder"
            )
        return self

    @model_validator(mode="after")
    def _reply_queue_name_fits(self) -> Settings:
        if self.gateway_id is None or self.reply_queue is not None:
            return self
        name = f"{self.reply_queue_prefix}-{self.gateway_id}"
        if len(name) > SQS_QUEUE_NAME_MAX:
            room = SQS_QUEUE_NAME_MAX - len(self.reply_queue_prefix) - 1
            raise ValueError(
                f"the reply queue name {name!r} has {len(name)} characters, over SQS's "
                f"{SQS_QUEUE_NAME_MAX}: shorten gateway_id to at most {room} (or reply_queue_prefix)"
            )
        return self

    @model_validator(mode="after")
    def _silence_outlasts_heartbeats(self) -> Settings:
        beats, silent = self.worker_heartbeat_s, self.worker_silent_s
        if beats > 0 and 0 < silent < 3 * beats:
            raise ValueError(
                f"worker_silent_s ({silent:g}) must be at least 3 heartbeats "
                f"(worker_heartbeat_s {beats:g} -> {3 * beats:g} s), or 0 to never replace "
                "silent instances: a heartbeat that is merely late must not end an instance"
            )
        return self

    @model_validator(mode="after")
    def _queues_differ(self) -> Settings:
        if self.request_queue == self.dead_letter_queue:
            raise ValueError(
                f"request_queue and dead_letter_queue must differ (both are {self.request_queue!r})"
            )
        if self.reply_queue in (self.request_queue, self.dead_letter_queue):
            raise ValueError(
                f"reply_queue {self.reply_queue!r} must differ from the request and "
                "dead-letter queues: replies would be taken for requests"
            )
        return self


def worker_role(name: str) -> WorkerRole | None:
    """Whether setting `name` is one a worker shares with its gateway, its own, or neither."""
    extra = Settings.model_fields[name].json_schema_extra
    role = extra.get("worker") if isinstance(extra, dict) else None
    return cast(WorkerRole, role) if role in get_args(WorkerRole) else None


def worker_settings(role: WorkerRole) -> tuple[str, ...]:
    """The settings a worker reads with `role`, in field order."""
    return tuple(name for name in Settings.model_fields if worker_role(name) == role)


def parse_course_routes(value: str) -> tuple[tuple[str, str], ...]:
    """`/upload=myfile,/=inputFile` as (path, field) pairs; ValueError says what is wrong."""
    routes: dict[str, str] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        path, equals, field = (text.strip() for text in entry.partition("="))
        if not equals or not field:
            raise ValueError(
                f"course_routes: {entry!r} is not <path>=<field> (such as '/=inputFile')"
            )
        if not COURSE_PATH_PATTERN.fullmatch(path):
            raise ValueError(
                f"course_routes: the path {path!r} must start with '/' and hold only letters, "
                "digits and '/', '-', '.', '_', '~'"
            )
        if not COURSE_FIELD_PATTERN.fullmatch(field):
            raise ValueError(
                f"course_routes: the field {field!r} of {path!r} may hold only letters, "
                "digits, '_', '.' and '-'"
            )
        for taken in RESERVED_PATHS:
            if path == taken or path.startswith(taken + "/"):
                raise ValueError(
                    f"course_routes: {path!r} is IRAS's own route {taken!r} (or below it); "
                    "choose another path"
                )
        if path in routes:
            raise ValueError(
                f"course_routes: {path!r} is given twice (fields {routes[path]!r} and "
                f"{field!r}); a path reads one field"
            )
        routes[path] = field
    return tuple(routes.items())


def environment_variable(name: str) -> str:
    """The environment variable setting `name` is read from: its first alias, or
    IRAS_<NAME> (`region` is IRAS_REGION, though AWS_REGION is read too)."""
    aliases = getattr(Settings.model_fields[name].validation_alias, "choices", None)
    return str(aliases[0]) if aliases else f"IRAS_{name.upper()}"


def _outside_taken_folders(setting: str, key: str, *, example: str) -> None:
    """Refuse a key (or folder) of the output bucket inside the manifests', uploads' or
    claims' folders, the fleet's model records or the result cache, whose objects it would
    overwrite or be overwritten by."""
    for taken in (JOBS_PREFIX, INPUTS_PREFIX, CLAIMS_PREFIX, MODELS_PREFIX, CACHE_PREFIX):
        if key.startswith(taken):
            raise ValueError(
                f"{setting} {key!r} is inside {taken!r}, which holds other objects: give it "
                f"a folder of its own (such as {example!r})"
            )
