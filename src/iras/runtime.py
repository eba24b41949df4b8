"""How a long-running IRAS process runs: on uvloop, with its start-up objects kept away
from the garbage collector, and with CPU work on threads that never hold up its exit.

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

Threads: a worker's batch runs in a thread so that the event loop goes on (downloads,
publishing, heartbeats). `asyncio.to_thread` would put it on the loop's default
executor, whose threads `asyncio.run` and the interpreter's exit both wait for: a
stopping worker that gave up on a batch still running at the end of its
`IRAS_SHUTDOWN_GRACE_S` would then stay up until the batch ended, however long, and be
killed by its container or unit instead of exiting 0. `in_daemon_thread` runs it on a
daemon thread of its own (one per call: ~0.1 ms, against tens of milliseconds a batch),
which the process leaves behind when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import threading
from collections.abc import Callable, Coroutine
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


async def in_daemon_thread(function: Callable[..., T], *args: object) -> T:
    """`await asyncio.to_thread(function, *args)`, on a daemon thread of its own.

    Cancelling the caller does not stop `function` (no thread can be stopped): its
    result, when it comes, is dropped. The process may end before it does.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(settle_with: Callable[[Any], None], value: Any) -> None:
        if not outcome.cancelled():
            settle_with(value)

    def work() -> None:
        answer: tuple[Callable[[Any], None], Any]
        try:
            result = context.run(function, *args)
        except BaseException as error:  # handed to the awaiting coroutine
            answer = (outcome.set_exception, error)
        else:
            answer = (outcome.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *answer)

    name = getattr(function, "__qualname__", "work")
    threading.Thread(target=work, name=f"iras-{name}", daemon=True).start()
    return await outcome
