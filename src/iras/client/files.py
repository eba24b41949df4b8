"""Which files a command sends: image files named on the command line or found in folders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: Suffixes picked from folders (any case); the gateway accepts these formats.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")


@dataclass
class Found:
    """The files to send, in order, and what was wrong with arguments that gave none."""

    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def find_images(paths: Sequence[Path]) -> Found:
    """Files named directly (whatever their suffix: the gateway judges the content) and,
    for each folder, its image files at any depth, sorted; a folder without any or a path
    that does not exist is a problem."""
    found = Found()
    for path in paths:
        if path.is_dir():
            images = sorted(_images_under(path))
            if not images:
                found.problems.append(
                    f"{path}: no {'/'.join(IMAGE_SUFFIXES)} files in it or its subfolders"
                )
            found.files.extend(images)
        elif path.exists():
            found.files.append(path)
        else:
            found.problems.append(f"{path}: no such file or folder")
    return found


def _images_under(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            yield path


def cycled(items: Sequence[T], count: int) -> list[T]:
    """`count` items taken from `items` in order, starting again at the first when done."""
    if not items:
        raise ValueError("nothing to repeat: the list of items is empty")
    return [items[i % len(items)] for i in range(count)]
