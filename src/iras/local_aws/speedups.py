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

And a little on a fourth: each received message's receipt handle, 185 letters drawn by
one `random.choice` call each (~0.1 ms per message), and each answer's request id, 52 more;
here both are random bytes mapped to the same alphabets (from the system's generator, as
the handles already were: moto's seedable one is for tests that seed it, and IRAS does not).

Then, per message, at IRAS's depths (tens of messages) and costs that grow with them:
`Queue.messages` and the three `ApproximateNumberOf*` counts read the clock twice per
message of the queue (here once per scan); `receive_message` deep-copies every message it
returns (here a shallow copy: the one change to the copy, filtering its message
attributes, assigns a new dict); and `Queue.delete_message` scans the queue twice, building
a list of every message's receipt handles as it goes (here one scan), and remembers every
deleted message's handles for as long as the process lives (here the last 50,000).

Two more are moto's per-call set-up, not SQS's alone. `BaseResponse.call_action` lists a
response class's methods with `inspect.getmembers` on every call (kept per class here:
classes do not change). And the answer goes through moto's generic serializer, which
walks botocore's output shape member by member through attribute pickers, about a
third of an SQS call's CPU: the hot calls' answers (`_PLAIN_ANSWERS`) are already the
JSON their shape describes, strings, numbers and lists of them, so they are dumped as
they are. An answer with anything else in it (binary or list message attributes, an
error) still goes through the serializer.

At a depth of 100 a ReceiveMessage of 10 cost ~260 ms of CPU and a SendMessageBatch of
10 ~75 ms; with the first fixes ~5 ms each, and with the per-message ones a cycle of
SendMessageBatch, ReceiveMessage and DeleteMessageBatch of 8 at a depth of ~50 costs
about half of what it did. The replacements return what the originals
return (the clock is `time.time()`, which the datetime arithmetic approximated), and
they are applied only to the moto version they were written against: another version
runs unpatched, just slower.
"""

from __future__ import annotations

import copy
import datetime
import functools
import importlib
import json
import logging
import os
import string
import time
from collections.abc import Callable, Iterator
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
    sqs_responses: Any = importlib.import_module("moto.sqs.responses")
    responses: Any = importlib.import_module("moto.core.responses")
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
        receipt_handle=sqs_models.generate_receipt_handle,
        method_names=responses.method_names_from_class,
        serialized=sqs_responses.SQSResponse.serialized,
        request_id=responses.gen_amzn_requestid_long,
        messages=sqs_models.Queue.messages,
        delayed_count=sqs_models.Queue.approximate_number_of_messages_delayed,
        not_visible_count=sqs_models.Queue.approximate_number_of_messages_not_visible,
        delete_message=sqs_models.Queue.delete_message,
        deepcopy=sqs_models.deepcopy,
    )
    sqs_models.unix_time = _fast_clock(sqs_models.unix_time, scale=1.0)
    sqs_models.unix_time_millis = _fast_clock(sqs_models.unix_time_millis, scale=1000.0)
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retention_check
    sqs_models.generate_receipt_handle = _receipt_handle
    responses.gen_amzn_requestid_long = _request_id
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    sqs_responses.SQSResponse.serialized = _serialized
    underscored = functools.lru_cache(maxsize=None)(sqs_models.camelcase_to_underscores)
    sqs_models.Queue.attributes = property(functools.partial(_queue_attributes, underscored))
    sqs_models.Queue.messages = property(_ready_messages)
    sqs_models.Queue.approximate_number_of_messages_delayed = property(_delayed_count)
    sqs_models.Queue.approximate_number_of_messages_not_visible = property(_not_visible_count)
    sqs_models.Queue.delete_message = _delete_message
    sqs_models.deepcopy = functools.partial(_copy_for_receive, sqs_models.Message)
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


#: moto's receipt handles: this many lowercase letters (`moto.sqs.utils`).
RECEIPT_HANDLE_LENGTH = 185
#: moto's request ids: this many letters and digits (`aws_headers`).
REQUEST_ID_LENGTH = 52


def _alphabet_table(alphabet: str) -> bytes:
    """A `bytes.translate` table sending each byte value to a letter of `alphabet`
    (not exactly uniform: these are unguessable-enough tokens, not keys)."""
    return bytes(ord(alphabet[value % len(alphabet)]) for value in range(256))


_LOWERCASE = _alphabet_table(string.ascii_lowercase)
_LETTERS_AND_DIGITS = _alphabet_table(string.ascii_letters + string.digits)


def _receipt_handle() -> str:
    """moto's `generate_receipt_handle`: as many lowercase letters, from random bytes."""
    return os.urandom(RECEIPT_HANDLE_LENGTH).translate(_LOWERCASE).decode("ascii")


