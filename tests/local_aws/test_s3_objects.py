"""The embedded AWS's S3 object fast path answers what moto answers, and only what it may.

In-process tests call the fast path and moto's own handler (`S3Objects.fallback`) with
the same requests and compare the answers byte for byte (but for request ids and the
second an object was written); a server thread in this process shows that IRAS's lean
client really takes the fast path; the rest run against the real embedded AWS.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aioboto3
import pytest
from botocore.exceptions import ClientError
from werkzeug.test import EnvironBuilder

from iras.aws import AwsClients, open_clients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.local_aws import CALLS_PATH
from iras.local_aws.dispatch import FastDispatch
from iras.local_aws.s3_objects import S3Objects
from iras.local_aws.server import build_app

BUCKET = "fast-objects"
BODY = b"hello, fast path"
HOST = "127.0.0.1:4566"
SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=iras-local/20260101/us-east-1/s3/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
    "X-Amz-Date": "20260101T000000Z",
}
#: What IRAS's lean client sends (aiohttp adds the Accept headers).
LEAN_PUT = {
    "Content-Type": "image/jpeg",
    "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}
LEAN_GET = {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Accept": "*/*"}
#: What botocore 1.40 sends: a CRC32 of the body, and a request for it back on a GET.
BOTOCORE = {
    "User-Agent": "aiobotocore/2.25.1 botocore/1.40.61",
    "amz-sdk-invocation-id": "0c35af5a-e840-4e14-a4b4-22e51ba923f0",
    "amz-sdk-request": "attempt=1",
    "X-Amz-Content-SHA256": "7e33ae3f1e88ddf3291109cc366b12dcd8bf8fe77bec53009f200a76e4649c07",
    "Accept-Encoding": "identity",
}
BOTOCORE_PUT = {
    **BOTOCORE,
    "Content-Type": "image/png",
    "x-amz-sdk-checksum-algorithm": "CRC32",
    "x-amz-checksum-crc32": base64.b64encode(zlib.crc32(BODY).to_bytes(4, "big")).decode(),
}
BOTOCORE_GET = {**BOTOCORE, "x-amz-checksum-mode": "ENABLED"}
#: Keys that need percent-encoding (as the lean client and botocore encode them).
AWKWARD_KEYS = ["plain.jpg", "inputs/with space.jpg", "a+b=c&d%e", "ü/€/😀", "tilde~(x)!*'"]

Answer = tuple[str, list[tuple[str, str]], bytes]


def call(app: Any, method: str, path: str, body: bytes = b"", **headers: Any) -> Answer:
    """`app`'s answer to a request as werkzeug's server would hand it over."""
    host = headers.pop("host", HOST)
    sent = {**SIGNED, **headers.pop("headers", {}), "Host": host}
    sent = {name: value for name, value in sent.items() if value is not None}
    environ = EnvironBuilder(method=method, path=path, data=body, headers=sent).get_environ()
    environ["RAW_URI"] = path  # werkzeug's server: the request line's path, still encoded
    started: list[Any] = []
    chunks = app(environ, lambda status, headers, exc_info=None: started.extend([status, headers]))
    return started[0], started[1], b"".join(chunks)


def comparable(answer: Answer) -> Answer:
    """An answer without what differs between two calls: request ids, the write's time."""
    status, headers, body = answer
    kept = [
        (name.lower(), "<time>" if name.lower() == "last-modified" else value)
        for name, value in headers
        if name.lower() != "x-amzn-requestid"
    ]
    return status, kept, re.sub(rb"<RequestId>[^<]*</RequestId>", b"", body)


@pytest.fixture(scope="module")
def dispatch() -> FastDispatch:
    app = build_app()
    status, _, _ = call(app, "PUT", f"/{BUCKET}")
    assert status == "200 OK"
    return app


@pytest.fixture
def objects(dispatch: FastDispatch) -> S3Objects:
    s3 = dispatch.service_app("s3")
    assert isinstance(s3, S3Objects)  # moto 5.2.5: the fast path is on
    return s3


def object_path(key: str, bucket: str = BUCKET) -> str:
    return f"/{bucket}/{quote(key, safe='/~')}"


@pytest.mark.parametrize("key", AWKWARD_KEYS)
@pytest.mark.parametrize(
    ("put_headers", "get_headers"), [(LEAN_PUT, LEAN_GET), (BOTOCORE_PUT, BOTOCORE_GET)]
)
def test_the_fast_path_answers_what_moto_answers(
    objects: S3Objects, key: str, put_headers: dict[str, str], get_headers: dict[str, str]
) -> None:
    path = object_path(key)
    moto_put = call(objects.fallback, "PUT", path, BODY, headers=put_headers)
    moto_get = call(objects.fallback, "GET", path, headers=get_headers)
    before = Counter(objects.served)

    fast_put = call(objects, "PUT", path, BODY, headers=put_headers)
    fast_get = call(objects, "GET", path, headers=get_headers)
    moto_get_of_fast_put = call(objects.fallback, "GET", path, headers=get_headers)

    assert objects.served - before == Counter({"PUT": 1, "GET": 1})
    assert comparable(fast_put) == comparable(moto_put)
    assert comparable(fast_get) == comparable(moto_get) == comparable(moto_get_of_fast_put)
    assert fast_get[2] == BODY
    assert dict(fast_get[1])["content-type"] == put_headers["Content-Type"]


