"""A progress bar on stderr with count, rate and ETA; nothing at all when it is off."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Images per second over rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- images/s" if speed is None else f"{speed:.1f} images/s")


class Bar:
    """Advance once per image; `failed` counts the images that failed so far."""

    def __init__(self, progress: Progress | None, total: int, description: str) -> None:
        self._progress = progress
        self.failed = 0
        self._task = progress.add_task(description, total=total, failed=0) if progress else None

    def advance(self, *, failed: bool = False) -> None:
        self.failed += failed
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, failed=self.failed)


def wanted(quiet: bool) -> bool:
    """Draw a bar only for a person: stderr is a terminal and --quiet was not given."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(total: int, *, enabled: bool, description: str = "classifying") -> Iterator[Bar]:
    if not enabled:
        yield Bar(None, total, description)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        yield Bar(progress, total, description)
