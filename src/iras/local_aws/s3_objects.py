"""S3's plain PutObject and GetObject answered from moto's S3 backend, without `S3Response`.

Each image costs four such calls, and through moto's `S3Response` a PUT+GET pair costs
~2 ms of CPU, of which moto's backend (`put_object`, the stored bytes) is ~0.15 ms:
the rest is per-request set-up (the account, the region, the bucket from the host name,
copies of the headers as a query string), the request id and the response object.
`S3Objects` answers the plain calls (path-style, no query string, only the headers
IRAS's clients send) by doing what moto's handler does for them, with moto's own
backend and helpers, so that what is stored and answered is moto's to the byte (but
for the random request id). Anything else goes to moto's handler unchanged: a query
string, a virtual-hosted bucket, any header that may change the answer (Range, If-*,
x-amz-meta-*, ACLs, tags, storage class, encryption, chunked payloads...), a bucket
with a policy, versioning, object lock or access logging, a missing bucket (so errors
are moto's own), IAM authorisation switched on, and every other method. One error is
answered here, a GET of a missing key (`_missing_key`: the result cache asks for an
entry of every new image, and moto's handler took ~2 ms to say no).

It imports and reads moto 5.2.5's internals, so `server` imports it only on that version.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from moto import settings
from moto.core.responses import BaseResponse
from moto.core.serialize import S3Serializer
from moto.core.utils import extract_region_from_aws_authorization
from moto.iam.models import get_account_id_from, mark_account_as_visited
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.s3.responses import S3Response
from moto.s3.utils import ARCHIVE_STORAGE_CLASSES, metadata_from_headers, parse_region_from_url
from moto.utilities.utils import get_partition

from iras.local_aws.dispatch import Environ, StartResponse, WsgiApp

#: Headers (WSGI environ keys) that change nothing in moto's answer to a plain
#: PUT or GET of an object: signing, transport and SDK bookkeeping.
_NEUTRAL = frozenset(
    {
        "HTTP_HOST",
        "HTTP_AUTHORIZATION",
        "HTTP_X_AMZ_DATE",
        "HTTP_X_AMZ_CONTENT_SHA256",  # stored as metadata by moto: done the same here
        "HTTP_X_AMZ_SECURITY_TOKEN",
        "HTTP_X_AMZ_USER_AGENT",
        "HTTP_USER_AGENT",
        "HTTP_ACCEPT",
        "HTTP_ACCEPT_ENCODING",  # moto never compresses an answer
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_EXPECT",  # "100-continue", already answered by the HTTP server
        "HTTP_AMZ_SDK_INVOCATION_ID",
        "HTTP_AMZ_SDK_REQUEST",
        "CONTENT_LENGTH",
        "CONTENT_TYPE",  # checked apart: on a PUT it is stored, on a GET it must be absent
    }
)
#: A PUT may also carry botocore's checksum: the algorithm and its value.
_PUT_ONLY = frozenset({"HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"})
_CHECKSUM_PREFIX = "HTTP_X_AMZ_CHECKSUM_"
#: A GET may ask for the stored checksum back (botocore does, to validate it).
_GET_ONLY = frozenset({"HTTP_X_AMZ_CHECKSUM_MODE"})
#: Body types that moto's request parses as a form (and then reads differently).
_FORM_TYPES = ("multipart/", "application/x-www-form-urlencoded")
#: A bucket name that reads the same percent-encoded or not (moto reads it raw).
_PLAIN_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: What `S3Objects` answers: the status line, the headers and the body.
Answer = tuple[str, list[tuple[str, str]], bytes]
_OK = "200 OK"
_NOT_FOUND = "404 NOT FOUND"  # as werkzeug writes it for moto


class S3Objects:
    """WSGI: plain object PUTs and GETs from moto's S3 backend, the rest to `fallback`.

    `served` counts the calls answered here, by method (for tests and profiling).
    """

    def __init__(self, fallback: WsgiApp) -> None:
        self.fallback = fallback
        self._path_style: dict[str, bool] = {}
        self._lock = threading.Lock()
        self.served: Counter[str] = Counter()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.fallback(environ, start_response)
        status, headers, body = answer
        with self._lock:
            self.served[environ["REQUEST_METHOD"] if status == _OK else status] += 1
        start_response(status, headers)
        return [body]

    def _answer(self, environ: Environ) -> Answer | None:
        """The answer moto would give, or None where moto's handler must answer."""
        method = environ.get("REQUEST_METHOD")
        if method not in ("PUT", "GET") or environ.get("QUERY_STRING"):
            return None
        names = self._object_names(environ)
        if names is None or not _plain_headers(environ, method):
            return None
        backend, bucket = _backend_and_bucket(environ, names[0])
        if bucket is None:
            return None
        if method == "PUT":
            return _OK, *_put(environ, backend, bucket, *names)
        found = _get(environ, backend, *names)
        if found is not None:
            return _OK, *found
        if backend.get_object(*names) is None:
            return _missing_key(*names)
        return None  # archived: moto's InvalidObjectState

    def _object_names(self, environ: Environ) -> tuple[str, str] | None:
        """(bucket, key) as moto reads them from the raw path; None if not plain."""
        raw = environ.get("RAW_URI", "")  # what moto reads; only its path form is taken
        if not raw.startswith("/") or raw.startswith("//") or "?" in raw or not raw.isascii():
            return None
        bucket, _, rest = raw[1:].partition("/")
        if not rest or not _PLAIN_BUCKET.fullmatch(bucket):
            return None
        key = "/".join(unquote(raw).split("/")[2:])  # moto's bucketpath parse_key_name
        # Control characters (and the like) and "//" route differently in moto's URL map.
        if not key.isprintable() or "//" in key:
            return None
        host = environ.get("HTTP_HOST", "")
        if not self._is_path_style(host):
            return None
        return bucket, key

    def _is_path_style(self, host: str) -> bool:
        """moto's own verdict on the host (path-style or virtual-hosted), kept per host."""
        known = self._path_style.get(host)
        if known is None:
            request = SimpleNamespace(headers={"host": host}, url=f"http://{host}/")
            known = bool(host) and ".s3-accesspoint." not in host
            known = known and not S3Response.subdomain_based_buckets(request)
            if len(self._path_style) < 64:  # a handful of hosts; never grow without bound
                self._path_style[host] = known
        return known


