"""The embedded AWS's header parser gives what the standard library's gives, faster."""

from __future__ import annotations

import io

import pytest

from iras.local_aws import headers

BOTOCORE_PUT = (
    b"Host: 127.0.0.1:4566\r\n"
    b"Accept-Encoding: identity\r\n"
    b"User-Agent: Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux\r\n"
    b"Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg==\r\n"
    b"Expect: 100-continue\r\n"
    b"X-Amz-Date: 20261207T150000Z\r\n"
    b"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"
    b"Authorization: AWS4-HMAC-SHA256 Credential=iras-local/20261207/us-east-1/s3/aws4_request,"
    b" SignedHeaders=host;x-amz-date, Signature=abc\r\n"
    b"x-amz-meta-under_score: kept as sent  \r\n"
    b"amz-sdk-invocation-id: 5d0f\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)
BLOCKS = [
    BOTOCORE_PUT,
    b"Host: a\r\nX-Empty:\r\nX-Tabs:\t\t value\r\nX-Colon: a:b:c\r\n\r\n",
    b"Host: a\nBare-Newlines: yes\n\n",
    b"Host: a\r\nDup: one\r\nDup: two\r\n\r\n",
    b"Host: a\r\nFolded: first\r\n  second\r\n\r\n",  # the email parser's to handle
    b"Host: a\r\nno colon here\r\n\r\n",
    b"Host: a\r\nBad Name: x\r\n\r\n",
    b"Host: a\r\nNon-\xe9scii: x\r\n\r\n",
    b"Host: a\r\n",  # the connection ended before the blank line
    b"\r\n",
]


@pytest.mark.parametrize("block", BLOCKS, ids=range(len(BLOCKS)))
def test_it_parses_as_the_standard_library_does(block: bytes) -> None:
    ended = block.endswith((b"\r\n\r\n", b"\n\n")) or block == b"\r\n"
    trailing = b"GET /next HTTP/1.1\r\n" if ended else b""  # the next request, if any
    ours, theirs = io.BytesIO(block + trailing), io.BytesIO(block + trailing)

    fast, original = headers.parse_headers(ours), headers.ORIGINAL(theirs)

    assert fast.items() == original.items()
    assert fast.get_payload() == original.get_payload()
    assert [type(defect) for defect in fast.defects] == [type(d) for d in original.defects]
    assert ours.tell() == theirs.tell() == len(block)  # nothing of the next request read


def test_its_limits_are_the_standard_librarys() -> None:
    too_many = b"".join(b"H%d: v\r\n" % n for n in range(200)) + b"\r\n"
    with pytest.raises(headers.http.client.HTTPException, match="more than 100 headers"):
        headers.parse_headers(io.BytesIO(too_many))
