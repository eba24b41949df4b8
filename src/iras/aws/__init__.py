"""Talking to AWS: the clients a process opens once, the interfaces of the per-image calls
and their two implementations, what failures look like, and retrying while AWS is away.

- `clients`: `open_clients(settings)`, the one place that creates AWS clients.
- `types`: `ObjectStore` and `MessageQueue`, what IRAS asks of S3 and SQS per image, and
  `BotocoreClient`, botocore's (untyped) full clients for the rest.
- `choice`: which implementation makes the per-image calls (`aws_client`).
- `lean`: those calls signed and sent without botocore's machinery (the default).
- `boto`: the same on botocore, for what the lean path does not serve.
- `queues`: SQS's message calls, ten entries a batch, shared by both implementations.
- `errors`: what an AWS call raises when AWS is away (`AWS_ERRORS`, `UNREACHABLE`).
- `retry`: retrying the loops that wait for AWS to come back.
"""

from iras.aws.clients import AwsClients, open_clients
from iras.aws.types import (
    BotocoreClient,
    MessageQueue,
    ObjectStore,
    OutboundMessage,
    QueueDepth,
    QueueMessage,
)

__all__ = [
    "AwsClients",
    "BotocoreClient",
    "MessageQueue",
    "ObjectStore",
    "OutboundMessage",
    "QueueDepth",
    "QueueMessage",
    "open_clients",
]
