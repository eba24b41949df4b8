"""Top-1 against a labels CSV, matched by file name without folders and extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from iras.bench.labels import LabelsError, parse_labels, read_labels, top1

CSV = """file,synset,class_index,label
n01440764_tench.JPEG,n01440764,0,tench
n01601694_water_ouzel.JPEG,n01601694,20,water ouzel
"""


def test_labels_are_keyed_by_stem() -> None:
    assert parse_labels(CSV) == {
        "n01440764_tench": "tench",
        "n01601694_water_ouzel": "water ouzel",
    }


def test_a_file_without_the_columns_says_which_it_has(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("name,class\na.jpg,cat\n")
    with pytest.raises(LabelsError, match=r"needs the columns file, label; .* has name, class"):
        read_labels(path)
    with pytest.raises(LabelsError, match="cannot read labels file"):
        read_labels(tmp_path / "missing.csv")


def test_top1_counts_labelled_answers_and_failures_as_wrong() -> None:
    expected = parse_labels(CSV)
    answers = [
        ("n01440764_tench.JPEG", "tench"),  # right
        ("dir/n01440764_tench.jpg", "tench"),  # right: folders and extension do not matter
        ("n01601694_water_ouzel.JPEG", "goldfish"),  # wrong
        ("n01601694_water_ouzel.JPEG", None),  # failed: wrong
        ("unlabelled.png", "tench"),  # not in the CSV: left out
    ]
    accuracy = top1(answers, expected)
    assert (accuracy.correct, accuracy.labelled) == (2, 4)
    assert accuracy.top1 == 0.5
    assert top1([], expected).top1 is None
