"""Fixtures of the scaler's tests: settings for a small fleet the tests watch through EC2."""

from __future__ import annotations

import pytest

from iras.config import Settings


@pytest.fixture
def fleet_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "autoscaler": True,
            "worker_image_id": "ami-0123456789abcdef0",
            "max_workers": 3,
            "backlog_per_worker": 2,
            "scale_in_cooldown_s": 0.0,
        }
    )
