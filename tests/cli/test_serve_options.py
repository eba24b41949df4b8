"""`iras serve`'s options reach the settings of the processes it starts."""

from __future__ import annotations

import os

import pytest

from iras.cli import build_parser, main


def test_latency_target_is_an_option() -> None:
    args = build_parser().parse_args(["serve", "--latency-target-s", "2.5"])
    assert args.latency_target_s == 2.5
    assert build_parser().parse_args(["serve"]).latency_target_s is None


def test_latency_target_goes_to_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through IRAS_LATENCY_TARGET_S, so every process sees it; a bad one stops at once,
    before anything is started, with the variable named."""
    monkeypatch.setenv("IRAS_LATENCY_TARGET_S", "1")  # restored after the test
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--latency-target-s", "-3"])
    assert stopped.value.code == 2
    assert os.environ["IRAS_LATENCY_TARGET_S"] == "-3.0"
    assert "IRAS_LATENCY_TARGET_S" in capsys.readouterr().err
