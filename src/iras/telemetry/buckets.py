"""The histogram buckets a stage's time and a batch's size are counted in, the same on
the gateway's `/metrics` (`iras.web.metrics`) and a worker's (`iras.worker.metrics`), so
that one dashboard query reads either."""

from __future__ import annotations

#: Every stage's histogram: 1 ms to 60 s (a warm forward pass per image takes
#: milliseconds, a cold fleet's queue wait tens of seconds).
STAGE_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: The batch-size histogram: one per power of two up to 32 (`batch_size` <= 256).
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32)
