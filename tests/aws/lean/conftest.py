"""The lean path's retry tests without their waits: stamina's test mode for this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """No backoff between a signed call's attempts; `cap` keeps each call's own
    `max_attempts` (at most 20, `IRAS_AWS_MAX_ATTEMPTS`'s bound), which the tests count."""
    with stamina.set_testing(True, attempts=20, cap=True):
        yield
