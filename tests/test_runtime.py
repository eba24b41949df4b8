"""`iras.runtime`: CPU work on daemon threads, which never hold up a process's exit."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
import time

import pytest

from iras.runtime import in_daemon_thread

REQUEST = contextvars.ContextVar("REQUEST", default="none")


async def test_the_result_comes_back_from_a_daemon_thread() -> None:
    def work(a: int, b: int) -> tuple[int, bool, str]:
        return a + b, threading.current_thread().daemon, REQUEST.get()

    REQUEST.set("r-1")  # the caller's context goes along, as with asyncio.to_thread
    assert await in_daemon_thread(work, 2, 3) == (5, True, "r-1")


async def test_an_error_in_the_thread_is_raised_to_the_caller() -> None:
    def fail() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        await in_daemon_thread(fail)


async def test_a_cancelled_caller_drops_the_result_and_the_loop_goes_on() -> None:
    release = threading.Event()
    task = asyncio.create_task(in_daemon_thread(release.wait, 10))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()  # the thread ends; settling a cancelled outcome is no error
    await asyncio.sleep(0.05)


def test_a_process_ends_without_waiting_for_work_it_gave_up_on() -> None:
    """A worker that gives up on a batch at its stop's deadline exits then, not when the
    batch's thread ends: `asyncio.to_thread` here keeps the process up for the whole 60 s."""
    script = (
        "import asyncio, time\n"
        "from iras.runtime import in_daemon_thread, run\n"
        "async def main():\n"
        "    try:\n"
        "        await asyncio.wait_for(in_daemon_thread(time.sleep, 60), 0.2)\n"
        "    except TimeoutError:\n"
        "        return 0\n"
        "raise SystemExit(run(main()))\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], timeout=30, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert time.monotonic() - started < 10
