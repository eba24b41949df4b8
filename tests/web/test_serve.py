"""`iras serve` as a user runs it: everything starts, answers, and Ctrl-C leaves nothing."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from tests.support import image_bytes
from tests.web.conftest import ServedProcess


def processes_using(endpoint: str) -> list[int]:
    """Pids of live processes whose environment points at `endpoint` (serve's workers)."""
    marker = f"IRAS_ENDPOINT_URL={endpoint}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == 0


async def test_serve_answers_and_ctrl_c_stops_everything(served: ServedProcess) -> None:
    assert served.process is not None
    response = await served.http.post("/upload", files={"myfile": ("test_00.jpg", image_bytes())})
    assert response.status_code == 200 and response.text.startswith("test_00:")
    assert (await served.http.get("/")).text.lstrip().lower().startswith("<!doctype html>")
    workers = processes_using(served.aws_endpoint)
    assert len(workers) >= 1  # the local worker processes

    served.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(asyncio.to_thread(served.process.wait), 60) == 0
    assert processes_using(served.aws_endpoint) == []
    assert not port_open(served.url) and not port_open(served.aws_endpoint)