#: Requests the fast path leaves to moto: (method, path, headers, body, host).
LEFT_TO_MOTO = {
    "range": ("GET", "/{b}/k", {"Range": "bytes=0-4"}, b"", HOST),
    "query string": ("GET", "/{b}/k?response-content-type=text/plain", {}, b"", HOST),
    "conditional": ("GET", "/{b}/k", {"If-Match": '"nope"'}, b"", HOST),
    "missing key, XML to escape": ("GET", "/{b}/never&written", {}, b"", HOST),
    "missing bucket get": ("GET", "/no-such-bucket-here/k", {}, b"", HOST),
    "missing bucket put": ("PUT", "/no-such-bucket-here/k", {}, BODY, HOST),
    "head": ("HEAD", "/{b}/k", {}, b"", HOST),
    "metadata": ("PUT", "/{b}/k", {"x-amz-meta-colour": "blue"}, BODY, HOST),
    "tagging": ("PUT", "/{b}/k", {"x-amz-tagging": "a=b"}, BODY, HOST),
    "content-md5": ("PUT", "/{b}/k", {"Content-MD5": "Pd9dJCdI7qCuz8YXcEr1Bg=="}, BODY, HOST),
    "form body": (
        "PUT",
        "/{b}/k",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"a=b",
        HOST,
    ),
    "checksum to compute": ("PUT", "/{b}/k", {"x-amz-sdk-checksum-algorithm": "CRC32"}, BODY, HOST),
    "virtual-hosted": ("GET", "/k", {}, b"", "{b}.s3.amazonaws.com"),
    "double slash": ("PUT", "/{b}/a//b", {}, BODY, HOST),
    "anonymous": ("GET", "/{b}/k", {"Authorization": None}, b"", HOST),
    "aws-chunked": (
        "PUT",
        "/{b}/k",
        {
            "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "3",
            "x-amz-trailer": "x-amz-checksum-crc32",
        },
        b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n",
        HOST,
    ),
}


@pytest.mark.parametrize("case", LEFT_TO_MOTO)
def test_anything_else_gets_motos_own_answer(objects: S3Objects, case: str) -> None:
    method, path, headers, body, host = LEFT_TO_MOTO[case]
    path, host = path.format(b=BUCKET), host.format(b=BUCKET)
    call(objects.fallback, "PUT", f"/{BUCKET}/k", BODY, headers=LEAN_PUT)
    before = Counter(objects.served)

    through_fast_path = call(objects, method, path, body, headers=headers, host=host)
    call(objects.fallback, "PUT", f"/{BUCKET}/k", BODY, headers=LEAN_PUT)  # as it was
    moto_itself = call(objects.fallback, method, path, body, headers=headers, host=host)

    assert objects.served == before  # not one answered by the fast path
    assert comparable(through_fast_path) == comparable(moto_itself)


def test_errors_are_motos(objects: S3Objects) -> None:
    status, _, body = call(objects, "GET", f"/{BUCKET}/never-written")
    assert (status, b"<Code>NoSuchKey</Code>" in body) == ("404 NOT FOUND", True)
    status, _, body = call(objects, "PUT", "/no-such-bucket-here/k", BODY, headers=LEAN_PUT)
    assert (status, b"<Code>NoSuchBucket</Code>" in body) == ("404 NOT FOUND", True)
    status, _, body = call(objects, "GET", "/no-such-bucket-here/k", headers=LEAN_GET)
    assert (status, b"<Code>NoSuchBucket</Code>" in body) == ("404 NOT FOUND", True)


@pytest.mark.parametrize("headers", [LEAN_GET, BOTOCORE_GET])
@pytest.mark.parametrize("key", ["cache/m/1/int8/ab12.json", "ü/€/never-😀", "a&b<c>.json"])
def test_a_missing_key_is_answered_as_moto_answers(
    objects: S3Objects, headers: dict[str, str], key: str
) -> None:
    """The result cache asks for an entry of every new image: that 404 is the fast
    path's, the same as moto's (a key that XML must escape is still moto's to answer)."""
    path = object_path(key)
    before = Counter(objects.served)
    through_fast_path = call(objects, "GET", path, headers=headers)
    moto_itself = call(objects.fallback, "GET", path, headers=headers)
    assert comparable(through_fast_path) == comparable(moto_itself)
    assert through_fast_path[0] == "404 NOT FOUND"
    escaped = any(char in key for char in "&<>")
    assert objects.served - before == (Counter() if escaped else Counter({"404 NOT FOUND": 1}))


