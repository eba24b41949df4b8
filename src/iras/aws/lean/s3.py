"""S3's object calls (`ObjectStore`: PutObject, GetObject, DeleteObject, ListObjectsV2) on
`SignedHttp`; buckets themselves are managed on botocore.

Addressing follows botocore's: path-style on a configured endpoint (the embedded AWS,
MinIO), virtual-hosted on AWS for bucket names that can be a host name label. Keys are
percent-encoded as botocore encodes them (all but unreserved characters and `/`), which
is also the path the signature covers. Left out on purpose: payload checksums (TCP and
TLS guard the bytes; botocore's CRC32 is a pass over every image) and every parameter
but bucket, key, body and content type.

A bucket in another region than the client's answers with a redirect (301
PermanentRedirect, 307, or 400 AuthorizationHeaderMalformed) naming its region in
`x-amz-bucket-region` or in the error; as botocore does, the call is made once more
there, signed for that region, and the bucket's region is remembered for later calls.
What this module does not implement (access point and directory buckets, a redirect
without a region, an answer it cannot read) goes to the botocore client, `fallback`
(`iras.aws.lean.fallback`): every call here is safe to make twice.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

from botocore.exceptions import ClientError

from iras.aws.lean.fallback import UnreadableAnswer, Unsupported, fallback_for
from iras.aws.lean.http1 import Answer
from iras.aws.lean.signed_http import LeanClient, SignedHttp

#: Bucket names that can be a host name label (no dots, so TLS wildcards match).
_DNS_COMPATIBLE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
#: S3's own hosts, `s3.amazonaws.com` or `s3.<region>.amazonaws.com` (and the China
#: partition's `.com.cn`), whose region part a redirect replaces.
_AWS_HOST = re.compile(r"^s3(?:[.-](?P<region>[a-z0-9-]+))?\.(?P<suffix>amazonaws\.com(?:\.cn)?)$")
#: Error codes of a bucket asked for in the wrong region.
_WRONG_REGION_CODES = frozenset(
    {"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed"}
)

T = TypeVar("T")


class ObjectCalls(Protocol):
    """What `S3Objects` hands to its fallback: the `ObjectStore` interface."""

    async def put(self, bucket: str, key: str, body: bytes, content_type: str = ...) -> None: ...
    async def get(self, bucket: str, key: str) -> bytes: ...
    async def delete(self, bucket: str, key: str) -> None: ...
    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where S3 lives and how buckets are addressed there."""

    url: str  # scheme://host[:port], no trailing slash
    path_style: bool

    def object_url(self, bucket: str, key: str) -> str:
        return self._url(bucket, "/" + quote(key, safe="/~"))

    def bucket_url(self, bucket: str, query: str) -> str:
        """The bucket's own URL with `query` (already encoded), as botocore writes it."""
        return self._url(bucket, "", query)

    def in_region(self, region: str) -> Endpoint | None:
        """This endpoint for a bucket in `region`: the same URL on a configured endpoint
        (path-style; only the signature changes), S3's host for that region on AWS,
        None where the host is neither (botocore's endpoint rules know more)."""
        if self.path_style:
            return self
        scheme, host, _, _, _ = urlsplit(self.url)
        match = _AWS_HOST.match(host)
        if match is None:
            return None
        return replace(self, url=f"{scheme}://s3.{region}.{match['suffix']}")

    def _url(self, bucket: str, path: str, query: str = "") -> str:
        if self.path_style or not _DNS_COMPATIBLE.match(bucket):
            return f"{self.url}/{bucket}{path}?{query}" if query else f"{self.url}/{bucket}{path}"
        scheme, host, _, _, _ = urlsplit(self.url)
        return urlunsplit((scheme, f"{bucket}.{host}", path or "/", query, ""))


