"""Structured logs: one configuration for every process, JSON lines that carry the ids of
what they are about, and the text a person reads at a terminal as it was."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iras.telemetry.logs import TEXT_FORMAT, resolve_log_format
from tests.support import image_bytes, wait_until
from tests.web.conftest import iras_serve

#: A script that configures logging as an entry point does and logs what a route, a
#: worker's batch and uvicorn would.
LOGGING_SCRIPT = """
import logging
from iras.telemetry.logs import configure_logging
from iras.telemetry.log_context import bind_log_context, log_context
configure_logging()
log = logging.getLogger("iras.test")
log.info("no ids")
with log_context(job_id="j-1", request_id="r-1"):
    log.info("about %s", "one request", extra={"images": 1})
bind_log_context(worker="w-1", batch=3)
log.info("a batch", extra={"batch": 4})
logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
"""

#: Today's text line: `time LEVEL logger: message`, then the ids as key=value.
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<rest>.*)")


def run_logging_script(log_format: str | None, *, stderr: int | None = None) -> str:
    env = {name: value for name, value in os.environ.items() if name != "IRAS_LOG_FORMAT"}
    if log_format is not None:
        env["IRAS_LOG_FORMAT"] = log_format
    done = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT],
        env=env,
        stderr=stderr if stderr is not None else subprocess.PIPE,
        check=True,
        timeout=60,
    )
    return done.stderr.decode() if done.stderr is not None else ""


def test_text_keeps_the_human_format_with_the_ids_after_the_message() -> None:
    lines = run_logging_script("text").splitlines()
    assert TEXT_FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"
    rests = []
    for line in lines:
        match = TEXT_LINE.fullmatch(line)
        assert match is not None, line
        assert match["level"] == "INFO"
        rests.append(match["rest"])
    assert rests == [
        "iras.test: no ids",
        "iras.test: about one request request_id=r-1 job_id=j-1",  # `extra` figures: JSON only
        "iras.test: a batch worker=w-1 batch=4",  # `extra=` wins over the context
        "uvicorn.error: Started server process [42] worker=w-1 batch=3",
    ]


def test_json_lines_parse_and_carry_every_field_as_a_key() -> None:
    records = [json.loads(line) for line in run_logging_script("json").splitlines()]
    assert [record["message"] for record in records] == [
        "no ids",
        "about one request",
        "a batch",
        "Started server process [42]",
    ]
    assert all({"time", "level", "logger"} <= record.keys() for record in records)
    assert "job_id" not in records[0]
    assert records[1] | {"time": None} == {
        "time": None,
        "level": "INFO",
        "logger": "iras.test",
        "message": "about one request",
        "images": 1,
        "request_id": "r-1",
        "job_id": "j-1",
    }
    assert (records[2]["worker"], records[2]["batch"]) == ("w-1", 4)
    assert "request_id" not in records[2]  # the block's ids ended with it
    assert records[3]["logger"] == "uvicorn.error" and records[3]["worker"] == "w-1"


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert run_logging_script(None).startswith("{")  # a pipe
    leader, follower = pty.openpty()
    try:
        run_logging_script("auto", stderr=follower)
        os.close(follower)
        follower = -1
        written = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other side is closed: all was read
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    first = written.decode().splitlines()[0]
    assert TEXT_LINE.fullmatch(first) and first.endswith("iras.test: no ids")


def test_an_unknown_format_is_refused_saying_what_is_allowed() -> None:
    with pytest.raises(ValueError, match="IRAS_LOG_FORMAT must be auto, text or json, got 'xml'"):
        resolve_log_format("xml", sys.stderr)
    done = subprocess.run(
        [sys.executable, "-m", "iras", "predict", "x.jpg"],
        env={**os.environ, "IRAS_LOG_FORMAT": "JSON"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"iras: IRAS_LOG_FORMAT must be auto, text or json, got 'JSON'" in done.stderr


def json_records(log_path: Path) -> list[dict[str, Any]]:
    """Every line of `iras serve`'s output that a logger wrote, parsed; its own prints
    (`IRAS: open http://...`) are for the person who started it, and not logs."""
    records = []
    for line in log_path.read_text().splitlines():
        if line.startswith("IRAS: "):
            continue
        records.append(json.loads(line))  # fails the test on any line that is not JSON
    return records


async def test_one_upload_is_followed_by_its_ids_across_gateway_and_worker(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "serve.log"
    env = {"IRAS_LOG_FORMAT": "json"}
    async with iras_serve(log_path, "--aws-port", "0", env=env) as (_, http, _url):
        response = await http.post(
            "/v1/classify", params={"wait": "true"}, files={"files": ("cat.jpg", image_bytes())}
        )
    assert response.status_code == 200, response.text
    job = response.json()
    job_id = job["job_id"]
    ((request_id, worker),) = [(r["request_id"], r["result"]["worker"]) for r in job["requests"]]

    def access_line() -> dict[str, Any] | None:
        for record in json_records(log_path):
            if record["logger"] == "uvicorn.access" and "/v1/classify" in record["message"]:
                return record
        return None

    async def logged() -> bool:
        return access_line() is not None

    await wait_until(logged, timeout_s=10)
    records = json_records(log_path)

    # uvicorn's access line is JSON, with the ids the route bound.
    access = access_line()
    assert access is not None and '"POST /v1/classify?wait=true HTTP/1.1" 200' in access["message"]
    assert (access["request_id"], access["job_id"]) == (request_id, job_id)

    # The worker's batch line: its name, the batch's number, the requests it classified.
    (batch,) = [r for r in records if r["message"].startswith("batch 1:")]
    assert batch["logger"] == "iras.worker.worker"
    assert batch["worker"] == worker and batch["batch"] == 1
    assert batch["request_ids"] == [request_id] and batch["images"] == 1
    assert batch["inference_ms"] > 0
    up = next(r for r in records if r["message"].startswith(f"worker {worker} up"))
    assert up["worker"] == worker  # every line of the worker, not only batches

    # The scale-out that the upload caused, with the figures it was decided on.
    scale = next(r for r in records if r["message"].startswith("scaling 0 -> "))
    assert scale["workers"] == 0 and scale["desired"] >= 1 and scale["reason"]
    assert scale["backlog"] + scale["in_flight"] + scale["arriving"] >= 1
    assert isinstance(scale["figures"], dict)
    assert "worker_rate_ips" in scale and "boot_s" in scale

    # uvicorn's own lines go the same way.
    running = next(r for r in records if "Uvicorn running" in r["message"])
    assert running["logger"] == "uvicorn.error" and "color_message" not in running
