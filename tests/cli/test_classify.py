"""`iras classify` against a gateway with a real worker: formats, failures, exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from iras.bench.serve_process import free_port
from iras.model import Classifier
from tests.cli.conftest import Iras, labels_of
from tests.web.conftest import Service


async def test_every_format_shows_the_models_labels(
    service: Service,
    images: Path,
    classifier: Classifier,
    iras: Iras,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = sorted(images.rglob("*.*"))
    expected = {
        str(path): label
        for path, label in zip(files, labels_of(classifier, files).values(), strict=True)
    }

    ran = await iras("classify", str(images), "--url", service.url, "--format", "csv")
    assert ran.code == 0, ran.err
    rows = list(csv.DictReader(io.StringIO(ran.out)))
    assert [row["file"] for row in rows] == [
        str(images / "green.png"),
        str(images / "more/blue.jpg"),
        str(images / "red.jpg"),
    ]
    assert {row["file"]: row["label"] for row in rows} == expected
    assert all(0 < float(row["score"]) <= 1 and row["error"] == "" for row in rows)
    assert "3 classified, 0 failed" in ran.err

    monkeypatch.setenv("IRAS_URL", service.url)  # the default --url
    ran = await iras("classify", str(images), "--quiet", "--output", str(tmp_path / "out.json"))
    assert (ran.code, ran.out, ran.err) == (0, "", "")
    records = json.loads((tmp_path / "out.json").read_text())
    assert {r["file"]: r["label"] for r in records} == expected
    assert all(
        r["error"] is None and r["request_id"] and r["top"][0]["label"] == r["label"]
        for r in records
    )

    ran = await iras("classify", *map(str, files), "--concurrency", "1")
    assert ran.code == 0, ran.err
    for path in files:
        line = next(line for line in ran.out.splitlines() if path.name in line)
        assert expected[str(path)] in line


async def test_a_failed_image_makes_exit_code_1_and_says_why(
    service: Service,
    images: Path,
    iras: Iras,
) -> None:
    notes = images / "notes.txt"
    notes.write_text("not an image")
    ran = await iras("classify", str(images), str(notes), "--url", service.url, "--format", "json")
    assert ran.code == 1
    records = {Path(r["file"]).name: r for r in json.loads(ran.out)}
    assert records["notes.txt"]["label"] is None
    assert "is not a JPEG, PNG, WebP or GIF image" in records["notes.txt"]["error"]
    assert all(r["label"] for name, r in records.items() if name != "notes.txt")
    assert "3 classified, 1 failed" in ran.err
    assert f"{notes}: error: 'notes.txt' is not a JPEG" in ran.err


def test_an_unreachable_gateway_is_one_line_and_exit_code_2(images: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "iras", "classify", str(images), "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"iras classify: cannot reach the gateway at {url}")
    assert len(done.stderr.strip().splitlines()) == 1  # no traceback


async def test_nothing_to_classify_is_exit_code_1(
    tmp_path: Path,
    iras: Iras,
) -> None:
    ran = await iras("classify", str(tmp_path), "--url", "http://127.0.0.1:1")
    assert ran.code == 1
    assert "no .jpg/.jpeg/.png/.webp/.gif files in it" in ran.err
