"""Which files `iras classify` and `iras bench` send."""

from __future__ import annotations

from pathlib import Path

import pytest

from iras.client.files import cycled, find_images


def test_folders_are_searched_at_any_depth_and_named_files_kept(tmp_path: Path) -> None:
    (tmp_path / "photos" / "2024").mkdir(parents=True)
    for name in ("photos/b.PNG", "photos/a.jpg", "photos/2024/c.webp", "photos/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    named = tmp_path / "report.pdf"
    named.write_bytes(b"%PDF")
    found = find_images([tmp_path / "photos", named])
    assert [p.relative_to(tmp_path).as_posix() for p in found.files] == [
        "photos/2024/c.webp",
        "photos/a.jpg",
        "photos/b.PNG",
        "report.pdf",  # named on the command line: the gateway judges its content
    ]
    assert found.problems == []


def test_missing_paths_and_empty_folders_are_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    found = find_images([tmp_path / "empty", tmp_path / "nope.jpg"])
    assert found.files == []
    assert [p.split(": ", 1)[1] for p in found.problems] == [
        "no .jpg/.jpeg/.png/.webp/.gif files in it or its subfolders",
        "no such file or folder",
    ]


def test_cycled_repeats_in_order() -> None:
    assert cycled(["a", "b", "c"], 7) == ["a", "b", "c", "a", "b", "c", "a"]
    assert cycled(["a", "b"], 1) == ["a"]
    with pytest.raises(ValueError, match="empty"):
        cycled([], 3)
