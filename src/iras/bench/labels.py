"""Top-1 accuracy: the label answered for each file against a labels CSV.

The CSV has at least the columns `file` and `label` (as
`../shared/data/imagenet-sample-100/labels.csv`). Files are matched by name without
folders and extension, the `name` of the course protocol's `name:label` answer, so an
answer from `/upload`, from `/v1/classify` or from the model matches the same row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from iras.messages import name_stem

REQUIRED_COLUMNS = ("file", "label")


class LabelsError(ValueError):
    """A labels file that cannot be used, with what was wrong."""


def read_labels(path: Path) -> dict[str, str]:
    """File name stem -> expected label, from a CSV with `file` and `label` columns."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return parse_labels(handle.read(), str(path))
    except OSError as error:
        raise LabelsError(f"cannot read labels file {path}: {error.strerror or error}") from None


def parse_labels(text: str, source: str = "labels") -> dict[str, str]:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise LabelsError(
            f"{source} needs the columns {', '.join(REQUIRED_COLUMNS)}; "
            f"its header has {', '.join(columns) or 'nothing'}"
        )
    return {name_stem(row["file"]): row["label"] for row in reader if row["file"]}


@dataclass(frozen=True, slots=True)
class Accuracy:
    """How many labelled answers were right; a failed image counts as wrong."""

    correct: int
    labelled: int

    @property
    def top1(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def top1(answers: Iterable[tuple[str, str | None]], expected: Mapping[str, str]) -> Accuracy:
    """Score (file name, answered label or None for a failure) pairs; files without an
    expected label are left out."""
    correct = labelled = 0
    for name, label in answers:
        wanted = expected.get(name_stem(name))
        if wanted is None:
            continue
        labelled += 1
        correct += label == wanted
    return Accuracy(correct=correct, labelled=labelled)
