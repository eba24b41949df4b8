"""Talking to AWS: the clients a process opens once, what their failures look like, the
batch calls on queues, retrying while AWS is away, and the lean signed path.

- `clients`: `open_clients(settings)`, the one place that creates AWS clients.
- `errors`: what an AWS call raises when AWS is away (`AWS_ERRORS`, `UNREACHABLE`).
- `queues`: SQS batch calls ten entries at a time, and queue depths.
- `retry`: jittered backoff for the loops that wait for AWS to come back.
- `lean`: the calls made for every image, signed and sent without botocore's machinery.
"""

from iras.aws.clients import AwsClient, AwsClients, open_clients

__all__ = ["AwsClient", "AwsClients", "open_clients"]