class S3Objects(LeanClient[ObjectCalls]):
    """`ObjectStore` on `SignedHttp`: the bodies of S3's REST calls, sent and read as they are."""

    def __init__(
        self, http: SignedHttp, endpoint: Endpoint, fallback: ObjectCalls | None = None
    ) -> None:
        super().__init__(http, fallback)
        self._endpoint = endpoint
        #: Buckets found in another region (by a redirect): their region and endpoint.
        self._moved: dict[str, tuple[str, Endpoint]] = {}

    async def put(
        self, bucket: str, key: str, body: bytes, content_type: str = "binary/octet-stream"
    ) -> None:
        async def lean() -> None:
            headers = {"Content-Type": content_type}
            await self._send(bucket, "PutObject", "PUT", key, headers, body)

        await self._lean_or(lean, lambda other: other.put(bucket, key, body, content_type))

    async def get(self, bucket: str, key: str) -> bytes:
        async def lean() -> bytes:
            return (await self._send(bucket, "GetObject", "GET", key, {}, None)).body

        return await self._lean_or(lean, lambda other: other.get(bucket, key))

    async def delete(self, bucket: str, key: str) -> None:
        async def lean() -> None:
            await self._send(bucket, "DeleteObject", "DELETE", key, {}, None)

        await self._lean_or(lean, lambda other: other.delete(bucket, key))

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return await self._lean_or(
            lambda: self._list_keys(bucket, prefix), lambda other: other.list_keys(bucket, prefix)
        )

    async def _list_keys(self, bucket: str, prefix: str) -> list[str]:
        """ListObjectsV2 page by page. Keys come URL-encoded (`encoding-type=url`, as
        botocore asks): XML 1.0 cannot carry every character a key may hold."""
        keys: list[str] = []
        query = {"encoding-type": "url", "list-type": "2", "prefix": prefix}
        while True:
            encoded = urlencode(query, quote_via=quote, safe="")
            answer = await self._send(bucket, "ListObjectsV2", "GET", None, {}, None, encoded)
            try:
                page = ElementTree.fromstring(answer.body)
            except ElementTree.ParseError as error:
                raise unreadable("ListObjectsV2", f"its XML: {error}") from error
            keys += [unquote_plus(key.text or "") for key in page.iterfind("{*}Contents/{*}Key")]
            token = page.findtext("{*}NextContinuationToken")
            if page.findtext("{*}IsTruncated") != "true" or not token:
                return keys
            query["continuation-token"] = token

    async def _lean_or(
        self, lean: Callable[[], Awaitable[T]], on_botocore: Callable[[ObjectCalls], Awaitable[T]]
    ) -> T:
        """`lean()`, or the same call on botocore where the lean path cannot make it."""
        try:
            return await lean()
        except Unsupported as unsupported:
            other = fallback_for(self.fallback, unsupported, safe_to_redo=True)
            return await on_botocore(other)

    async def _send(
        self,
        bucket: str,
        operation: str,
        method: str,
        key: str | None,
        headers: dict[str, str],
        body: bytes | None,
        query: str = "",
    ) -> Answer:
        """One call on `bucket` (on `key`, or on the bucket with `query`), in the bucket's
        region, following one redirect to another region."""
        if bucket.startswith("arn:") or bucket.endswith("--x-s3"):
            raise Unsupported(
                "access point and directory buckets",
                sent=False,
                error=ValueError(f"the lean path cannot address the bucket {bucket!r}"),
            )
        for redirected in (False, True):
            region, endpoint = self._moved.get(bucket, (None, self._endpoint))
            url = (
                endpoint.object_url(bucket, key)
                if key is not None
                else endpoint.bucket_url(bucket, query)
            )
            try:
                return await self._http.send(
                    operation, method, url, headers, body, read_error, region=region
                )
            except ClientError as error:
                moved_to = bucket_region(error)
                if redirected or moved_to is None or moved_to == region:
                    raise
                there = self._endpoint.in_region(moved_to)
                if there is None:
                    raise Unsupported(
                        f"a redirect to {moved_to} from the endpoint {self._endpoint.url}",
                        sent=True,
                        error=error,
                    ) from error
                self._moved[bucket] = (moved_to, there)
        raise AssertionError("unreachable: the second attempt returns or raises")


def bucket_region(error: ClientError) -> str | None:
    """The region a wrong-region answer names for its bucket, or None if it is not one."""
    response = error.response
    if response["Error"].get("Code") not in _WRONG_REGION_CODES and response.get(
        "ResponseMetadata", {}
    ).get("HTTPStatusCode") not in (301, 307):
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region") or response["Error"].get("Region")
    return region or None


def unreadable(operation: str, reason: str) -> Unsupported:
    """An answer that came but could not be read: botocore is asked again (safe here)."""
    return Unsupported(
        f"an answer to {operation} it could not read",
        sent=True,
        error=UnreadableAnswer(operation=operation, reason=reason),
    )


def read_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """S3's `<Error><Code>..</Code><Message>..</Message></Error>` (with `Region`, where a
    wrong-region answer gives one); without a body (a HEAD, a proxy's bare answer) the
    status is the code, as botocore reports it."""
    try:
        root = ElementTree.fromstring(body) if body else None
    except ElementTree.ParseError:
        root = None
    if root is None:
        return {"Code": str(status), "Message": ""}
    error = {
        "Code": root.findtext("Code") or str(status),
        "Message": root.findtext("Message") or "",
    }
    region = root.findtext("Region")
    if region:
        error["Region"] = region
    return error
