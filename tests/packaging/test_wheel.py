"""The wheel, installed (not editable) in a fresh environment, serves the whole service.

`pip install .` is how the web image and an app-tier instance get IRAS, and nothing of
the checkout is there at run time: the live page must come inside the package. So the
wheel is built from the files the images are built from (the allow-list of
.dockerignore), installed into a new virtual environment outside the checkout, and its
`iras serve` must answer the page, its scripts and a course upload. The dependencies
(torch and the rest) are this environment's, lent to the new one by a .pth file, so
nothing is downloaded; IRAS itself must come from the wheel, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from iras.bench.serve_process import free_port, stop, wait_ready
from tests.support import image_bytes

ROOT = Path(__file__).resolve().parents[2]
#: What a wheel is built from: the images' build context, .dockerignore's allow-list.
BUILD_INPUTS = [
    line.removeprefix("!")
    for line in (ROOT / ".dockerignore").read_text().splitlines()
    if line.startswith("!")
]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]

pytestmark = pytest.mark.slow


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the build inputs (the checkout gets no build/ or egg-info).

    Without build isolation, so the build backend is this environment's (the dev extra
    has it) and nothing is downloaded.
    """
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(dist), str(source)],
        check=True,
        timeout=120,
    )
    [wheel] = dist.glob("iras-*.whl")
    return wheel


def fresh_environment(tmp_path: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed and, through a .pth file, this
    environment's packages for its dependencies; its interpreter."""
    home = tmp_path / "venv"
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    # Written after the install, so that pip saw no other IRAS there. The lent folder
    # comes after the new environment's own on sys.path, and the .pth files in it (this
    # checkout's editable install) are not read: `import iras` finds the wheel's.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "lent-dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return python


def test_an_installed_wheel_serves_the_page_and_answers(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert {"iras/static/index.html", "iras/static/js/main.js"} <= set(archive.namelist())
    python = fresh_environment(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"  # the working directory: no checkout in sight
    elsewhere.mkdir()
    environ = {
        name: value
        for name, value in os.environ.items()
        if name not in {"IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL", "PYTHONPATH"}
    }
    where = subprocess.run(
        [str(python), "-c", "import iras.web.app as a; print(a.__file__, a.DEFAULT_STATIC_DIR)"],
        cwd=elsewhere,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(python.parents[1]) for path in where), where

    port, aws_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(python.parent / "iras"),
                "serve",
                "--port",
                str(port),
                "--aws-port",
                str(aws_port),
            ],
            cwd=elsewhere,
            env={**environ, "IRAS_INFERENCE_THREADS": "1", "IRAS_MAX_WORKERS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(process, port, log_path)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            page = http.get("/")
            assert page.status_code == 200
            assert page.text.lstrip().lower().startswith("<!doctype html>")
            script = http.get("/js/main.js")
            assert script.status_code == 200
            assert "javascript" in script.headers["content-type"]
            files = {"myfile": ("wheel_00.jpg", image_bytes(), "image/jpeg")}
            answer = http.post("/upload", files=files)
            assert answer.status_code == 200, answer.text
            name, _, label = answer.text.partition(":")
            assert name == "wheel_00" and label
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, log_path.read_text()
    finally:
        stop(process)
