"""Start `iras serve` as a child process on free ports, wait until ready, stop it after.

The child is started as a user would (`python -m iras serve`), with its output in a log
file that is shown when it fails to start. Stopping is Ctrl-C's path (SIGINT: the
gateway, then its workers gracefully, then the embedded AWS), then SIGTERM, then SIGKILL
if it does not exit in time.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Longest wait for `GET /readyz` to answer 200 after starting.
READY_TIMEOUT_S = 120.0
#: Longest wait for the process to exit after each stop signal.
STOP_TIMEOUT_S = 60.0
#: Lines of the log shown when the service fails to start.
LOG_TAIL_LINES = 20


class ServeFailed(RuntimeError):
    """`iras serve` exited or did not become ready; the message ends with its log's tail."""


@dataclass(frozen=True, slots=True)
class Served:
    url: str
    pid: int
    log_path: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(extra_args: Sequence[str] = ()) -> Iterator[Served]:
    """`iras serve` on free ports, ready, for the duration of the block.

    Its result cache is off unless IRAS_RESULT_CACHE says otherwise: a benchmark sends the
    same images again and again, and measures the fleet, not the cache.
    """
    port, aws_port = free_port(), free_port()
    command = [sys.executable, "-m", "iras", "serve", "--port", str(port)]
    command += ["--aws-port", str(aws_port), *extra_args]
    with tempfile.NamedTemporaryFile(
        prefix="iras-bench-serve-", suffix=".log", delete=False
    ) as log:
        log_path = Path(log.name)
        env = {**os.environ, "IRAS_RESULT_CACHE": os.environ.get("IRAS_RESULT_CACHE", "false")}
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(process, port, log_path)
        yield Served(f"http://127.0.0.1:{port}", process.pid, log_path)
    finally:
        if stop(process) == 0:
            log_path.unlink(missing_ok=True)  # kept when something went wrong


def wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeFailed(
                f"iras serve exited with code {process.returncode}; {_tail(log_path)}"
            )
        if _ready(port):
            return
        time.sleep(0.2)
    raise ServeFailed(f"iras serve not ready within {READY_TIMEOUT_S:g} s; {_tail(log_path)}")


def _ready(port: int) -> bool:
    """Whether `GET /readyz` answers 200; the standard library suffices for one poll."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes]) -> int:
    """Stop `process` gently, then firmly; its exit code."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        if process.poll() is not None:
            return process.returncode
        process.send_signal(stop_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(STOP_TIMEOUT_S)
    process.kill()
    return process.wait()


def _tail(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return f"the end of its log ({log_path}):\n" + "\n".join(lines)
