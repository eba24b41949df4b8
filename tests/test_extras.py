"""A command run without its extra ends with one line that names the extra to install.

The missing packages are made missing for real, in every process a command starts: a
`sitecustomize` on PYTHONPATH puts None in `sys.modules` for them, which makes importing
one fail as if it were not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iras import extras
from iras.bench.serve_process import free_port
from tests.support import image_bytes

BLOCKER = "import sys\nsys.modules.update(dict.fromkeys({modules!r}))\n"


def run_without(
    modules: tuple[str, ...], command: list[str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run `command` (and whatever it starts) as if `modules` were not installed."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(modules=list(modules)))
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in {"IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"}
    }
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        command,
        env={**environ, "PYTHONPATH": path},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_names_what_is_missing_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert extras.check("iras serve", "local") is None  # the dev environment has it all
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setitem(sys.modules, "torch", None)
    assert extras.check("iras serve", "local") == (
        "iras serve needs torch, moto, not installed here: pip install 'iras[local]'"
    )
    assert extras.check("iras-worker", "worker") == (
        "iras-worker needs torch, not installed here: pip install 'iras[worker]'"
    )


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


WORKER = ", ".join(extras.WORKER_MODULES)


@pytest.mark.parametrize(
    ("blocked", "args", "line"),
    [
        (
            extras.EMBEDDED_AWS_MODULES,
            ["serve", "--port", "{port}"],
            "iras serve needs moto, not installed here: pip install 'iras[local]'",
        ),
        (
            extras.MODULES["local"],
            ["serve", "--port", "{port}"],
            f"iras serve needs {WORKER}, moto, not installed here: pip install 'iras[local]'",
        ),
        (
            extras.MODULES["local"],
            ["predict", "{image}"],
            f"iras predict: the model needs {WORKER}, not installed here: pip install 'iras[worker]'",
        ),
        (
            extras.MODULES["local"],
            ["bench", "--images", "{image}", "--model-only"],
            f"iras bench: --model-only needs {WORKER}, not installed here: pip install 'iras[worker]'",
        ),
    ],
    ids=["serve-without-moto", "serve-base-install", "predict", "bench-model-only"],
)
def test_an_iras_command_without_its_extra_says_which_to_install(
    blocked: tuple[str, ...], args: list[str], line: str, tmp_path: Path
) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(image_bytes())
    values = {"port": str(free_port()), "image": str(image)}
    result = run_without(blocked, python("iras", *(arg.format(**values) for arg in args)), tmp_path)
    assert (result.returncode, result.stderr.strip()) == (2, line)


def test_a_worker_without_its_extra_logs_one_line_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRAS_LOG_FORMAT", "text")  # a pipe's default is JSON
    # Nothing listens on port 9: the worker must stop before it asks AWS anything.
    command = python("iras.worker", "--endpoint-url", "http://127.0.0.1:9", "--idle-exit-s", "1")
    result = run_without(extras.MODULES["local"], command, tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.endswith(
        f"ERROR iras.worker: the model needs {', '.join(extras.WORKER_MODULES)}, "
        "not installed here: pip install 'iras[worker]'"
    )
