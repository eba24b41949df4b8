"""`iras classify`'s results as a table (for people), CSV or JSON (for programs).

One row per file, in the order the files were given; a failed file has an empty label
and its reason in `error`. JSON is one array of objects with `file`, `label`, `score`,
`top` (label/score pairs), `request_id`, `worker` and `error` (null when classified).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from iras.client.gateway import Answer

CSV_COLUMNS = ("file", "label", "score", "error")

#: What `--output FILE` writes when no --format is given, by the file's suffix.
_BY_SUFFIX = {".csv": "csv", ".json": "json"}


def format_for(output: Path | None, given: str | None) -> str:
    """The format asked for, else the one the output file's suffix names, else a table."""
    if given is not None:
        return given
    if output is not None:
        return _BY_SUFFIX.get(output.suffix.lower(), "table")
    return "table"


def as_records(files: Sequence[Path], answers: Sequence[Answer]) -> list[dict[str, Any]]:
    return [
        {
            "file": str(path),
            "label": answer.label,
            "score": answer.score,
            "top": [{"label": label, "score": score} for label, score in answer.top],
            "request_id": answer.request_id,
            "worker": answer.worker,
            "error": answer.error,
        }
        for path, answer in zip(files, answers, strict=True)
    ]


def as_json(files: Sequence[Path], answers: Sequence[Answer]) -> str:
    return json.dumps(as_records(files, answers), indent=2) + "\n"


def as_csv(files: Sequence[Path], answers: Sequence[Answer]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for path, answer in zip(files, answers, strict=True):
        score = "" if answer.score is None else f"{answer.score:.4f}"
        writer.writerow((str(path), answer.label or "", score, answer.error or ""))
    return buffer.getvalue()


def as_table(files: Sequence[Path], answers: Sequence[Answer]) -> Table:
    table = Table(show_lines=False)
    table.add_column("file", overflow="fold")
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("error", style="red", overflow="fold")
    for path, answer in zip(files, answers, strict=True):
        score = "" if answer.score is None else f"{answer.score:.3f}"
        table.add_row(str(path), answer.label or "", score, answer.error or "")
    return table


def render(files: Sequence[Path], answers: Sequence[Answer], fmt: str) -> str:
    """The results in `fmt`; a table is drawn without colour, as wide as its content."""
    if fmt == "json":
        return as_json(files, answers)
    if fmt == "csv":
        return as_csv(files, answers)
    table = as_table(files, answers)
    console = Console(file=io.StringIO(), width=natural_width(table), color_system=None)
    with console.capture() as capture:
        console.print(table)
    return capture.get()


def natural_width(table: Table) -> int:
    """Columns `table` needs to show every cell on one line."""
    probe = Console(file=io.StringIO(), width=10_000)
    return Measurement.get(probe, probe.options, table).maximum
