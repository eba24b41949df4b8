"""S3's region redirect followed as botocore follows it, and what the lean path cannot do
handed to botocore's client (`fallback`), only where making the call twice is harmless."""

from __future__ import annotations

import re
from collections.abc import Callable

import botocore.session
import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from iras.aws import AwsClients
from iras.aws.boto import BotoMessages, BotoObjects
from iras.aws.lean import Endpoint, S3Objects, SqsMessages
from iras.aws.lean.fallback import UnreadableAnswer
from iras.aws.lean.http1 import Http1Client
from iras.config import Settings
from iras.infra.provision import Resources
from tests.aws.lean.scripted import Script, signed_http

#: The region of a SigV4 Authorization header's credential scope.
SCOPE_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/s3/aws4_request")

Handler = Callable[[web.Request], web.StreamResponse]


def answering(
    regions: list[str], status: int = 200, headers: dict[str, str] | None = None, body: str = ""
) -> Handler:
    """An answer that notes the region the request was signed for."""

    def handle(request: web.Request) -> web.StreamResponse:
        match = SCOPE_REGION.search(request.headers.get("Authorization", ""))
        regions.append(match[1] if match else "?")
        return web.Response(status=status, headers=headers, text=body)

    return handle


def lean_s3(url: str, http: Http1Client, fallback: BotoObjects | None = None) -> S3Objects:
    return S3Objects(signed_http(http, "s3"), Endpoint(url, path_style=True), fallback)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (
            301,
            {"x-amz-bucket-region": "eu-west-1"},
            "<Error><Code>PermanentRedirect</Code></Error>",
        ),
        (307, {"x-amz-bucket-region": "eu-west-1"}, ""),
        (
            400,
            {},
            "<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>",
        ),
    ],
    ids=["301 header", "307 bare", "400 region in body"],
)
async def test_a_bucket_in_another_region_is_followed_and_remembered(
    scripted: tuple[str, Script, list[str]],
    http_session: Http1Client,
    status: int,
    headers: dict[str, str],
    body: str,
) -> None:
    url, script, _ = scripted
    regions: list[str] = []
    script += [answering(regions, status, headers, body), answering(regions)]
    s3 = lean_s3(url, http_session)
    await s3.put("far-bucket", "k", b"x")
    assert regions == ["us-east-1", "eu-west-1"]  # asked again, signed for the bucket's region
    script += [answering(regions), answering(regions, body="<x/>")]
    await s3.get("far-bucket", "k")
    await s3.list_keys("far-bucket")
    assert regions[2:] == ["eu-west-1", "eu-west-1"]  # straight there from then on


async def test_a_second_redirect_in_a_row_is_an_error_not_a_loop(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, _ = scripted
    regions: list[str] = []
    script += [answering(regions, 301, {"x-amz-bucket-region": "eu-west-1"})]
    script += [answering(regions, 301, {"x-amz-bucket-region": "ap-south-1"})]
    with pytest.raises(ClientError):
        await lean_s3(url, http_session).get("b-1", "k")
    assert regions == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize("region", ["eu-west-1", "us-west-2", "cn-north-1"])
def test_the_regions_endpoint_is_botocores(region: str) -> None:
    """On AWS a redirect moves the call to S3's host of the bucket's region, the one
    botocore's endpoint rules give a client of that region."""
    botocore_client = botocore.session.get_session().create_client(
        "s3", region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
    )
    home = "https://s3.amazonaws.com.cn" if region.startswith("cn-") else "https://s3.amazonaws.com"
    moved = Endpoint(home, path_style=False).in_region(region)
    assert moved is not None and moved.url == botocore_client.meta.endpoint_url
    assert Endpoint("https://storage.example", path_style=False).in_region(region) is None


@pytest.mark.both_aws_clients
async def test_an_unreadable_listing_is_asked_of_botocore(
    scripted: tuple[str, Script, list[str]],
    http_session: Http1Client,
    aws: AwsClients,
    resources: Resources,
    settings: Settings,
) -> None:
    """A listing answered with a proxy's page: the same call on botocore (here on the
    embedded AWS, where the object is), since listing twice is harmless."""
    url, script, seen = scripted
    bucket = settings.input_bucket
    await aws.s3.put_object(Bucket=bucket, Key="inputs/a.jpg", Body=b"x")
    script.append(lambda request: web.Response(text="<html>captive portal</html"))
    s3 = lean_s3(url, http_session, fallback=BotoObjects(aws.s3))
    assert await s3.list_keys(bucket, prefix="inputs/") == ["inputs/a.jpg"]
    assert seen == ["GET"]


async def test_without_a_fallback_the_unreadable_answer_is_raised(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, script, _ = scripted
    script.append(lambda request: web.Response(text="not xml"))
    with pytest.raises(UnreadableAnswer):
        await lean_s3(url, http_session).list_keys("b-1")


async def test_access_point_buckets_go_to_botocore_unsent(
    scripted: tuple[str, Script, list[str]], http_session: Http1Client
) -> None:
    url, _, seen = scripted
    access_point = "arn:aws:s3:us-east-1:000000000000:accesspoint/images"
    with pytest.raises(ValueError, match="cannot address"):
        await lean_s3(url, http_session).get(access_point, "k")
    assert seen == []  # nothing was sent the lean way


async def test_unreadable_receive_goes_to_botocore_but_a_send_is_never_made_twice(
    scripted: tuple[str, Script, list[str]],
    http_session: Http1Client,
    aws: AwsClients,
    resources: Resources,
) -> None:
    """ReceiveMessage may be asked again; SendMessageBatch may not (its messages may be
    queued already): it raises `UnreadableAnswer`, and nothing is sent on botocore."""
    url, script, _ = scripted
    queue = resources.request_queue_url
    await aws.sqs.send_message(QueueUrl=queue, MessageBody="already there")
    sqs = SqsMessages(signed_http(http_session, "sqs"), url, fallback=BotoMessages(aws.sqs))
    script.append(lambda request: web.Response(text="<html>proxy</html>"))
    (message,) = await sqs.receive(queue, wait_s=1)
    assert message.body == "already there"
    await aws.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message.receipt_handle)

    script.append(lambda request: web.Response(text="[]"))
    with pytest.raises(UnreadableAnswer):
        await sqs.send_batch(queue, ["must not be sent twice"])
    left = await aws.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert left.get("Messages", []) == []
