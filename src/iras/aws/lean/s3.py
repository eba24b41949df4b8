"""S3's object calls (`ObjectStore`: PutObject, GetObject, DeleteObject, ListObjectsV2) on
`SignedHttp`; buckets themselves are managed on botocore.

Addressing follows botocore's: path-style on a configured endpoint (the embedded AWS,
MinIO), virtual-hosted on AWS for bucket names that can be a host name label. Keys are
percent-encoded as botocore encodes them (all but unreserved characters and `/`), which
is also the path the signature covers. Left out on purpose: payload checksums (TCP and
TLS guard the bytes; botocore's CRC32 is a pass over every image) and every parameter
but bucket, key, body and content type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree

from iras.aws.lean.signed_http import LeanClient, SignedHttp

#: Bucket names that can be a host name label (no dots, so TLS wildcards match).
_DNS_COMPATIBLE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


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

    def _url(self, bucket: str, path: str, query: str = "") -> str:
        if self.path_style or not _DNS_COMPATIBLE.match(bucket):
            return f"{self.url}/{bucket}{path}?{query}" if query else f"{self.url}/{bucket}{path}"
        scheme, host, _, _, _ = urlsplit(self.url)
        return urlunsplit((scheme, f"{bucket}.{host}", path or "/", query, ""))


class S3Objects(LeanClient):
    """`ObjectStore` on `SignedHttp`: the bodies of S3's REST calls, sent and read as they are."""

    def __init__(self, http: SignedHttp, endpoint: Endpoint) -> None:
        super().__init__(http)
        self._endpoint = endpoint

    async def put(
        self, bucket: str, key: str, body: bytes, content_type: str = "binary/octet-stream"
    ) -> None:
        url = self._endpoint.object_url(bucket, key)
        headers = {"Content-Type": content_type}
        await self._http.send("PutObject", "PUT", url, headers, body, read_error)

    async def get(self, bucket: str, key: str) -> bytes:
        url = self._endpoint.object_url(bucket, key)
        return (await self._http.send("GetObject", "GET", url, {}, None, read_error)).body

    async def delete(self, bucket: str, key: str) -> None:
        url = self._endpoint.object_url(bucket, key)
        await self._http.send("DeleteObject", "DELETE", url, {}, None, read_error)

    async def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """ListObjectsV2 page by page. Keys come URL-encoded (`encoding-type=url`, as
        botocore asks): XML 1.0 cannot carry every character a key may hold."""
        keys: list[str] = []
        query = {"encoding-type": "url", "list-type": "2", "prefix": prefix}
        while True:
            url = self._endpoint.bucket_url(bucket, urlencode(query, quote_via=quote, safe=""))
            answer = await self._http.send("ListObjectsV2", "GET", url, {}, None, read_error)
            page = ElementTree.fromstring(answer.body)
            keys += [unquote_plus(key.text or "") for key in page.iterfind("{*}Contents/{*}Key")]
            token = page.findtext("{*}NextContinuationToken")
            if page.findtext("{*}IsTruncated") != "true" or not token:
                return keys
            query["continuation-token"] = token


def read_error(status: int, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """S3's `<Error><Code>..</Code><Message>..</Message></Error>`; without a body (a
    HEAD, a proxy's bare answer) the status is the code, as botocore reports it."""
    try:
        root = ElementTree.fromstring(body) if body else None
    except ElementTree.ParseError:
        root = None
    if root is None:
        return str(status), ""
    return root.findtext("Code") or str(status), root.findtext("Message") or ""
