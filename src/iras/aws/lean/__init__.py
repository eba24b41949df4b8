"""The AWS calls on every image's path, made without botocore's client machinery.

Each image costs about ten AWS calls between gateway and worker (store, queue, receive,
read, two result writes, reply, deletes), and through aiobotocore each call costs
~2.5 ms of client CPU before any byte moves: parameter validation, a dozen event
handlers, endpoint rules, checksums, serialising and parsing through the service model.
That is more than the model's ~16 ms per image spent on bookkeeping. Made here on a
small HTTP/1.1 client of IRAS's own (`http1`), signed by a SigV4 signer checked against
botocore's, the same calls cost ~0.2 ms: `S3Objects` (the `ObjectStore` of
`iras.aws.types`: PutObject, GetObject, DeleteObject, ListObjectsV2) and `SqsMessages`
(its `MessageQueue`: the message calls of SQS's JSON protocol).

Every other call (provisioning, teardown, queue management) is made on botocore's full
clients; `iras.aws.boto` offers the same two interfaces on botocore, for what this path
does not serve (see `iras.aws.choice`). The calls here fail as botocore's do:
`ClientError` carrying the service's error code for an error answer,
`EndpointConnectionError` / `ConnectTimeoutError` / `ReadTimeoutError` when the endpoint
cannot be reached. They retry as botocore's standard mode does, decided by botocore's
own retry conditions, quota and backoff (`retries`), follow S3's redirect to a bucket's
region as botocore does (`s3`), and hand botocore's client what they do not implement
(`fallback`).
"""

from iras.aws.lean.s3 import Endpoint, S3Objects
from iras.aws.lean.signed_http import LeanClient, SignedHttp
from iras.aws.lean.sqs import SqsMessages

__all__ = ["Endpoint", "LeanClient", "S3Objects", "SignedHttp", "SqsMessages"]
