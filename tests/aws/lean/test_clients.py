"""The lean S3 and SQS calls agree with botocore: same objects, same answers, same errors.

The tests on the real embedded AWS compare what the interfaces do with what botocore's
full client sees, and run on both implementations (`both_aws_clients`); the retry tests
use a small HTTP server that answers what the test tells it to.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import botocore.session
import pytest
from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from iras.aws import AwsClients
from iras.aws.lean import Endpoint, SqsMessages
from iras.aws.lean.http1 import Http1Client
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.infra.provision import Resources
from tests.aws.lean.scripted import Script, lean_s3, ok, s3_error, signed_http

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"

#: Keys that need percent-encoding, and one that must stay as it is.
AWKWARD_KEYS = [
    "plain",
    "with space/and ü.txt",
    "a+b=c&d?e#f",
    "tilde~dash-dot.underscore_",
    "x/y/z",
]


@pytest.mark.both_aws_clients
@pytest.mark.parametrize("key", AWKWARD_KEYS)
async def test_put_then_get_matches_botocore(
    aws: AwsClients, resources: Resources, settings: Settings, key: str
) -> None:
    bucket = settings.input_bucket
    body = f"bytes of {key}".encode()
    await aws.objects.put(bucket, key, body, content_type="image/png")
    botocore_view = await aws.s3.head_object(Bucket=bucket, Key=key)  # the full client
    assert botocore_view["ContentLength"] == len(body)
    assert botocore_view["ContentType"] == "image/png"
    assert await aws.objects.get(bucket, key) == body
    assert await aws.objects.list_keys(bucket) == [key]
    await aws.objects.delete(bucket, key)
    assert await aws.objects.list_keys(bucket) == []


@pytest.mark.both_aws_clients
async def test_missing_object_and_bucket_fail_as_botocore_does(
    aws: AwsClients, resources: Resources, settings: Settings
) -> None:
    with pytest.raises(ClientError) as missing_key:
        await aws.objects.get(settings.input_bucket, "never-written")
    assert missing_key.value.response["Error"]["Code"] == "NoSuchKey"
    assert missing_key.value.operation_name == "GetObject"
    with pytest.raises(ClientError) as missing_bucket:
        await aws.objects.put("iras-no-such-bucket", "k", b"x")
    assert missing_bucket.value.response["Error"]["Code"] == "NoSuchBucket"


@pytest.mark.both_aws_clients
async def test_sqs_messages_round_trip_like_botocore(aws: AwsClients, resources: Resources) -> None:
    url = resources.request_queue_url
    assert await aws.messages.send_batch(url, [f"m{i}" for i in range(3)]) == []
    messages = await aws.messages.receive(url, max_messages=10, wait_s=1)
    assert sorted(m.body for m in messages) == ["m0", "m1", "m2"]
    assert all(m.receive_count == 1 and m.message_id for m in messages)
    handles = [m.receipt_handle for m in messages]
    assert await aws.messages.change_visibility_batch(url, handles[:1], 0) == []
    (again,) = await aws.messages.receive(url, wait_s=1, visibility_timeout_s=30)
    assert again.body == messages[0].body and again.receive_count == 2
    assert await aws.messages.delete_batch(url, [again.receipt_handle, *handles[1:]]) == []
    depth = await aws.sqs.get_queue_attributes(  # the full client, for what it sees
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"


@pytest.mark.both_aws_clients
async def test_missing_queue_has_botocores_error_code(
    aws: AwsClients, resources: Resources
) -> None:
    gone = resources.request_queue_url.rsplit("/", 1)[0] + "/iras-no-such-queue"
    with pytest.raises(ClientError) as interface_error:
        await aws.messages.send_batch(gone, ["x"])
    with pytest.raises(ClientError) as botocore_error:
        await aws.sqs.get_queue_attributes(QueueUrl=gone, AttributeNames=["All"])
    code = interface_error.value.response["Error"]["Code"]
    assert code in MISSING_QUEUE_CODES
    assert code == botocore_error.value.response["Error"]["Code"]


@pytest.mark.parametrize(
    ("region", "bucket", "key"),
    [
        ("us-east-1", "iras-input", "inputs/abc"),
        ("eu-west-1", "iras-input", "with space/ü+x"),
        ("eu-west-1", "dotted.bucket.name", "k"),
        ("ap-southeast-2", "iras-output", "results/a~b c.json"),
    ],
)
def test_aws_addressing_matches_botocore(region: str, bucket: str, key: str) -> None:
    """On AWS itself (no endpoint configured) the URL is the one botocore sends to."""
    client = botocore.session.get_session().create_client(
        "s3",
        region_name=region,
        aws_access_key_id="placeholder",
        aws_secret_access_key="placeholder",
    )
    sent: list[str] = []

    def capture(request: AWSPreparedRequest, **_: object) -> None:
        sent.append(request.url)
        raise CapturedError

    client.meta.events.register("before-send.s3.*", capture)
    with pytest.raises(CapturedError):
        client.get_object(Bucket=bucket, Key=key)
    with pytest.raises(CapturedError):
        client.list_objects_v2(Bucket=bucket, Prefix=key)
    endpoint = Endpoint(client.meta.endpoint_url.rstrip("/"), path_style=False)
    assert endpoint.object_url(bucket, key) == sent[0]
    assert endpoint.bucket_url(bucket, "list-type=2").partition("?")[0] == sent[1].partition("?")[0]


class CapturedError(Exception):
    """Stops botocore once the request it would send has been seen."""


# --- retries, against a server that answers what each test scripts (`scripted`) ---------


async def test_transient_answers_are_retried(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, seen = scripted
    script += [s3_error(503, "SlowDown"), s3_error(500, "InternalError"), ok]
    await lean_s3(url, http_session).put("b-1", "k", b"x")
    assert seen == ["PUT", "PUT", "PUT"]


async def test_the_path_sent_is_the_path_signed(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    """S3 checks the signature over the path it receives: not one byte may change on the
    way (yarl, left to itself, decodes '=', '&', '(' and more)."""
    url, script, _ = scripted
    received: list[str] = []

    def record(request: web.Request) -> web.StreamResponse:
        received.append(request.raw_path)
        return ok(request)

    key = "a+b=c&d?e#f (x)!*' ü~"
    script.append(record)
    await lean_s3(url, http_session).put("b-1", key, b"x")
    assert received == ["/b-1/" + quote(key, safe="/~")]


def listing(keys: list[str], token: str | None) -> Callable[[web.Request], web.StreamResponse]:
    """One page of ListObjectsV2, its keys URL-encoded as `encoding-type=url` asks."""
    contents = "".join(f"<Contents><Key>{quote_plus(key)}</Key></Contents>" for key in keys)
    more = (
        f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        if token
        else "<IsTruncated>false</IsTruncated>"
    )
    xml = f'<ListBucketResult xmlns="{S3_XMLNS}">{contents}{more}</ListBucketResult>'
    return lambda request: web.Response(text=xml, content_type="application/xml")


async def test_listing_follows_continuation_tokens_and_decodes_keys(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, _ = scripted
    queries: list[dict[str, str]] = []

    def recorded(
        answer: Callable[[web.Request], web.StreamResponse],
    ) -> Callable[[web.Request], web.StreamResponse]:
        def record(request: web.Request) -> web.StreamResponse:
            queries.append(dict(request.query))
            return answer(request)

        return record

    script += [recorded(listing(["a b", "ü+x/y"], "token/1=")), recorded(listing(["z"], None))]
    assert await lean_s3(url, http_session).list_keys("b-1", prefix="p/") == ["a b", "ü+x/y", "z"]
    first = {"encoding-type": "url", "list-type": "2", "prefix": "p/"}
    assert queries == [first, {**first, "continuation-token": "token/1="}]


async def test_permanent_answers_and_exhausted_attempts_raise(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, seen = scripted
    script += [s3_error(403, "AccessDenied")]
    with pytest.raises(ClientError) as denied:
        await lean_s3(url, http_session).get("b-1", "k")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert seen == ["GET"]  # not retried
    script += [s3_error(503, "SlowDown")] * 2
    with pytest.raises(ClientError) as slow:
        await lean_s3(url, http_session, attempts=2).get("b-1", "k")
    assert slow.value.response["Error"]["Code"] == "SlowDown"
    assert seen == ["GET", "GET", "GET"]


async def test_sqs_error_code_comes_from_the_query_error_header(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, _ = scripted
    script.append(
        lambda request: web.Response(
            status=400,
            text=json.dumps({"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no"}),
            headers={"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
        )
    )
    sqs = SqsMessages(signed_http(http_session, "sqs"), url)
    with pytest.raises(ClientError) as missing:
        await sqs.receive(f"{url}/123/q")
    assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert missing.value.response["Error"]["Message"] == "no"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_endpoint_raises_botocores_connection_error(
    http_session: Http1Client,
) -> None:
    s3 = lean_s3(f"http://127.0.0.1:{closed_port()}", http_session, attempts=2)
    with pytest.raises(EndpointConnectionError):
        await s3.get("b-1", "k")
    s3.retry_unreachable = False
    with pytest.raises(EndpointConnectionError):
        await s3.get("b-1", "k")


async def test_a_connection_cut_mid_answer_is_retried_then_reported(
    http_session: Http1Client,
) -> None:
    """A server that takes the request and hangs up: botocore's ConnectionClosedError,
    which is retried (a pooled connection the server closed is no outage)."""
    requests = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        s3 = lean_s3(f"http://127.0.0.1:{port}", http_session, attempts=2)
        s3.retry_unreachable = False  # does not apply: the connection was made
        with pytest.raises(ConnectionClosedError):
            await s3.get("b-1", "k")
    assert requests == 2
