"""API keys: digests, not keys, identify callers; a key comes in a header (or a WebSocket's
subprotocol), never in the URL; short keys are refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from iras.config import Settings
from iras.config.loading import load_settings
from iras.web.api_keys import (
    ApiKeys,
    Unauthorized,
    accepted_subprotocol,
    decode_key_subprotocol,
    key_digest,
    key_subprotocol,
    may_see,
    presented_key,
)


def test_without_keys_everyone_is_anyone() -> None:
    keys = ApiKeys([])
    assert not keys.required
    assert keys.authenticate(None) is None and keys.authenticate("whatever") is None


def test_with_keys_only_a_valid_key_is_someone() -> None:
    keys = ApiKeys(["alpha-key-0123456789", "beta-key-0123456789"])
    assert keys.required
    alpha = keys.authenticate("alpha-key-0123456789")
    assert alpha == key_digest("alpha-key-0123456789") and "alpha-key" not in str(alpha)
    assert alpha != keys.authenticate("beta-key-0123456789")
    for wrong in ("gamma-key-0123456789", "", None):
        with pytest.raises(Unauthorized):
            keys.authenticate(wrong)


def test_a_job_is_seen_by_its_owner_and_an_unowned_job_by_all() -> None:
    assert may_see("alpha", "alpha") and not may_see("alpha", "beta")
    assert not may_see("alpha", None)
    assert may_see(None, "beta") and may_see(None, None)


K3 = key_subprotocol("k3")


@pytest.mark.parametrize(
    ("headers", "subprotocols", "key"),
    [
        ({"x-api-key": "k1"}, [], "k1"),
        ({"authorization": "Bearer k2"}, [], "k2"),
        ({"authorization": "Basic k2"}, [], None),
        ({}, ["iras", K3], "k3"),
        ({"x-api-key": "k1"}, ["iras", K3], "k1"),
        ({}, ["iras"], None),
        ({}, ["iras.key.%%%"], None),  # not base64url: no key
        ({}, [], None),
    ],
)
def test_presented_key(headers: dict[str, str], subprotocols: list[str], key: str | None) -> None:
    assert presented_key(headers, subprotocols) == key


@pytest.mark.parametrize(
    "key",
    ["plain-key-0123456789", "with/slash+plus=equals, comma", "schl\u00fcssel-\U0001f511-unicode"],
)
def test_any_key_travels_as_a_subprotocol_token(key: str) -> None:
    """base64url: a subprotocol is an HTTP token (no `/`, `=`, `,`, spaces), a key needn't be."""
    encoded = key_subprotocol(key)
    token = encoded.removeprefix("iras.key.")
    assert token and all(c.isalnum() or c in "-_" for c in token), encoded
    assert decode_key_subprotocol(encoded) == key


def test_the_socket_is_accepted_with_iras_never_the_key() -> None:
    assert accepted_subprotocol(["iras", key_subprotocol("secret-key-0123456789")]) == "iras"
    assert accepted_subprotocol([key_subprotocol("secret-key-0123456789")]) is None
    assert accepted_subprotocol([]) is None


def test_keys_shorter_than_16_characters_are_refused() -> None:
    keys = ("a" * 16, "b" * 40)
    assert Settings.model_validate({"api_keys": keys}).api_keys == keys
    with pytest.raises(ValidationError, match="key 2 of 2 has 15 characters"):
        Settings.model_validate({"api_keys": ("a" * 16, "b" * 15)})


def test_a_short_key_stops_a_command_with_a_message_that_hides_the_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IRAS_API_KEYS", "a-long-enough-key-000,short-key")
    with pytest.raises(SystemExit) as exit_info:
        load_settings()
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "IRAS_API_KEYS" in message and "at least 16" in message
    assert "short-key" not in message and "a-long-enough-key" not in message
