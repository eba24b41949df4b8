"""How a long-running IRAS process runs: on uvloop, and with its start-up objects kept
away from the garbage collector.

uvloop: a worker makes thousands of small network calls a minute, and asyncio's
pure-Python event loop costs a share of each (measured: an S3 call on the lean path,
~1.1 ms of client CPU on asyncio, ~0.8 ms on uvloop). The gateway gets uvloop from
uvicorn; `run` gives it to the other long-running process. Where uvloop is missing
(Windows, PyPy) the standard loop runs the same code.

The collector: importing botocore, FastAPI and ONNX Runtime (or PyTorch), and loading a
model, leaves a long-lived process with ~100,000 container objects that live as long as
it does. Every full collection walks all of them: measured under load, the collector
took 11% of the gateway's event-loop CPU. `freeze_startup_objects` moves them to a
generation that collections skip; everything made afterwards is collected as before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, on uvloop when available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, then exempt the survivors from collection.

    Call it once, when a process has finished starting and before it takes work.
    """
    gc.collect()
    gc.freeze()
    log.debug("%d objects exempted from garbage collection", gc.get_freeze_count())