def test_versioned_buckets_are_left_to_moto(dispatch: FastDispatch, objects: S3Objects) -> None:
    bucket = "fast-objects-versioned"
    assert call(dispatch, "PUT", f"/{bucket}")[0] == "200 OK"
    versioning = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
    assert call(dispatch, "PUT", f"/{bucket}?versioning", versioning)[0] == "200 OK"
    before = Counter(objects.served)

    put = call(objects, "PUT", f"/{bucket}/k", BODY, headers=LEAN_PUT)
    got = call(objects, "GET", f"/{bucket}/k", headers=LEAN_GET)

    assert objects.served == before
    version = dict(put[1])["x-amz-version-id"]
    assert (got[2], dict(got[1])["x-amz-version-id"]) == (BODY, version)


def test_iam_authorisation_is_left_to_moto(
    objects: S3Objects, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import settings as moto_settings

    # Finite: moto counts calls towards checking them against IAM (here never reached).
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 10**9)
    before = Counter(objects.served)
    assert call(objects, "PUT", f"/{BUCKET}/iam", BODY, headers=LEAN_PUT)[0] == "200 OK"
    assert call(objects, "GET", f"/{BUCKET}/iam", headers=LEAN_GET)[2] == BODY
    assert objects.served == before


def test_another_moto_runs_without_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from iras.local_aws import speedups

    monkeypatch.setattr(speedups, "PATCHED_MOTO_VERSION", "0.0.0")
    assert not isinstance(build_app().service_app("s3"), S3Objects)


# --- IRAS's own clients, over HTTP ---------------------------------------------------------


def counted_calls(endpoint: str) -> Counter[str]:
    with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as answer:
        counts: dict[str, int] = json.load(answer)
    return Counter(counts)


async def test_the_lean_clients_calls_take_the_fast_path(
    in_process_aws: tuple[str, FastDispatch],
) -> None:
    endpoint, app = in_process_aws
    async with open_clients(Settings(endpoint_url=endpoint, aws_client="lean")) as aws:
        await aws.s3.create_bucket(Bucket="lean-fast-path")
        s3 = app.service_app("s3")
        assert isinstance(s3, S3Objects)
        before, calls_before = Counter(s3.served), await asyncio.to_thread(counted_calls, endpoint)
        for key in AWKWARD_KEYS:
            await aws.objects.put("lean-fast-path", key, BODY, content_type="image/jpeg")
            assert await aws.objects.get("lean-fast-path", key) == BODY
        made = await asyncio.to_thread(counted_calls, endpoint) - calls_before

    n = len(AWKWARD_KEYS)
    assert s3.served - before == Counter({"PUT": n, "GET": n})
    assert made == Counter({"s3:PutObject": n, "s3:GetObject": n})  # still counted


# --- on the real embedded AWS: objects read back alike whichever path wrote them ------------


@pytest.fixture
async def botocore_s3(settings: Settings) -> AsyncIterator[Any]:
    """A plain botocore S3 client: checksum headers and all."""
    session = aioboto3.Session()
    async with session.client(
        "s3", endpoint_url=settings.endpoint_url, region_name=settings.region
    ) as client:
        yield client


@pytest.mark.parametrize("key", AWKWARD_KEYS)
async def test_objects_read_back_alike_through_both_paths(
    aws: AwsClients, resources: Resources, botocore_s3: Any, key: str
) -> None:
    bucket = resources.input_bucket
    lean_key, botocore_key = f"lean/{key}", f"botocore/{key}"
    await aws.objects.put(bucket, lean_key, BODY, content_type="image/jpeg")
    await botocore_s3.put_object(
        Bucket=bucket, Key=botocore_key, Body=BODY, ContentType="image/png"
    )

    for written, content_type in ((lean_key, "image/jpeg"), (botocore_key, "image/png")):
        head = await botocore_s3.head_object(Bucket=bucket, Key=written)
        full = await botocore_s3.get_object(Bucket=bucket, Key=written)
        async with full["Body"] as stream:
            assert await stream.read() == BODY
        assert await aws.objects.get(bucket, written) == BODY
        for view in (head, full):
            assert (view["ETag"], view["ContentType"]) == (head["ETag"], content_type)
            assert view["ContentLength"] == len(BODY)
        assert head["LastModified"] == full["LastModified"]
    botocore_put = await botocore_s3.head_object(
        Bucket=bucket, Key=botocore_key, ChecksumMode="ENABLED"
    )
    assert botocore_put["ChecksumCRC32"]  # botocore's checksum kept, as moto keeps it


async def test_ranges_and_query_strings_still_answered(
    aws: AwsClients, resources: Resources, botocore_s3: Any
) -> None:
    bucket = resources.input_bucket
    await aws.objects.put(bucket, "ranged", BODY, content_type="image/jpeg")
    ranged = await botocore_s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=0-4")
    async with ranged["Body"] as stream:
        assert await stream.read() == BODY[:5]
    retyped = await botocore_s3.get_object(
        Bucket=bucket, Key="ranged", ResponseContentType="text/plain"
    )
    assert retyped["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as missing:
        await botocore_s3.get_object(Bucket=bucket, Key="never-written")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
