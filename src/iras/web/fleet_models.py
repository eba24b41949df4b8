"""What `GET /v1/models` lists: the models the workers recorded, and the gateway's own.

Each worker records its model once at start (`iras.worker.model_record`), one object per
model name and version under `models/` in the state bucket. Listing them costs a
ListObjectsV2 and a GET per record, so the listing is read at most once per
`MODELS_CACHE_S` for every caller together (one lock: callers that arrive while it is
being read wait for that read), at most `MAX_MODEL_RECORDS` records, on the lookups'
own pool and bound (`iras.web.lookup.Lookups`), and charged to the caller who caused the
read (`iras.web.caller_lookups.lookup_models`).

Records are written by workers, whose role may write `models/*`, so each is checked
before it is shown: a malformed one is left out, and the answer stays what the OpenAPI
document says it is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from iras.config import Settings
from iras.messages import MODELS_PREFIX
from iras.model.builtin import BUILTIN_MODELS
from iras.model.card import NAME_PATTERN
from iras.model.repository import ModelEntry, resolve_model
from iras.web.lookup import Lookups, Meter

#: How long a read listing serves every caller.
MODELS_CACHE_S = 10.0
#: The most model records one listing reads (sorted by key: name, then version).
MAX_MODEL_RECORDS = 100

Record = dict[str, Any]


class FleetModels:
    """The workers' model records, read at most once per `ttl_s` (see the module docstring)."""

    def __init__(
        self, ttl_s: float = MODELS_CACHE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._records: list[Record] = []
        self._read_at: float | None = None

    async def records(self, lookups: Lookups, meter: Meter) -> list[Record]:
        """The valid records, from the cache or read now (its S3 calls counted in `meter`)."""
        async with self._lock:
            now = self._clock()
            if self._read_at is not None and now - self._read_at < self.ttl_s:
                return self._records
            self._records = await _read_records(lookups, meter)
            self._read_at = self._clock()
            return self._records


async def _read_records(lookups: Lookups, meter: Meter) -> list[Record]:
    bucket = lookups.settings.records_bucket
    objects = lookups.aws.objects
    meter.calls += 1
    async with lookups.in_flight:
        keys = await objects.list_keys(bucket, MODELS_PREFIX)
    wanted = sorted(key for key in keys if key.endswith(".json"))[:MAX_MODEL_RECORDS]

    async def read(key: str) -> Record | None:
        meter.calls += 1
        async with lookups.in_flight:
            try:
                body = await objects.get(bucket, key)
            except ClientError as error:
                if error.response["Error"]["Code"] in {"NoSuchKey", "404", "NotFound"}:
                    return None  # deleted since the listing
                raise
        try:
            return valid_record(json.loads(body))
        except ValueError:
            return None

    read_all = await asyncio.gather(*(read(key) for key in wanted))
    return [record for record in read_all if record is not None]


def valid_record(data: object) -> Record | None:
    """`data` as a model record if it is one (a card's summary, `seen_at`), else None."""
    if not isinstance(data, Mapping):
        return None
    name, version, labels = data.get("name"), data.get("version"), data.get("labels")
    shape = data.get("input")
    seen_at = data.get("seen_at")
    if not (
        isinstance(name, str)
        and NAME_PATTERN.fullmatch(name)
        and isinstance(version, str)
        and NAME_PATTERN.fullmatch(version)
        and isinstance(labels, int)
        and not isinstance(labels, bool)
        and labels > 0
        and data.get("output") in ("logits", "probabilities")
        and isinstance(shape, Mapping)
        and shape.get("layout") in ("NHWC", "NCHW")
        and shape.get("dtype") in ("uint8", "float32")
        and isinstance(shape.get("size"), int)
        and isinstance(seen_at, int | float)
    ):
        return None
    return {
        "name": name,
        "version": version,
        "labels": labels,
        "output": data["output"],
        "input": {"layout": shape["layout"], "dtype": shape["dtype"], "size": shape["size"]},
        "seen_at": float(seen_at),
    }


def gateway_model(settings: Settings) -> ModelEntry | None:
    """The gateway's IRAS_MODEL when it is a built-in model: its card needs no files."""
    if settings.model_name not in BUILTIN_MODELS:
        return None
    return resolve_model(settings.model_name, settings.model_weights)


def listing(records: Iterable[Record], configured: ModelEntry | None) -> dict[str, Any]:
    """The body of `GET /v1/models`: one entry per name and version, sorted."""
    merged: dict[tuple[str, str], Record] = {}
    for record in records:
        merged[(record["name"], record["version"])] = {**record, "sources": ["workers"]}
    if configured is not None:
        card = configured.card
        key = (card.name, card.version)
        if key in merged:
            merged[key]["sources"].append("gateway")
        else:
            merged[key] = {**card.summary(configured.labels_count), "sources": ["gateway"]}
    return {"models": [merged[key] for key in sorted(merged)]}
