"""`open_clients` puts the implementation `aws_client` chooses behind the interfaces, and
says so when "auto" turns from the lean path."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from iras.aws import open_clients
from iras.aws.boto import BotoMessages, BotoObjects
from iras.aws.lean import S3Objects, SqsMessages
from iras.config import Settings
from iras.local_aws import dummy_credentials
from tests.tls import answer_ok, self_signed, tls_serving

CHOSEN = "iras.aws.clients"


@pytest.mark.parametrize(("setting", "lean"), [("auto", True), ("lean", True), ("botocore", False)])
async def test_the_setting_chooses_the_implementation(
    settings: Settings, caplog: pytest.LogCaptureFixture, setting: str, lean: bool
) -> None:
    with caplog.at_level(logging.INFO, logger=CHOSEN):
        async with open_clients(settings.model_copy(update={"aws_client": setting})) as aws:
            assert isinstance(aws.objects, S3Objects if lean else BotoObjects)
            assert isinstance(aws.messages, SqsMessages if lean else BotoMessages)
    assert not caplog.records  # nothing to explain


async def test_auto_takes_botocore_through_a_proxy_and_says_why(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://someone:secret@proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with caplog.at_level(logging.INFO, logger=CHOSEN):
        async with open_clients(settings) as aws:
            assert isinstance(aws.objects, BotoObjects)
            assert isinstance(aws.messages, BotoMessages)
    (line,) = [r for r in caplog.records if r.name == CHOSEN]
    assert line.levelno == logging.INFO
    assert "on botocore" in line.getMessage() and "proxy.invalid:3128" in line.getMessage()
    assert "secret" not in line.getMessage()


async def test_lean_by_choice_warns_of_what_it_ignores(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    lean = settings.model_copy(update={"aws_client": "lean"})
    with caplog.at_level(logging.INFO, logger=CHOSEN):
        async with open_clients(lean) as aws:
            assert isinstance(aws.objects, S3Objects)
    (line,) = [r for r in caplog.records if r.name == CHOSEN]
    assert line.levelno == logging.WARNING and "FIPS" in line.getMessage()


async def test_the_lean_path_trusts_the_ca_bundle_botocore_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ca_bundle` in the AWS config file, not only AWS_CA_BUNDLE, as botocore reads it."""
    certificate = self_signed(tmp_path)
    config_file = tmp_path / "config"
    config_file.write_text(f"[default]\nca_bundle = {certificate.cert_pem}\n")
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    for name, value in dummy_credentials(os.environ).items():
        monkeypatch.setenv(name, value)
    async with tls_serving(certificate, answer_ok) as url:
        settings = Settings(endpoint_url=url, aws_client="lean", aws_max_attempts=1)
        async with open_clients(settings) as aws:
            assert await aws.objects.get("b-1", "k") == b"ok"
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        async with open_clients(settings) as aws:
            with pytest.raises(EndpointConnectionError):
                await aws.objects.get("b-1", "k")