def _plain_headers(environ: Environ, method: str) -> bool:
    """Whether every header is one that leaves moto's answer as `_put`/`_get` give it."""
    extra = _PUT_ONLY if method == "PUT" else _GET_ONLY
    algorithm = environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "").upper()
    for name in environ:
        if not (name.startswith("HTTP_") or name.startswith("CONTENT_")):
            continue
        if name in _NEUTRAL or name in extra:
            continue
        if method == "PUT" and algorithm and name == _CHECKSUM_PREFIX + algorithm:
            continue
        return False
    if "HTTP_AUTHORIZATION" not in environ:  # moto checks ACLs of anonymous calls
        return False
    if environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING"):
        return False  # aws-chunked: moto decodes the body first
    content_type = environ.get("CONTENT_TYPE", "")
    if method == "GET":
        return not content_type and environ.get("CONTENT_LENGTH", "0") in ("", "0")
    if algorithm and not environ.get(_CHECKSUM_PREFIX + algorithm):
        return False  # moto would compute it, or look for it in the body
    return not content_type.lower().startswith(_FORM_TYPES)


def _backend_and_bucket(environ: Environ, bucket_name: str) -> tuple[Any, Any]:
    """moto's S3 backend for this request's account and region, and the bucket if the
    fast path may use it: (backend, None) where moto's handler must answer."""
    if not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT):
        return None, None  # moto authorises calls against IAM: its handler does that
    auth = environ["HTTP_AUTHORIZATION"]
    host = environ.get("HTTP_HOST", "")
    url = f"http://{host}{environ['RAW_URI']}"
    found = BaseResponse.access_key_regex.search(auth)
    access_key = found.group(1) if found else "AKIAEXAMPLE"
    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(access_key)
    # As BaseResponse.setup_class: note the key's last use (if IAM knows it) ...
    mark_account_as_visited(account, access_key, "s3", _iam_region(environ, url, auth))
    # ... and as S3Response.setup_class: the region from the URL, else the signature.
    region = (
        parse_region_from_url(url, use_default_region=False)
        or extract_region_from_aws_authorization(auth)
        or "us-east-1"
    )
    backend = s3_backends[account][get_partition(region)]
    try:
        bucket = backend.get_bucket(bucket_name)
    except S3ClientError:
        return backend, None  # NoSuchBucket, or another account's: moto's answer
    if (
        bucket.policy is not None  # moto evaluates it per call
        or bucket.versioning_status is not None
        or bucket.object_lock_enabled
        or bucket.logging  # moto writes an access log entry per call
    ):
        return backend, None
    return backend, bucket


