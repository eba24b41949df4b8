"""The CSE546 course preset: the course's names from one id, explicit settings winning,
and the same set-up printed for `iras gateway` on AWS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from iras.config import Settings
from iras.config.course import apply_course_preset, course_environment

STUDENT = "1234567890"


def preset_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings as a command builds them with `env` set (the preset filled in first)."""
    for name in list(os.environ):
        if name.startswith("IRAS_") or name == "AWS_REGION":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name, value in apply_course_preset(dict(os.environ)).items():
        monkeypatch.setenv(name, value)  # undone after the test, as the above
    return Settings()


def test_the_course_names_everything_after_the_student_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = preset_settings(monkeypatch, IRAS_COURSE_ID=STUDENT)
    assert settings.course_id == STUDENT
    assert settings.input_bucket == f"{STUDENT}-in-bucket"
    assert settings.output_bucket == f"{STUDENT}-out-bucket"
    assert settings.request_queue == f"{STUDENT}-req-queue"
    assert settings.reply_queue == f"{STUDENT}-resp-queue"
    assert settings.max_workers == 15 and settings.min_workers == 0
    assert settings.worker_name_prefix == "app-tier-instance"
    assert settings.web_instance_name == "web-instance"
    assert settings.region == "us-east-1"
    # A burst of 100 asks for more than the cap: the course scores reaching it.
    assert 100 / settings.backlog_per_worker >= 15
    # IRAS's own records apart: the output bucket holds the course's objects only.
    assert settings.records_bucket not in (settings.input_bucket, settings.output_bucket)


def test_what_is_set_explicitly_wins_and_the_region_is_the_scripts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = preset_settings(
        monkeypatch, IRAS_COURSE_ID=STUDENT, IRAS_MAX_WORKERS="4", AWS_REGION="us-west-2"
    )
    assert settings.max_workers == 4
    assert settings.region == "us-west-2"
    assert settings.input_bucket == f"{STUDENT}-in-bucket"


def test_without_a_course_id_nothing_changes() -> None:
    env = {"IRAS_INPUT_BUCKET": "mine"}
    assert apply_course_preset(env) == {}
    assert env == {"IRAS_INPUT_BUCKET": "mine"}


@pytest.mark.parametrize("bad", ["Upper", "with_underscore", "-dash", "x" * 49, "a.b"])
def test_an_id_that_cannot_name_buckets_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="lower-case"):
        course_environment(bad)
    with pytest.raises(ValueError, match="lower-case"):
        Settings(course_id=bad)


def run_iras(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IRAS_") and k != "AWS_REGION"}
    return subprocess.run(
        [sys.executable, "-m", "iras", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_print_env_gives_the_same_settings_for_iras_gateway() -> None:
    """`iras serve --course <id> --print-env`: an env file that, given to any command,
    makes the same settings as the preset."""
    printed = run_iras("serve", "--course", STUDENT, "--print-env", env={})
    assert printed.returncode == 0, printed.stderr
    lines = [line for line in printed.stdout.splitlines() if line and not line.startswith("#")]
    env = dict(line.split("=", 1) for line in lines)
    assert env == {**course_environment(STUDENT), "IRAS_REGION": "us-east-1"}
    in_the_region = run_iras(
        "serve", "--course", STUDENT, "--print-env", env={"IRAS_REGION": "us-west-2"}
    )
    assert "IRAS_REGION=us-west-2" in in_the_region.stdout

    refused = run_iras("serve", "--course", "Not_An_Id", "--print-env", env={})
    assert refused.returncode == 2
    assert "IRAS_COURSE_ID" in refused.stderr and "lower-case" in refused.stderr
    without = run_iras("serve", "--print-env", env={})
    assert without.returncode == 2 and "--course" in without.stderr
