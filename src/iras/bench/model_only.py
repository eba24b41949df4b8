"""The bare model on the same images: the reference the service is measured against.

Images go through `Classifier.classify` in batches of `batch_size`, in this process, one
batch after another; every image of a batch has the batch's time as its latency. One
batch runs first, unmeasured, so that one-off costs (memory allocation, the first pass
through the graph) do not count. CPU is this process's (all its threads) over the
measured batches, so it includes decoding, as the workers' CPU does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iras.bench.report import Outcome
from iras.model import Classifier, ImageError


@dataclass
class ModelRun:
    outcomes: list[Outcome]
    wall_s: float
    cpu_s: float


def run_model(
    classifier: Classifier,
    items: Sequence[tuple[str, bytes]],
    batch_size: int,
    on_image: Callable[[bool], None] = lambda failed: None,
) -> ModelRun:
    """Classify every (name, bytes) item in batches; `on_image(failed)` after each image."""
    classifier.classify([blob for _, blob in items[:batch_size]])  # warm-up, not measured
    outcomes: list[Outcome] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        sent = time.perf_counter()
        results = classifier.classify([blob for _, blob in batch])
        done = time.perf_counter()
        for (name, _), result in zip(batch, results, strict=True):
            failed = isinstance(result, ImageError)
            outcomes.append(
                Outcome(
                    name,
                    done - started,
                    done - sent,
                    label=None if isinstance(result, ImageError) else result.label,
                    error=result.reason if isinstance(result, ImageError) else None,
                )
            )
            on_image(failed)
    wall_s = time.perf_counter() - started
    return ModelRun(outcomes, wall_s, time.process_time() - cpu_started)
