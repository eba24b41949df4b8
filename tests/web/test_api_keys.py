"""API keys: digests, not keys, identify callers; a key may come three ways."""

from __future__ import annotations

import pytest

from iras.web.api_keys import ApiKeys, Unauthorized, key_digest, may_see, presented_key


def test_without_keys_everyone_is_anyone() -> None:
    keys = ApiKeys([])
    assert not keys.required
    assert keys.authenticate(None) is None and keys.authenticate("whatever") is None


def test_with_keys_only_a_valid_key_is_someone() -> None:
    keys = ApiKeys(["alpha-key", "beta-key"])
    assert keys.required
    alpha = keys.authenticate("alpha-key")
    assert alpha == key_digest("alpha-key") and "alpha-key" not in str(alpha)
    assert alpha != keys.authenticate("beta-key")
    for wrong in ("gamma-key", "", None):
        with pytest.raises(Unauthorized):
            keys.authenticate(wrong)


def test_a_job_is_seen_by_its_owner_and_an_unowned_job_by_all() -> None:
    assert may_see("alpha", "alpha") and not may_see("alpha", "beta")
    assert not may_see("alpha", None)
    assert may_see(None, "beta") and may_see(None, None)


@pytest.mark.parametrize(
    ("headers", "query", "key"),
    [
        ({"x-api-key": "k1"}, {}, "k1"),
        ({"authorization": "Bearer k2"}, {}, "k2"),
        ({"authorization": "Basic k2"}, {}, None),
        ({}, {"api_key": "k3"}, "k3"),
        ({"x-api-key": "k1"}, {"api_key": "k3"}, "k1"),
        ({}, {}, None),
    ],
)
def test_presented_key(headers: dict[str, str], query: dict[str, str], key: str | None) -> None:
    assert presented_key(headers, query) == key
