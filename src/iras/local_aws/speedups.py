"""Fixes to moto 5.2.5's SQS that make its calls cheap at any queue depth.

Profiled under IRAS's load, moto spent most of an SQS call's CPU on three things:

- its clock: `unix_time_millis()` builds two datetimes (and imports `UTC`) per call,
  and every visibility check of every message calls it, several times per message per
  request (`Queue.messages`, `approximate_number_of_messages*`);
- `is_message_valid_based_on_retention_period`, called for every message a receive
  returns, which computes *all* queue attributes (three scans of the queue) to read one
  of them;
- `Queue.attributes` itself, computed for every message sent (to read one flag), which
  converts every attribute's CamelCase name to snake_case with regular expressions.

At a depth of 100 a ReceiveMessage of 10 cost ~260 ms of CPU and a SendMessageBatch of
10 ~75 ms; with these fixes ~5 ms each. The replacements return what the originals
return (the clock is `time.time()`, which the datetime arithmetic approximated), and
they are applied only to the moto version they were written against: another version
runs unpatched, just slower.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: The moto release whose internals these patches replace.
PATCHED_MOTO_VERSION = "5.2.5"

#: What the patches replaced, by name (for tests that compare the two).
ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    """Patch moto's SQS in this process (once); return whether the patches apply."""
    import moto

    # moto's internals, as `Any`: patching them is what this module is for.
    sqs_models: Any = importlib.import_module("moto.sqs.models")
    if moto.__version__ != PATCHED_MOTO_VERSION:
        log.warning(
            "moto %s is not %s: the embedded AWS runs without its speed-ups"
            " (SQS fixes, S3 object fast path)",
            moto.__version__,
            PATCHED_MOTO_VERSION,
        )
        return False
    if ORIGINALS:
        return True
    ORIGINALS.update(
        unix_time=sqs_models.unix_time,
        unix_time_millis=sqs_models.unix_time_millis,
        retention_check=sqs_models.SQSBackend.is_message_valid_based_on_retention_period,
        attributes=sqs_models.Queue.attributes,
    )
    sqs_models.unix_time = _fast_clock(sqs_models.unix_time, scale=1.0)
    sqs_models.unix_time_millis = _fast_clock(sqs_models.unix_time_millis, scale=1000.0)
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retention_check
    underscored = functools.lru_cache(maxsize=None)(sqs_models.camelcase_to_underscores)
    sqs_models.Queue.attributes = property(functools.partial(_queue_attributes, underscored))
    return True


def _fast_clock(
    original: Callable[[datetime.datetime | None], float], scale: float
) -> Callable[[datetime.datetime | None], float]:
    """`original`, but the current time (no argument) read straight from `time.time()`."""

    def now(dt: datetime.datetime | None = None) -> float:
        return original(dt) if dt is not None else time.time() * scale

    return now


def _retention_check(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's check, reading the one attribute it needs instead of all of them."""
    queue = backend.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > time.time())


def _queue_attributes(underscored: Callable[[str], str], queue: Any) -> dict[str, Any]:
    """moto's `Queue.attributes`, with each attribute's snake_case name converted once."""
    names = list(queue.BASE_ATTRIBUTES)
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {name: getattr(queue, underscored(name)) for name in names}
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return result
