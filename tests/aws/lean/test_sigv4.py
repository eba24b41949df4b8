"""The lean SigV4 signer signs exactly as botocore does.

moto checks no signatures, so no test against the embedded AWS could catch a wrong one;
instead each request is signed by both signers at the same instant and every header
they add must be equal, byte for byte.
"""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from iras.aws.lean.sigv4 import UNSIGNED_PAYLOAD, SigV4Signer, payload_hash

NOW = datetime.datetime(2026, 11, 23, 1, 2, 3, tzinfo=datetime.UTC)

SQS_BODY = (
    b'{"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/000000000000/q", "MaxNumberOfMessages": 10}'
)

CASES = [
    # service, method, url, headers, body
    ("s3", "PUT", "http://127.0.0.1:4566/iras-input/inputs/abc", {"Content-Type": "image/jpeg"}, b"x" * 100),
    ("s3", "GET", "https://iras-input.s3.eu-west-1.amazonaws.com/with%20space/%C3%BC%2Bx", {}, None),
    ("s3", "PUT", "https://s3.eu-west-1.amazonaws.com/dotted.bucket/a~b/c.json", {"Content-Type": "application/json"}, b"{}"),
    ("s3", "GET", "http://localhost:80/b-1/k", {}, None),
    ("s3", "GET", "https://iras-output.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=with%20space%2F%C3%BC&encoding-type=url&continuation-token=ab%2Bc%3D", {}, None),
    ("s3", "GET", "http://127.0.0.1:4566/iras-output?prefix=&list-type=2&encoding-type=url", {}, None),
    ("s3", "DELETE", "http://127.0.0.1:4566/iras-input/inputs/abc", {}, None),
    ("sqs", "POST", "https://sqs.eu-west-1.amazonaws.com/", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ReceiveMessage"}, SQS_BODY),
    ("sqs", "POST", "http://127.0.0.1:4566/", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.SendMessageBatch"}, SQS_BODY),
]  # fmt: skip


def botocore_headers(
    service: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    token: str | None,
) -> dict[str, str]:
    credentials = Credentials("AKIDPLACEHOLDER", "placeholder/secret+key", token)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    if service == "s3":  # as botocore is told for unhashed bodies
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
        signer: SigV4Auth = S3SigV4Auth(credentials, service, "eu-west-1")
    else:
        signer = SigV4Auth(credentials, service, "eu-west-1")
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize(("service", "method", "url", "headers", "body"), CASES)
def test_signature_equals_botocores(
    service: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    token: str | None,
) -> None:
    content_hash = UNSIGNED_PAYLOAD if service == "s3" else payload_hash(body)
    ours = SigV4Signer(service, "eu-west-1").sign(
        method, url, headers, content_hash, "AKIDPLACEHOLDER", "placeholder/secret+key", token, NOW
    )
    assert ours == botocore_headers(service, method, url, headers, body, token)


def test_the_signing_key_follows_the_day_and_the_secret() -> None:
    signer = SigV4Signer("s3", "eu-west-1")
    url = "http://127.0.0.1:4566/b-1/k"

    def signature(secret: str, when: datetime.datetime) -> str:
        headers = signer.sign("GET", url, {}, UNSIGNED_PAYLOAD, "AKID", secret, None, when)
        return headers["Authorization"].rpartition("Signature=")[2]

    today = signature("one", NOW)
    assert signature("one", NOW) == today
    assert signature("two", NOW) != today  # refreshed credentials: a new key
    assert signature("one", NOW + datetime.timedelta(days=1)) != today
    assert signature("one", NOW) == today
