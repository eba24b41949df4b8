"""Settings: documented, safe defaults, environment names, clear failures."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from iras.config import Settings
from iras.config.loading import load_settings


def test_every_field_is_documented() -> None:
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "IRAS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.endpoint_url is None and settings.region == "us-east-1"
    assert settings.model_name == "efficientnet_lite0"


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"IRAS_BATCH_SIZE": "32"}, "batch_size", 32),
        ({"IRAS_ENDPOINT_URL": "http://127.0.0.1:4566/"}, "endpoint_url", "http://127.0.0.1:4566"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "endpoint_url", "http://127.0.0.1:9"),
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, "region", "eu-west-1"),
        ({"IRAS_RESULTS_PREFIX": "out"}, "results_prefix", "out/"),
        ({"IRAS_INPUT_BUCKET": "my-in"}, "input_bucket", "my-in"),
        ({"IRAS_GATEWAY_ID": "web-1_a"}, "gateway_id", "web-1_a"),
        ({"IRAS_GATEWAY_ID": ""}, "gateway_id", None),
        # iras-replies- (13) + 67 = 80 characters, SQS's longest queue name.
        ({"IRAS_GATEWAY_ID": "g" * 67}, "gateway_id", "g" * 67),
    ],
)
def test_environment_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, value: object
) -> None:
    for name in ("AWS_ENDPOINT_URL", "IRAS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    assert getattr(Settings(), field) == value


@pytest.mark.parametrize(
    "env",
    [
        {"IRAS_BATCH_SIZE": "0"},
        {"IRAS_RECEIVE_WAIT_S": "21"},
        {"IRAS_ENDPOINT_URL": "localhost:4566"},
        {"IRAS_REQUEST_QUEUE": "same", "IRAS_DEAD_LETTER_QUEUE": "same"},
        {"IRAS_GATEWAY_ID": "web.1"},  # not allowed in a queue name
        {"IRAS_GATEWAY_ID": "g" * 68},  # iras-replies-ggg... is 81 characters
        {"IRAS_GATEWAY_ID": "g" * 60, "IRAS_REPLY_QUEUE_PREFIX": "a-longer-reply-prefix"},
        {"IRAS_WORKER_HEARTBEAT_S": "10", "IRAS_WORKER_SILENT_S": "20"},  # 2 beats: too eager
        # Results at the bucket's root would share keys with name objects: an upload named
        # `<request id>.json.jpg` would write its label over that request's result.
        {"IRAS_RESULTS_PREFIX": ""},
        {"IRAS_RESULTS_PREFIX": "/"},
        {"IRAS_RESULTS_PREFIX": "jobs/"},  # the manifests' folder: a result over a manifest
        {"IRAS_RESULTS_PREFIX": "inputs/late"},
        {"IRAS_RESULTS_PREFIX": "scaler/"},  # the lease would be a result
        {"IRAS_FLEET": "spot"},
        {"IRAS_LEADER_LEASE_S": "1"},
        # At the root the lease shares keys with name objects: `lease.json.jpg` would
        # overwrite it (and the app tier's Deny on it would fail that upload's results).
        {"IRAS_LEADER_LEASE_KEY": "lease.json"},
        {"IRAS_LEADER_LEASE_KEY": "/lease.json"},
        {"IRAS_LEADER_LEASE_KEY": "scaler/"},
        {"IRAS_LEADER_LEASE_KEY": "jobs/lease.json"},  # a manifest's key
        {"IRAS_RESULTS_PREFIX": "claims/"},  # reply queues' claims (IRAS_REPLY_QUEUE)
        {"IRAS_RESULTS_PREFIX": "models/"},  # the workers' model records (GET /v1/models)
        {"IRAS_REPLY_QUEUE": "bad name"},
        {"IRAS_REPLY_QUEUE": "iras-requests"},  # replies taken for requests
        {"IRAS_COURSE_ID": "Not_An_Id"},
    ],
)
def test_bad_values_fail_fast(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    with pytest.raises(ValidationError):
        Settings()


def test_command_line_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRAS_BATCH_WAIT_MS", "-1")
    with pytest.raises(SystemExit) as exit_info:
        load_settings()
    assert exit_info.value.code == 2
    assert "IRAS_BATCH_WAIT_MS" in capsys.readouterr().err


def test_readme_configuration_table_is_current() -> None:
    from pathlib import Path

    from iras.config.table import END_MARKER, START_MARKER, markdown_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split(START_MARKER, 1)[1].split(END_MARKER, 1)[0].strip()
    assert section == markdown_table(), "run `python -m iras.config.table` into the README"
