"""The CLI's client commands run against a real gateway with a real worker and model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from iras.cli import main
from iras.model import Classifier, Prediction
from tests.support import image_bytes

# The gateway fixtures of the web tests, reused as they are.
from tests.web.conftest import gateway_settings, service  # noqa: F401 - fixtures for pytest


@dataclass
class Ran:
    code: int
    out: str
    err: str


#: Runs `iras ARGS...` and answers its exit code and output.
Iras = Callable[..., Awaitable[Ran]]


@pytest.fixture
def iras(capsys: pytest.CaptureFixture[str]) -> Iras:
    """Run `iras ARGS...` in a thread (the gateway fixture owns this test's event loop)."""

    async def run(*args: str) -> Ran:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Three small images, one of them in a subfolder."""
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    (folder / "red.jpg").write_bytes(image_bytes(seed=1))
    (folder / "green.png").write_bytes(image_bytes(color=(30, 200, 60), fmt="PNG", seed=2))
    (folder / "more" / "blue.jpg").write_bytes(image_bytes(color=(20, 40, 220), seed=3))
    return folder


def labels_of(classifier: Classifier, paths: Sequence[Path]) -> dict[str, str]:
    """File name -> the label the model gives it."""
    outcomes = classifier.classify([path.read_bytes() for path in paths])
    return {
        path.name: outcome.label
        for path, outcome in zip(paths, outcomes, strict=True)
        if isinstance(outcome, Prediction)
    }