def _request_id(headers: dict[str, Any] | None = None) -> str:
    """moto's `gen_amzn_requestid_long`: as many letters and digits, from random bytes,
    also set as the `x-amzn-requestid` of `headers` (a dict) as the original does."""
    request_id = os.urandom(REQUEST_ID_LENGTH).translate(_LETTERS_AND_DIGITS).decode("ascii")
    if isinstance(headers, dict):
        headers["x-amzn-requestid"] = request_id
    return request_id


def _ready_messages(queue: Any) -> list[Any]:
    """moto's `Queue.messages` (visible and not delayed), the clock read once per scan."""
    now = time.time() * 1000
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _delayed_count(queue: Any) -> int:
    """moto's `approximate_number_of_messages_delayed`, the clock read once."""
    now = time.time() * 1000
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible_count(queue: Any) -> int:
    """moto's `approximate_number_of_messages_not_visible`, the clock read once."""
    now = time.time() * 1000
    return sum(1 for m in queue._messages if not now > m.visible_at)


#: Receipt handles of deleted messages each queue remembers (moto keeps every one, which
#: grows by ~0.5 KB per message for as long as the embedded AWS runs).
DELETED_HANDLES_KEPT = 50_000


class RecentHandles:
    """The last `kept` receipt handles added, as the set moto's queue reads them: a
    second delete of a recent message is let be, as moto does; one from long ago (which
    IRAS never makes) is an invalid handle."""

    def __init__(self, handles: Any = (), kept: int = DELETED_HANDLES_KEPT) -> None:
        self._kept = kept
        self._handles: dict[str, None] = {}
        self.update(handles)

    def __contains__(self, handle: object) -> bool:
        return handle in self._handles

    def __len__(self) -> int:
        return len(self._handles)

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def update(self, handles: Any) -> None:
        for handle in handles:
            self._handles.pop(handle, None)
            self._handles[handle] = None
        while len(self._handles) > self._kept:
            del self._handles[next(iter(self._handles))]


def _delete_message(queue: Any, receipt_handle: str) -> None:
    """moto's `Queue.delete_message` in one scan: every message that ever had the handle
    goes, a recently deleted handle is let be, and one never given out is an error."""
    if not isinstance(queue.deleted_messages, RecentHandles):
        queue.deleted_messages = RecentHandles(queue.deleted_messages)
    if receipt_handle in queue.deleted_messages:
        return
    kept = []
    found = False
    for message in queue._messages:
        if message.receipt_handle == receipt_handle or (
            receipt_handle in message._old_receipt_handles
        ):
            found = True
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
        else:
            kept.append(message)
    if not found:
        from moto.sqs.exceptions import ReceiptHandleIsInvalid

        raise ReceiptHandleIsInvalid()
    queue._messages = kept


def _copy_for_receive(message_type: type, value: Any) -> Any:
    """`deepcopy` as moto's SQS models call it, but a message (the copy a receive
    answers with) copied shallowly: its only change, `_filter_message_attributes`,
    assigns a new attribute dict, and the answer only reads the copy."""
    if type(value) is message_type:
        return copy.copy(value)
    return copy.deepcopy(value)


#: SQS actions whose answers are plain JSON (`_plain`), answered without the serializer.
_PLAIN_ANSWERS = frozenset(
    {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"}
)
#: What moto's serializer answers the JSON protocol with.
_JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


def _serialized(response: Any, action_result: Any) -> Any:
    """moto's `BaseResponse.serialized` for SQS, the hot calls' plain answers dumped as
    they are: the same status, headers and JSON, but for the order of keys."""
    result = action_result.result
    plain = (
        response._get_action() in _PLAIN_ANSWERS
        and isinstance(result, dict)
        and _JSON_CONTENT_TYPE in response.headers.get("Content-Type", "")
        and _plain(result)
    )
    if not plain:
        return ORIGINALS["serialized"](response, action_result)
    headers = {"Content-Type": _JSON_CONTENT_TYPE, **response.response_headers}
    return 200, headers, json.dumps(_without_none(result))


def _plain(value: Any) -> bool:
    """Whether `value` is JSON as it is: strings, whole numbers, booleans, and lists and
    string-keyed dicts of them (bytes, floats, dates and objects need the serializer)."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


def _without_none(value: Any) -> Any:
    """`value` without the None members, which the serializer leaves out."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value