def _iam_region(environ: Environ, url: str, auth: str) -> str:
    """The region `BaseResponse.get_region_from_url` finds (moto's IAM records it)."""
    found = BaseResponse.region_regex.search(url) or (
        BaseResponse.region_from_useragent_regex.search(environ.get("HTTP_USER_AGENT", ""))
    )
    if found:
        return str(found.group(1))
    if "AWS4" in auth:
        return auth.split(",")[0].split("/")[2]
    return str(BaseResponse.default_region)


def _put(
    environ: Environ, backend: Any, bucket: Any, bucket_name: str, key_name: str
) -> tuple[list[tuple[str, str]], bytes]:
    """moto's `S3Response.put_object` for a request `_plain_headers` accepted."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    headers: list[tuple[str, str]] = []
    algorithm = environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "")
    checksum = environ.get(_CHECKSUM_PREFIX + algorithm.upper()) if algorithm else None
    if checksum:
        headers.append((f"x-amz-checksum-{algorithm.lower()}", checksum))
    key = backend.put_object(
        bucket_name, key_name, body, storage="STANDARD", checksum_value=checksum
    )
    key.set_metadata(metadata_from_headers(_request_headers(environ)))
    key.set_acl(bucket.acl)
    key.website_redirect_location = None
    if algorithm:
        key.checksum_algorithm = algorithm
    backend.put_object_tagging(key, {})  # none; but moto notifies, so do the same
    headers += [
        (name, value) for name, value in key.response_dict.items() if name != "content-length"
    ]
    headers += [
        ("x-amzn-requestid", _request_id()),
        ("Content-Type", "text/plain; charset=utf-8"),  # werkzeug's, for moto's empty body
        ("Content-Length", "0"),
    ]
    return headers, b""


def _get(
    environ: Environ, backend: Any, bucket_name: str, key_name: str
) -> tuple[list[tuple[str, str]], bytes] | None:
    """moto's `S3Response.get_object` for a request `_plain_headers` accepted; None for
    a missing key (`_missing_key`) or an archived one (moto's error)."""
    key = backend.get_object(bucket_name, key_name)
    if key is None or key.storage_class in ARCHIVE_STORAGE_CLASSES:
        return None
    fields: dict[str, Any] = {}
    if key.version_id != "null":
        fields["x-amz-version-id"] = key.version_id
    fields.update(key.response_dict)
    if environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED" and key.checksum_algorithm:
        checksum = key.checksum_value
        if key.checksum_type == "COMPOSITE":
            checksum = f"{key.checksum_value}-{key.checksum_parts}"
        fields[f"x-amz-checksum-{key.checksum_algorithm.lower()}"] = checksum
        if key.checksum_type:
            fields["x-amz-checksum-type"] = key.checksum_type
    fields.update(key.metadata)
    fields["Accept-Ranges"] = "bytes"
    body: bytes = key.value
    # werkzeug's Content-Length (of the body) takes the place of moto's content-length.
    headers = [
        ("Content-Length", str(len(body))) if name == "content-length" else (name, str(value))
        for name, value in fields.items()
    ]
    headers.append(("x-amzn-requestid", _request_id()))
    return headers, body


def _missing_key(bucket_name: str, key_name: str) -> Answer | None:
    """moto's 404 NoSuchKey for a plain GET of a key the bucket does not hold (the result
    cache asks for every new image's entry), byte for byte but for the request id; None
    for a key whose XML would need escaping (moto's serializer does that)."""
    if any(char in key_name for char in "&<>\"'"):
        return None
    request_id = _request_id()
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n<Error><Code>NoSuchKey</Code><Message>The '
        f"specified key does not exist.</Message><Key>{key_name}</Key><RequestId>{request_id}"
        f"</RequestId><HostId>{S3Serializer.DEFAULT_HOST_ID}</HostId></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("server", "amazon.com"),
        ("x-amzn-requestid", request_id),
        ("Content-Length", str(len(body))),
    ]
    return _NOT_FOUND, headers, body


def _request_headers(environ: Environ) -> dict[str, str]:
    """The request's headers named as werkzeug names them for moto (`Content-Type`)."""
    headers = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers[name[5:].replace("_", "-").title()] = value
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[name.replace("_", "-").title()] = value
    return headers


def _request_id() -> str:
    """A request id shaped like moto's (52 letters and digits), without its slow RNG."""
    return os.urandom(26).hex()
