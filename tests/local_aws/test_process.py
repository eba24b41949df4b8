"""The embedded AWS: its own process on loopback, clear errors, keep-alive, and a call count."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from iras.local_aws import CALLS_PATH, dummy_credentials, embedded_aws


def child_pids(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_embedded_aws_serves_on_loopback_from_its_own_process_and_stops() -> None:
    before = set(child_pids(os.getpid()))  # the session's embedded AWS, perhaps
    with embedded_aws(port=0) as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        (child,) = set(child_pids(os.getpid())) - before
        assert "iras.local_aws" in Path(f"/proc/{child}/cmdline").read_text()
        with urllib.request.urlopen(f"{endpoint}/moto-api/reset", data=b"", timeout=10) as r:
            assert r.status == 200
    assert not alive(child)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/moto-api/reset", data=b"", timeout=2)


def test_taken_port_is_a_clear_error(aws_endpoint: str) -> None:
    port = int(aws_endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="--aws-port"), embedded_aws(port=port):
        pass


_PARENT = """
import sys
from iras.local_aws import embedded_aws
with embedded_aws(0) as endpoint:
    print(endpoint, flush=True)
    sys.stdin.read()
"""


def test_the_embedded_aws_dies_with_its_parent_however_it_ends() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        endpoint = parent.stdout.readline().decode().strip()
        (child,) = child_pids(parent.pid)
        with urllib.request.urlopen(f"{endpoint}{CALLS_PATH}", timeout=10) as answer:
            assert answer.status == 200
        parent.send_signal(signal.SIGKILL)  # no finally, no goodbye
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        parent.kill()
        parent.wait()


def test_one_connection_carries_many_calls(aws_endpoint: str) -> None:
    """Keep-alive, a body announced with Expect: 100-continue, a chunked body."""
    connection = http.client.HTTPConnection(aws_endpoint.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", CALLS_PATH)
        first = connection.getresponse()
        assert first.status == 200 and json.loads(first.read()) is not None
        sock = connection.sock
        connection.request("POST", "/moto-api/reset", body=b"", headers={"Content-Length": "0"})
        second = connection.getresponse()
        assert second.status == 200
        second.read()
        connection.request("POST", "/moto-api/reset", body=iter([b"ab", b"c"]), encode_chunked=True)
        third = connection.getresponse()
        assert third.status == 200
        third.read()
        connection.putrequest("POST", "/moto-api/reset")
        connection.putheader("Content-Length", "2")
        connection.putheader("Expect", "100-continue")
        connection.endheaders()
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        connection.send(b"{}")
        fourth = connection.getresponse()
        assert fourth.status == 200
        fourth.read()
        assert connection.sock is sock  # the same connection all along
    finally:
        connection.close()


def test_dummy_credentials_leave_real_ones_alone() -> None:
    assert dummy_credentials({"AWS_ACCESS_KEY_ID": "mine", "AWS_SECRET_ACCESS_KEY": "s"}) == {}
    assert set(dummy_credentials({})) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
