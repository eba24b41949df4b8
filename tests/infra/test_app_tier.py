"""The app tier's boot: the user data, the systemd unit and the cloud-init in deploy/.

Three pieces must agree without ever running together here: the user data names the
environment file the unit reads, the unit runs the worker the install script installs,
and the cloud-init carries the unit verbatim. These tests read them and check that.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from iras.config import Settings
from iras.config.settings import environment_variable, worker_settings
from iras.infra.app_tier import (
    WORKER_ENV_FILE,
    WORKER_FAILED_UNIT,
    WORKER_UNIT,
    env_file_line,
    worker_environment,
    worker_user_data,
)

ROOT = Path(__file__).resolve().parents[2]
APP_TIER = ROOT / "deploy" / "app-tier"
UNIT_PATH = APP_TIER / WORKER_UNIT
UNIT_PATHS = sorted(APP_TIER.glob("*.service"))
CLOUD_INIT = APP_TIER / "cloud-init.yaml"
SYSTEMD_UNITS = Path("/etc/systemd/system")
#: A gateway whose every shared setting differs from its default, and whose own ones are
#: set too (they must not reach a worker).
GATEWAY = Settings(
    region="eu-west-1",
    endpoint_url="http://aws.internal:4566",
    input_bucket="in-prod",
    output_bucket="out-prod",
    state_bucket="state-prod",
    max_receive_count=5,
    execution_providers="tensorrt,cuda",
    model_precision="fp32",
    request_queue="q-prod",
    dead_letter_queue="q-prod-dlq",
    results_prefix="my results/",
    write_name_objects=False,
    visibility_timeout_s=90,
    receive_wait_s=5,
    model_name="resnet18",
    top_k=3,
    model_engine="torch",
    batch_size=16,
    batch_wait_ms=10,
    receivers=3,
    prefetch_batches=2,
    idle_exit_s=300.5,
    shutdown_grace_s=20,
    worker_metrics_port=9101,
    log_format="json",
    warm_pool=True,
    fleet="asg",
    asg_name="workers",
    leader_lease_key="lease/scaler.json",
    worker_heartbeat_s=5,
    worker_silent_s=60,
    aws_max_attempts=7,
    aws_connect_timeout_s=2.5,
    aws_client="botocore",
    # the gateway's own, never a worker's:
    instance_id="i-0123456789abcdef0",
    worker_name="gateway",
    inference_threads=3,
    model_weights=Path("/opt/gateway/weights.pt"),
    imds_url="http://169.254.169.254:81",
    instance_watch=True,
)
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


def env_file_values(content: str) -> dict[str, str]:
    """An EnvironmentFile as systemd reads it: KEY=value lines, double quotes removed."""
    lines = [line for line in content.splitlines() if line.strip() and line[0] != "#"]
    return dict(shlex.split(line)[0].split("=", 1) for line in lines)


def read_unit(path: Path) -> configparser.ConfigParser:
    """A systemd unit through configparser: keys as written, repeated keys allowed."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(), source=str(path))
    return parser


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


def test_every_shared_setting_reaches_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user data's environment, read back by `Settings` as a worker's systemd would
    hand it over, gives the worker the gateway's value of every shared setting."""
    shared = worker_settings("shared")
    at_default = [n for n in shared if getattr(GATEWAY, n) == Settings.model_fields[n].default]
    assert at_default == [], "give these a value other than their default in GATEWAY"
    files = written_files(yaml.safe_load(worker_user_data(GATEWAY)))
    environment = env_file_values(files[WORKER_ENV_FILE])
    assert environment["IRAS_WRITE_NAME_OBJECTS"] == "false"
    assert environment["IRAS_REGION"] == "eu-west-1"  # the alias a worker reads first

    for name in list(os.environ):
        if name.startswith(("IRAS_", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    worker = Settings()
    assert {n: getattr(worker, n) for n in shared} == {n: getattr(GATEWAY, n) for n in shared}


def test_the_gateways_own_settings_stay_with_it() -> None:
    environment = worker_environment(GATEWAY)
    own = {environment_variable(name) for name in worker_settings("own")}
    assert own & set(environment) == {"IRAS_INSTANCE_ID"}
    assert environment["IRAS_INSTANCE_ID"] == "auto"  # the instance's, from IMDSv2


def test_unset_settings_are_not_written() -> None:
    environment = worker_environment(Settings(endpoint_url=None))
    assert "IRAS_ENDPOINT_URL" not in environment
    assert "None" not in environment.values()


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


def test_a_worker_that_fails_for_good_ends_its_instance() -> None:
    """OnFailure= names a unit of deploy/app-tier, which powers the instance off (that
    terminates it: `worker_instance_spec`), unless the instance is to be kept."""
    worker = read_unit(UNIT_PATH)
    assert worker["Unit"]["OnFailure"] == WORKER_FAILED_UNIT
    assert int(worker["Unit"]["StartLimitBurst"]) > 1  # restarted before it is given up
    assert worker["Service"]["Restart"] == "on-failure"
    failed_path = APP_TIER / worker["Unit"]["OnFailure"]
    assert failed_path in UNIT_PATHS
    failed = read_unit(failed_path)
    assert failed["Service"]["Type"] == "oneshot"
    assert failed["Service"]["ExecStart"].split() == ["/usr/bin/systemctl", "poweroff"]
    assert "User" not in failed["Service"]  # root's to power off
    assert failed["Unit"]["ConditionPathExists"].startswith("!/etc/iras/")
    assert not failed.has_section("Install")  # started by OnFailure= alone


def test_the_bake_keeps_its_instance_and_the_image_does_not(cloud_init: dict[str, object]) -> None:
    """The instance an AMI is baked on must not power off if its worker fails; instances
    launched from the AMI must, so BAKING.md removes the marker before imaging."""
    keep = read_unit(APP_TIER / WORKER_FAILED_UNIT)["Unit"]["ConditionPathExists"][1:]
    assert keep in written_files(cloud_init)
    assert re.search(rf"sudo rm [^\n]*{re.escape(keep)}", (APP_TIER / "BAKING.md").read_text())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_units() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, UNIT_PATHS)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Here the venv and the system's own units are missing; anything else is a real problem.
    expected = re.compile(r"is not executable: No such file|Unit \S+ not found")
    problems = [line for line in result.stderr.splitlines() if not expected.search(line)]
    assert problems == []


def test_cloud_init_installs_every_unit_verbatim(cloud_init: dict[str, object]) -> None:
    files = written_files(cloud_init)
    installed = {path for path in files if path.startswith(f"{SYSTEMD_UNITS}/")}
    assert installed == {str(SYSTEMD_UNITS / path.name) for path in UNIT_PATHS}
    for path in UNIT_PATHS:
        assert files[str(SYSTEMD_UNITS / path.name)] == path.read_text(), path.name
    assert {WORKER_UNIT, WORKER_FAILED_UNIT} <= {path.name for path in UNIT_PATHS}


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


def test_cloud_init_settings_are_shared_settings(cloud_init: dict[str, object]) -> None:
    """The settings the bake's environment file offers to edit are ones a launched worker
    takes from its gateway, the resource names among them."""
    environment = env_lines(written_files(cloud_init)[WORKER_ENV_FILE])
    shared = {environment_variable(name) for name in worker_settings("shared")}
    assert set(environment) <= shared
    names = ("region", "input_bucket", "output_bucket", "request_queue", "dead_letter_queue")
    assert {environment_variable(name) for name in names} <= set(environment)
    assert environment["IRAS_IDLE_EXIT_S"] == "0"  # the baking instance must not end itself
