"""The app tier's boot: the user data, the systemd unit and the cloud-init in deploy/.

Three pieces must agree without ever running together here: the user data names the
environment file the unit reads, the unit runs the worker the install script installs,
and the cloud-init carries the unit verbatim. These tests read them and check that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from iras.config import Settings
from iras.infra.app_tier import (
    WORKER_ENV_FILE,
    WORKER_UNIT,
    env_file_line,
    worker_environment,
    worker_user_data,
)

ROOT = Path(__file__).resolve().parents[2]
APP_TIER = ROOT / "deploy" / "app-tier"
UNIT_PATH = APP_TIER / WORKER_UNIT
CLOUD_INIT = APP_TIER / "cloud-init.yaml"
#: Margin the unit's stop timeout keeps beyond the worker's worst-case stop.
STOP_MARGIN_S = 5


def unit_sections(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values, in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert current is not None and equals, f"line {number} is not key=value: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return unit_sections(UNIT_PATH.read_text())


@pytest.fixture(scope="module")
def cloud_init() -> dict[str, object]:
    text = CLOUD_INIT.read_text()
    assert text.startswith("#cloud-config\n")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def written_files(config: dict[str, object]) -> dict[str, str]:
    files = config["write_files"]
    assert isinstance(files, list)
    return {entry["path"]: entry["content"] for entry in files}


def env_lines(content: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in content.splitlines() if line and line[0] != "#")
    return dict(pairs)


def test_user_data_writes_the_env_file_the_unit_reads(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    settings = Settings(request_queue="q-prod", input_bucket="in-prod", idle_exit_s=300)
    user_data = worker_user_data(settings)
    assert user_data.startswith("#cloud-config\n")
    files = written_files(yaml.safe_load(user_data))
    assert list(files) == [WORKER_ENV_FILE] == unit["Service"]["EnvironmentFile"]
    environment = env_lines(files[WORKER_ENV_FILE])
    assert environment == worker_environment(settings)
    assert environment["IRAS_INSTANCE_ID"] == "auto"
    assert environment["IRAS_REQUEST_QUEUE"] == "q-prod"
    assert environment["IRAS_IDLE_EXIT_S"] == "300.0"
    assert Settings(**{k.removeprefix("IRAS_").lower(): v for k, v in environment.items()})


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("results/", "K=results/"),
        ("two words/", 'K="two words/"'),
        ('say "hi" \\ bye', 'K="say \\"hi\\" \\\\ bye"'),
    ],
)
def test_env_file_values_are_quoted_when_not_plain(value: str, line: str) -> None:
    assert env_file_line("K", value) == line


def test_a_line_break_cannot_go_into_the_env_file() -> None:
    with pytest.raises(ValueError, match="IRAS_RESULTS_PREFIX"):
        worker_user_data(Settings(results_prefix="a\nIRAS_REQUEST_QUEUE=evil/"))


def test_unit_restarts_on_failure_and_stops_gracefully(
    unit: dict[str, dict[str, list[str]]],
) -> None:
    service = unit["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["User"][0] not in {"root", "0"}
    assert "IRAS_INSTANCE_ID=auto" in service["Environment"]
    assert service["ExecStart"][0].endswith("/bin/iras-worker")
    # A stopping worker's whole stop (pending receives, its batch, publishing) is bounded
    # by IRAS_SHUTDOWN_GRACE_S plus the hand-back's reserve: systemd must not kill it before.
    grace_s = Settings().shutdown_grace_s
    assert int(service["TimeoutStopSec"][0]) >= grace_s + STOP_MARGIN_S
    assert unit["Unit"]["ConditionPathExists"] == [WORKER_ENV_FILE]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT_PATH)], capture_output=True, text=True, timeout=30
    )
    # Here the venv and the system's own units are missing; anything else is a real problem.
    expected = re.compile(r"is not executable: No such file|Unit \S+ not found")
    problems = [line for line in result.stderr.splitlines() if not expected.search(line)]
    assert problems == []


def test_cloud_init_carries_the_unit_verbatim(cloud_init: dict[str, object]) -> None:
    files = written_files(cloud_init)
    assert files[f"/etc/systemd/system/{WORKER_UNIT}"] == UNIT_PATH.read_text()


def test_cloud_init_installs_what_the_unit_runs(
    cloud_init: dict[str, object], unit: dict[str, dict[str, list[str]]]
) -> None:
    files = written_files(cloud_init)
    (install_path,) = (path for path in files if path.startswith("/usr/local/sbin/"))
    script = files[install_path]
    assert cloud_init["runcmd"] == [[install_path]]
    venv = unit["Service"]["ExecStart"][0].removesuffix("/bin/iras-worker")
    assert f"python3 -m venv {venv}" in script
    assert "IRAS_PACKAGE='iras[worker] @ " in script  # the model's weights and engines
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in script
    assert f"{venv}/bin/python -m iras.infra.bake" in script
    assert f"systemctl enable {WORKER_UNIT}" in script
    assert "useradd --system" in script and unit["Service"]["User"] == ["iras"]
    if shutil.which("bash"):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_cloud_init_settings_are_real_settings(cloud_init: dict[str, object]) -> None:
    environment = env_lines(written_files(cloud_init)[WORKER_ENV_FILE])
    known = {f"IRAS_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known
    assert set(worker_environment(Settings())) - {"IRAS_INSTANCE_ID"} <= set(environment)
    assert environment["IRAS_IDLE_EXIT_S"] == "0"  # the baking instance must not end itself
