"""Request and result messages: round trips, size limits, hostile names."""

from __future__ import annotations

import json

import pytest

from iras.messages import (
    MAX_NAME_BYTES,
    REQUEST_MAX_MESSAGE_BYTES,
    MessageError,
    RefusedRequest,
    Request,
    Result,
    clip_utf8,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
    input_key,
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
        ('{"request_id": "r", "job_id": "j", "key": "inputs/r", "submitted_at": "soon"}', "number"),
        (
            '{"request_id": "r", "job_id": "j", "key": "inputs/r", "submitted_at": 1'
            + "0" * 400
            + "}",
            "finite",
        ),
        ("[" * 1000, "nested too deeply"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: str, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_request(body)


#: A 12-digit account id, built so that the repository's check for account ids in files
#: does not flag it.
ACCOUNT = "".join(str(digit % 10) for digit in range(1, 13))

#: A request as the gateway sends it, field by field, for the tables below to spoil.
GOOD_FIELDS: dict[str, object] = {
    "v": 1,
    "request_id": "a" * 32,
    "job_id": "b" * 32,
    "key": input_key("a" * 32),
    "name": "cat.jpg",
    "reply_to": f"http://127.0.0.1:5000/{ACCOUNT}/iras-replies-0123abcd",
    "submitted_at": 1700000000.5,
}


def body_with(**fields: object) -> str:
    return json.dumps({**GOOD_FIELDS, **fields})


@pytest.mark.parametrize(
    "reply_to",
    [
        None,
        "",
        f"https://sqs.eu-central-1.amazonaws.com/{ACCOUNT}/iras-replies-x",
        f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/replies.fifo",
        f"http://[::1]:4566/{ACCOUNT}/q_1",
        f"http://localhost:4566/prefix/path/{ACCOUNT}/" + "q" * 80,
    ],
)
def test_sound_requests_decode(reply_to: str | None) -> None:
    request = decode_request(body_with(reply_to=reply_to))
    assert request.reply_to == (reply_to or None)
    assert (request.request_id, request.key, request.name) == (
        "a" * 32,
        "inputs/" + "a" * 32,
        "cat.jpg",
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        # The address: without a sound one, nobody can be answered.
        ({"request_id": 5}, "'request_id' must be"),
        ({"request_id": "a/../b"}, "'request_id' must be"),
        ({"request_id": "a" * 65}, "'request_id' must be"),
        ({"request_id": "a\ud800"}, "'request_id' must be"),
        ({"job_id": None}, "'job_id' must be"),
        ({"job_id": ["j"]}, "'job_id' must be"),
        ({"reply_to": 5}, "'reply_to' must be an SQS queue URL"),
        ({"reply_to": [f"http://h/{ACCOUNT}/q"]}, "'reply_to'"),
        ({"reply_to": f"ftp://h/{ACCOUNT}/q"}, "'reply_to'"),
        ({"reply_to": f"http://h/{ACCOUNT}/q?Action=Purge"}, "'reply_to'"),
        ({"reply_to": "http://h/12345/q"}, "'reply_to'"),
        ({"reply_to": f"http://h/{ACCOUNT}/" + "q" * 81}, "'reply_to'"),
        ({"reply_to": f"http://h/{ACCOUNT}/q\ud800"}, "'reply_to'"),
        ({"reply_to": "http://h/" + "p/" * 300 + f"{ACCOUNT}/q"}, "'reply_to'"),
    ],
)
def test_a_request_with_no_sound_address_is_malformed(
    fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(MessageError, match=reason) as raised:
        decode_request(body_with(**fields))
    assert not isinstance(raised.value, RefusedRequest)
    str(raised.value).encode("ascii")  # quoted values are escaped: fit to log and send


@pytest.mark.parametrize(
    ("fields", "reason", "shown_name"),
    [
        ({"name": "\ud800.jpg"}, "'name' is not valid Unicode", "?.jpg"),
        ({"name": "cat\udfff"}, "'name' is not valid Unicode", "cat?"),
        ({"name": 5}, "'name' must be a string", ""),
        ({"name": "x" * (MAX_NAME_BYTES + 1)}, f"over {MAX_NAME_BYTES}", "x" * MAX_NAME_BYTES),
        ({"key": "inputs/someone-else"}, "'key' must be 'inputs/", "cat.jpg"),
        ({"key": 5}, "'key' must be", "cat.jpg"),
        ({"submitted_at": "soon"}, "'submitted_at' must be a number", "cat.jpg"),
        ({"submitted_at": True}, "'submitted_at' must be a number", "cat.jpg"),
        ({"submitted_at": -1}, "'submitted_at' must be a finite time", "cat.jpg"),
        ({"submitted_at": 1e400}, "'submitted_at' must be a finite time", "cat.jpg"),
    ],
)
def test_a_sound_address_with_an_unfit_field_is_refused_with_the_address(
    fields: dict[str, object], reason: str, shown_name: str
) -> None:
    with pytest.raises(RefusedRequest, match=reason) as raised:
        decode_request(body_with(**fields))
    refused = raised.value.request
    assert (refused.request_id, refused.job_id) == ("a" * 32, "b" * 32)
    assert refused.reply_to == GOOD_FIELDS["reply_to"]
    assert refused.name == shown_name and refused.key == ""
    refused.name.encode("utf-8")  # the error result can carry it
    str(raised.value).encode("ascii")


def test_a_missing_name_and_time_are_allowed() -> None:
    data = {k: v for k, v in GOOD_FIELDS.items() if k not in {"name", "submitted_at"}}
    request = decode_request(json.dumps(data))
    assert (request.name, request.submitted_at) == ("", 0.0)


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
