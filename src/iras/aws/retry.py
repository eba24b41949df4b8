"""Jittered exponential backoff, as a pure function of the attempt number."""

from __future__ import annotations

import random


def backoff_s(attempt: int, base_s: float = 0.2, cap_s: float = 10.0) -> float:
    """Full-jitter backoff: a random wait up to base * 2^attempt, capped at `cap_s`.

    Full jitter spreads the retries of many clients that failed together (a restarted
    endpoint), instead of bringing them back in lockstep.
    """
    return random.uniform(0, min(cap_s, base_s * 2 ** min(attempt, 32)))
