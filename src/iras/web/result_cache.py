"""Results by image content and model: an image classified once is answered again without
the fleet.

Course graders, retrying clients and photo libraries send the same bytes again and again.
An entry's key is the SHA-256 of the image's bytes under the model's name, version and
precision (`ModelIdentity`), so that a new model, a new version of one, or the other
precision never answers with an old label. Entries live in memory (bounded, the least
recently used forgotten first, each kept as its result's JSON, ~0.6 KB) and in the state
bucket under `cache/<name>/<version>/<precision>/<sha256>.json`, where other gateways,
and this one after a restart, find them. Only results that classified the image are
kept: an error may be the moment's (an image gone from the bucket), and an upload that
met one deserves a fresh try when it comes again.

Single flight: while one upload of an image waits for its result, another upload of the
same bytes queues nothing; it follows the first one's flight (`fly`) and falls back to
queueing its own request when that flight ends without a result.

The cache never fails an upload: a bucket that cannot be read is a miss, one that cannot
be written is logged, and the image is classified as if there were no cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from iras.aws.errors import AWS_ERRORS
from iras.aws.types import ObjectStore
from iras.config import Settings
from iras.messages import CACHE_PREFIX
from iras.model.providers import CPU as CPU_PROVIDER
from iras.model.repository import resolve_model

log = logging.getLogger(__name__)

ResultJson = dict[str, Any]

#: The fields of a result that belong to its request, not to what the image is: a cached
#: answer takes them from the request it answers.
REQUEST_FIELDS = ("request_id", "job_id", "name")
#: The precision of a model that runs as it was exported (your own ONNX file).
AS_EXPORTED = "as-exported"


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """What makes a label: the model's name and version (its card's) and its precision."""

    name: str
    version: str
    precision: str

    @property
    def folder(self) -> str:
        """Where this model's entries live in the state bucket."""
        return f"{CACHE_PREFIX}{self.name}/{self.version}/{self.precision}/"

    def made(self, result: ResultJson) -> bool:
        """Whether `result` says this model made it (its name and version; results carry
        no precision, which the fleet takes from the same settings as this gateway)."""
        return result.get("model") == self.name and result.get("model_version") == self.version


def model_identity(settings: Settings) -> ModelIdentity:
    """The identity of the model the settings give the fleet (IRAS_MODEL, _WEIGHTS,
    _ENGINE, _PRECISION, IRAS_EXECUTION_PROVIDERS), as `load_configured` would run it: a
    built-in model runs in int8 only on ONNX Runtime's CPU provider, fp32 otherwise."""
    entry = resolve_model(settings.model_name, settings.model_weights)
    if not entry.builtin:
        precision = AS_EXPORTED
    elif settings.model_engine == "onnx" and settings.execution_providers == (CPU_PROVIDER,):
        precision = settings.model_precision
    else:
        precision = "fp32"
    return ModelIdentity(entry.card.name, entry.card.version, precision)


#: Images from this size on are hashed on a thread (hashlib lets go of the GIL), not on
#: the event loop: SHA-256 of 10 MiB takes ~10-20 ms.
HASH_ON_A_THREAD_BYTES = 1 << 20


def content_digest(image: bytes) -> str:
    """The key of an image's bytes: their SHA-256, in hex."""
    return hashlib.sha256(image).hexdigest()


async def content_digests(images: Sequence[bytes]) -> list[str]:
    """`content_digest` of each of `images`, the large ones off the event loop."""
    return [
        await asyncio.to_thread(content_digest, image)
        if len(image) >= HASH_ON_A_THREAD_BYTES
        else content_digest(image)
        for image in images
    ]


def answer_from(original: ResultJson, request: ResultJson) -> ResultJson:
    """The cached `original` as the answer to another request (`request`: its ids and
    name): everything the image and model decided (label, scores, model, worker, the
    original's timings), the request's own fields, and `"cached": true`."""
    answer = {key: value for key, value in original.items() if key not in REQUEST_FIELDS}
    return {**{key: request[key] for key in REQUEST_FIELDS}, **answer, "cached": True}


class ResultCache:
    """The entries in memory and in `bucket` of the model `identity` (module docstring)."""

    def __init__(
        self, objects: ObjectStore, bucket: str, identity: ModelIdentity, max_entries: int
    ) -> None:
        self._objects = objects
        self._bucket = bucket
        self.identity = identity
        self._max_entries = max_entries
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._flights: dict[str, asyncio.Future[ResultJson | None]] = {}

    def __len__(self) -> int:
        return len(self._memory)

    def key(self, digest: str) -> str:
        """The entry's key in the state bucket."""
        return f"{self.identity.folder}{digest}.json"

    async def find(self, digest: str) -> ResultJson | None:
        """The entry of `digest`, from memory or else from the bucket; None for a miss."""
        kept = self._memory.get(digest)
        if kept is None:
            kept = await self._read(digest)
            if kept is None:
                return None
            self._remember(digest, kept)
        else:
            self._memory.move_to_end(digest)
        found: ResultJson = json.loads(kept)
        return found

    def remembered(self, digests: Sequence[str]) -> int:
        """How many of `digests` have an entry in memory (without touching their order)."""
        return sum(1 for digest in digests if digest in self._memory)

    def fly(self, digest: str) -> asyncio.Future[ResultJson | None] | None:
        """The flight of `digest` under way, to follow; or None, and the caller now leads
        one, which it must end with `land` whatever happens."""
        flight = self._flights.get(digest)
        if flight is not None:
            return flight
        self._flights[digest] = asyncio.get_running_loop().create_future()
        return None

    def land(self, digest: str, result: ResultJson | None) -> None:
        """End the flight of `digest` with its result (None: it failed, or never came);
        its followers get it. A result that classified the image is kept in memory, and
        is the caller's to `store` in the bucket."""
        flight = self._flights.pop(digest, None)
        if result is not None and self.cacheable(result):
            self._remember(digest, _encoded(result))
        if flight is not None and not flight.done():
            flight.set_result(result if result is not None and self.cacheable(result) else None)

    def cacheable(self, result: ResultJson) -> bool:
        """Whether `result` may answer later uploads: it classified the image, with this
        cache's model."""
        return "label" in result and "error" not in result and self.identity.made(result)

    async def store(self, digest: str, result: ResultJson) -> None:
        """Write the entry of `digest` to the bucket (best effort: logged when it fails)."""
        if not self.cacheable(result):
            return
        try:
            await self._objects.put(
                self._bucket, self.key(digest), _encoded(result), content_type="application/json"
            )
        except AWS_ERRORS as error:
            log.warning("the result cache could not store %s: %s", digest[:12], error)

    async def _read(self, digest: str) -> bytes | None:
        try:
            data = await self._objects.get(self._bucket, self.key(digest))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                log.warning("the result cache could not read %s: %s", digest[:12], error)
            return None
        except AWS_ERRORS as error:
            log.warning("the result cache could not read %s: %s", digest[:12], error)
            return None
        try:
            entry = json.loads(data)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not self.cacheable(entry):
            log.warning("the result cache's entry %s is not a result: ignored", digest[:12])
            return None
        return bytes(data)

    def _remember(self, digest: str, data: bytes) -> None:
        self._memory[digest] = data
        self._memory.move_to_end(digest)
        while len(self._memory) > self._max_entries:
            self._memory.popitem(last=False)


def _encoded(result: ResultJson) -> bytes:
    """The entry of `result`: itself as its worker made it (a cached answer's flag off)."""
    original = {key: value for key, value in result.items() if key != "cached"}
    return json.dumps(original, ensure_ascii=False, separators=(",", ":")).encode()
