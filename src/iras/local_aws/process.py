"""Start the embedded AWS as a child process, wait until it answers, stop it.

The port is bound here, in the caller: a taken port is an immediate error that says
what to do, not a child that dies later. The child (`python -m iras.local_aws`, see
`server.py`) receives the listening socket, a pipe to say it is ready, and the read end
of a "life pipe" whose write end only this process holds: when this process ends, in
whatever way, the child sees the pipe close and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

#: Longest wait for the child to import moto and answer (about 2 s on a 2-core VM).
START_TIMEOUT_S = 60.0
#: How long the child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0


class EmbeddedAwsError(RuntimeError):
    """The embedded AWS's process did not start."""


def bind_loopback(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port), or a clear OSError.

    Loopback only: the embedded AWS accepts any credentials, so it must never be
    reachable from another machine.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((LOOPBACK, port))
    except OSError as error:
        listener.close()
        raise OSError(
            f"cannot start the embedded AWS on {LOOPBACK}:{port}: {error.strerror}; "
            "choose another port (iras serve --aws-port), or 0 for any free one"
        ) from None
    listener.listen(128)
    return listener


@contextlib.contextmanager
def embedded_aws(port: int = 0) -> Iterator[str]:
    """Run moto's server in a child process on 127.0.0.1:`port`; yield its endpoint URL.

    The endpoint answers as soon as this yields; leaving the block stops the child.
    """
    listener = bind_loopback(port)
    endpoint = f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    ready_read, ready_write = os.pipe()
    life_read, life_write = os.pipe()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iras.local_aws",
                f"--listen-fd={listener.fileno()}",
                f"--ready-fd={ready_write}",
                f"--parent-fd={life_read}",
            ],
            pass_fds=(listener.fileno(), ready_write, life_read),
            start_new_session=True,  # a terminal's Ctrl-C is for the parent, which stops it
        )
    except BaseException:
        for fd in (ready_read, ready_write, life_read, life_write):
            os.close(fd)
        raise
    finally:
        listener.close()  # the child holds the socket now
    os.close(ready_write)
    os.close(life_read)
    try:
        _wait_ready(child, ready_read)
        log.info("embedded AWS (moto, pid %d) listening on %s", child.pid, endpoint)
        yield endpoint
    finally:
        _stop(child)
        os.close(life_write)


def _wait_ready(child: subprocess.Popen[bytes], ready_read: int) -> None:
    try:
        readable, _, _ = select.select([ready_read], [], [], START_TIMEOUT_S)
        line = os.read(ready_read, 64) if readable else b""
    finally:
        os.close(ready_read)
    if line.startswith(b"ready"):
        return
    if readable:  # end of file: the child exited before it was ready
        code = child.wait()
        raise EmbeddedAwsError(f"the embedded AWS exited with code {code} while starting")
    raise EmbeddedAwsError(f"the embedded AWS did not start within {START_TIMEOUT_S:g} s")


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
