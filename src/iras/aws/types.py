"""What IRAS asks of AWS, as types: an object store, a message queue, and botocore's clients.

IRAS makes its per-image calls through two small interfaces, each with two
implementations chosen at start (`iras.aws.clients.open_clients`, setting `aws_client`):
the lean signed path of `iras.aws.lean`, cheap per call, and `iras.aws.boto` on
aioboto3, for configurations the lean path does not serve (a proxy, FIPS endpoints).
Both fail the same way, as botocore does: `botocore.exceptions.ClientError` carrying the
service's error code for an error answer (`NoSuchKey`, `NoSuchBucket`,
`AWS.SimpleQueueService.NonExistentQueue`), botocore's connection errors when the
endpoint cannot be reached (see `iras.aws.errors`).

Everything else (provisioning, teardown, queue management, the fleet on EC2) is made on
botocore's full clients, typed `BotocoreClient`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

#: An aioboto3 client (S3, SQS, EC2). They are generated at run time from the service
#: model and carry no static types: this alias is the one place that says so.
BotocoreClient = Any


class ObjectStore(Protocol):
    """S3's objects: whole bodies in and out, by bucket and key."""

    async def put(
        self, bucket: str, key: str, body: bytes, content_type: str = "binary/octet-stream"
    ) -> None:
        """Store `body` under `key` (PutObject), replacing what was there."""
        ...

    async def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes (GetObject); a missing key raises `ClientError` `NoSuchKey`."""
        ...

    async def delete(self, bucket: str, key: str) -> None:
        """Delete the object (DeleteObject); a key that does not exist is no error."""
        ...

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under `prefix`, in S3's order (ListObjectsV2, all pages)."""
        ...


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A received SQS message: its body, the handle that deletes or re-times it, its id,
    and how many times it has been received (this time included)."""

    body: str
    receipt_handle: str
    message_id: str
    receive_count: int
    #: Its String message attributes that the receive asked for (`attribute_names`).
    attributes: Mapping[str, str] = field(default_factory=dict)


class OutboundMessage(NamedTuple):
    """A message to send with String message attributes (a trace's context,
    `iras.telemetry.propagation`); a plain `str` is a message without any."""

    body: str
    attributes: Mapping[str, str]


class QueueDepth(NamedTuple):
    """A queue's messages as SQS approximates them: waiting, and received but not deleted."""

    visible: int
    in_flight: int


class MessageQueue(Protocol):
    """SQS's message calls, on any queue by URL.

    The batch calls take any number of entries and make one call per ten (the most SQS
    takes), concurrently; a batch call can succeed for some entries and fail for others,
    so each returns the indexes of the entries that failed, sorted, and the caller
    decides (a message not deleted is simply delivered again).
    """

    async def send_batch(
        self, queue_url: str, bodies: Sequence[str | OutboundMessage]
    ) -> list[int]:
        """Send `bodies`, each a body or a body with attributes (SendMessageBatch); the
        indexes of those not sent."""
        ...

    async def receive(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        wait_s: int | None = None,
        visibility_timeout_s: int | None = None,
        attribute_names: Sequence[str] = (),
    ) -> list[QueueMessage]:
        """Up to `max_messages` (1 to 10) messages (ReceiveMessage), long-polling up to
        `wait_s`, hidden from other receivers for `visibility_timeout_s`; None leaves
        either to the queue's own attributes. `attribute_names`: the String message
        attributes to bring (`QueueMessage.attributes`); none asks for none."""
        ...

    async def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> list[int]:
        """Delete messages by receipt handle (DeleteMessageBatch); the indexes not deleted."""
        ...

    async def change_visibility_batch(
        self, queue_url: str, receipt_handles: Sequence[str], timeout_s: int
    ) -> list[int]:
        """Hide held messages for `timeout_s` more (ChangeMessageVisibilityBatch; 0 hands
        them back at once); the indexes not changed."""
        ...

    async def depth(self, queue_url: str) -> QueueDepth:
        """The queue's visible and in-flight messages (GetQueueAttributes)."""
        ...
