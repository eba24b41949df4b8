"""How the gateway's answers become `Answer`s, and how they are written out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import aiohttp

from iras.client.gateway import (
    Answer,
    answer_from_result,
    describe_transport_error,
    http_error_text,
    label_from_course_answer,
)
from iras.client.output import as_csv, as_json, format_for, render


def test_course_answers() -> None:
    assert label_from_course_answer("dir/cat.photo.jpg", "cat.photo:tabby, tabby cat") == (
        "tabby, tabby cat"
    )
    assert label_from_course_answer(".hidden.jpg", "hidden:tench") == "tench"  # name cleaned


def test_results() -> None:
    result = {
        "label": "tench",
        "top": [{"label": "tench", "score": 0.9}, {"label": "goldfish", "score": 0.05}],
        "worker": "w1",
    }
    answer = answer_from_result("a.jpg", result, "r1")
    assert (answer.label, answer.score, answer.request_id, answer.worker) == (
        "tench",
        0.9,
        "r1",
        "w1",
    )
    assert answer.top == (("tench", 0.9), ("goldfish", 0.05))
    failed = answer_from_result("b.jpg", {"error": "cannot decode"}, "r2")
    assert not failed.ok and failed.error == "cannot decode"


def test_http_errors_show_the_gateways_detail() -> None:
    refused = json.dumps({"error": "unsupported_media_type", "detail": "no"})
    assert http_error_text(415, refused) == "no (HTTP 415 unsupported_media_type)"
    assert http_error_text(502, "Bad Gateway") == "HTTP 502: 'Bad Gateway'"
    assert http_error_text(500, "[1, 2]") == "HTTP 500: '[1, 2]'"  # JSON, not the gateway's


def test_transport_errors_say_what_happened() -> None:
    assert describe_transport_error(TimeoutError()) == "no answer in time (TimeoutError)"
    assert describe_transport_error(aiohttp.SocketTimeoutError()) == (
        "no answer in time (SocketTimeoutError)"
    )
    dropped = aiohttp.ServerDisconnectedError()
    assert describe_transport_error(dropped) == "ServerDisconnectedError: Server disconnected"


FILES = [Path("a.jpg"), Path("b.txt")]
ANSWERS = [
    Answer("a.jpg", label="tench", score=0.91234, top=(("tench", 0.91234),), request_id="r1"),
    Answer("b.txt", error="not an image, it says"),
]


def test_csv_and_json() -> None:
    rows = list(csv.DictReader(io.StringIO(as_csv(FILES, ANSWERS))))
    assert rows == [
        {"file": "a.jpg", "label": "tench", "score": "0.9123", "error": ""},
        {"file": "b.txt", "label": "", "score": "", "error": "not an image, it says"},
    ]
    records = json.loads(as_json(FILES, ANSWERS))
    assert records[0]["top"] == [{"label": "tench", "score": 0.91234}]
    assert records[1] == {
        "file": "b.txt",
        "label": None,
        "score": None,
        "top": [],
        "request_id": None,
        "worker": None,
        "error": "not an image, it says",
    }


def test_table_is_as_wide_as_its_content() -> None:
    lines = render(FILES, ANSWERS, "table").splitlines()
    assert any("a.jpg" in line and "tench" in line and "0.912" in line for line in lines)
    assert any("not an image, it says" in line for line in lines)  # not wrapped


def test_format_follows_the_output_suffix_unless_given() -> None:
    assert format_for(None, None) == "table"
    assert format_for(Path("out.CSV"), None) == "csv"
    assert format_for(Path("out.json"), None) == "json"
    assert format_for(Path("out.txt"), None) == "table"
    assert format_for(Path("out.json"), "csv") == "csv"
