"""Request and result messages: round trips, size limits, hostile names."""

from __future__ import annotations

import json

import pytest

from iras.messages import (
    MAX_NAME_BYTES,
    REQUEST_MAX_MESSAGE_BYTES,
    MessageError,
    Request,
    Result,
    clip_utf8,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
    name_stem,
)

LONG_REPLY_URL = "https://sqs.eu-central-1.amazonaws.com/000000000000/" + "r" * 80


def request(name: str = "cat.jpg", reply_to: str | None = LONG_REPLY_URL) -> Request:
    return Request(
        request_id="a" * 32,
        job_id="b" * 32,
        key="inputs/" + "a" * 32,
        name=name,
        reply_to=reply_to,
        submitted_at=1700000000.123456,
    )


@pytest.mark.parametrize("name", ["cat.jpg", "", "ü" * 1000, "😀" * 500, "x" * 5000, 'q"\\\n'])
def test_request_round_trips_within_the_size_limit(name: str) -> None:
    body = encode_request(request(name))
    assert len(body.encode("utf-8")) <= REQUEST_MAX_MESSAGE_BYTES
    decoded = decode_request(body)
    assert decoded.name == clip_utf8(name, MAX_NAME_BYTES)
    assert decoded == request(clip_utf8(name, MAX_NAME_BYTES))


def test_oversized_request_is_refused_with_a_reason() -> None:
    with pytest.raises(MessageError, match="1024-byte limit"):
        encode_request(request(reply_to="https://example.invalid/" + "q" * 2000))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{oops", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"job_id": "j", "key": "k"}', "request_id"),
        ('{"request_id": "r", "job_id": "j", "key": ""}', "key"),
        ('{"request_id": "r", "job_id": "j", "key": "k", "submitted_at": "soon"}', "malformed"),
        (
            '{"request_id": "r", "job_id": "j", "key": "k", "submitted_at": 1' + "0" * 400 + "}",
            "malformed",
        ),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: str, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_request(body)


@pytest.mark.parametrize(
    ("text", "limit", "clipped"),
    [("abc", 5, "abc"), ("abcdef", 3, "abc"), ("éé", 3, "é"), ("😀", 3, ""), ("", 0, "")],
)
def test_clip_utf8_never_splits_a_character(text: str, limit: int, clipped: str) -> None:
    assert clip_utf8(text, limit) == clipped


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("test_00.jpg", "test_00"),
        ("a.b.png", "a.b"),
        ("noext", "noext"),
        ("dir/sub/x.jpeg", "x"),
        ("C:\\pics\\y.gif", "y"),
        (".hidden", ".hidden"),
        ("", ""),
    ],
)
def test_name_stem(name: str, stem: str) -> None:
    assert name_stem(name) == stem


def test_result_round_trip() -> None:
    result = Result(
        request_id="r",
        job_id="j",
        name="cat.jpg",
        model="m",
        worker="w",
        label="tabby",
        top=[{"label": "tabby", "score": 0.9}],
        timings={"inference_ms": 3.0},
    )
    assert decode_result(encode_result(result)) == result
    failed = Result("r", "j", "x.jpg", "m", "w", error="not an image")
    data = json.loads(encode_result(failed))
    assert data["error"] == "not an image" and "label" not in data and "top" not in data
    assert decode_result(encode_result(failed)) == failed
    assert not failed.ok and result.ok
