"""S3's PutObject and GetObject on `SignedHttp`; every other S3 call on botocore.

Addressing follows botocore's: path-style on a configured endpoint (the embedded AWS,
MinIO), virtual-hosted on AWS for bucket names that can be a host name label. Keys are
percent-encoded as botocore encodes them (all but unreserved characters and `/`), which
is also the path the signature covers. Left out on purpose: payload checksums (TCP and
TLS guard the bytes; botocore's CRC32 is a pass over every image) and every parameter
but Bucket, Key, Body and ContentType.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
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
        path = "/" + quote(key, safe="/~")
        if self.path_style or not _DNS_COMPATIBLE.match(bucket):
            return f"{self.url}/{bucket}{path}"
        scheme, host, _, _, _ = urlsplit(self.url)
        return urlunsplit((scheme, f"{bucket}.{host}", path, "", ""))


class StoredBody:
    """A read object's bytes, shaped like botocore's streaming body (`async with`, `read`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aenter__(self) -> StoredBody:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._data


class S3Objects(LeanClient):
    """`put_object` and `get_object` made lean; any other attribute is `client`'s."""

    def __init__(self, client: Any, http: SignedHttp, endpoint: Endpoint) -> None:
        super().__init__(client, http)
        self._endpoint = endpoint

    async def put_object(
        self, *, Bucket: str, Key: str, Body: bytes, ContentType: str = "binary/octet-stream"
    ) -> dict[str, Any]:
        url = self._endpoint.object_url(Bucket, Key)
        headers = {"Content-Type": ContentType}
        answer = await self._http.send("PutObject", "PUT", url, headers, Body, read_error)
        return {
            "ETag": answer.headers.get("etag", ""),
            "ResponseMetadata": {"HTTPStatusCode": answer.status},
        }

    async def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        url = self._endpoint.object_url(Bucket, Key)
        answer = await self._http.send("GetObject", "GET", url, {}, None, read_error)
        return {
            "Body": StoredBody(answer.body),
            "ContentLength": len(answer.body),
            "ContentType": answer.headers.get("content-type", ""),
            "ETag": answer.headers.get("etag", ""),
            "ResponseMetadata": {"HTTPStatusCode": answer.status},
        }


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
