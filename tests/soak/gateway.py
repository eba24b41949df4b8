"""`iras serve --endpoint-url URL` on one port, restartable: the gateway the soak restarts.

It joins an AWS endpoint that runs elsewhere (the soak's embedded AWS, behind a proxy),
so that the gateway can be killed and started again while AWS, its queues and the
replies that come meanwhile survive. Every start is a new process on the same port with
the same environment (a fixed `IRAS_GATEWAY_ID` among it): clients keep their URL.

Its workers are its children (`iras.scaler.local_runner`, one `python -m iras.worker`
per instance, each in its own session). A gateway killed with SIGKILL leaves them
running, as instances outlive a crashed gateway; `workers_of` finds them by the endpoint
their environment names, so that `stop_leftover_workers` can end them at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from iras.bench.procstat import read_tree
from iras.bench.serve_process import free_port

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
#: How long leftover workers get to finish their batch after SIGTERM.
WORKER_STOP_GRACE_S = 30.0


class GatewayExited(RuntimeError):
    """The gateway process ended before it was ready; the message holds its log's tail."""


class RestartableGateway:
    """`iras serve --endpoint-url` started, killed and started again on one port."""

    def __init__(self, endpoint_url: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.endpoint_url = endpoint_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in {"IRAS_ENDPOINT_URL", "AWS_ENDPOINT_URL"}
            },
            **env,
        }
        self._log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0  # starts so far

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self._log_dir / f"gateway-{self.generation}.log"

    async def start(self) -> None:
        """A new process; return once `GET /readyz` answers 200."""
        self.generation += 1
        command = [sys.executable, "-m", "iras", "serve", "--port", str(self.port)]
        command += ["--endpoint-url", self.endpoint_url]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block
                command, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        await self.ready()

    async def ready(self) -> None:
        process = self.process
        assert process is not None
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while True:
                    if process.poll() is not None:
                        raise GatewayExited(f"gateway exited: {_tail(self.log_path)}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/readyz")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)

    async def end(self, how: signal.Signals) -> None:
        """Send `how` (SIGKILL: a crash; SIGTERM: a deploy's stop) and wait for the exit."""
        process = self.process
        assert process is not None
        if process.poll() is None:
            process.send_signal(how)
        await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT_S)

    async def stop(self) -> None:
        """Ctrl-C's path (its workers stop gracefully), then SIGKILL if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def worker_pids(self) -> list[int]:
        """The worker processes this gateway process started that are running."""
        with contextlib.suppress(ProcessLookupError):
            return sorted(s.stat.pid for s in read_tree(self.pid) if s.role == "worker")
        return []


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(f"no VmRSS for process {pid}")


def environment_of(pid: int) -> dict[str, str]:
    """A process's environment as it was started (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


def workers_of(endpoint_url: str) -> list[int]:
    """Pids of running processes started with IRAS_ENDPOINT_URL=`endpoint_url`: the
    workers of every gateway on it (a gateway's own environment does not name it: it
    came as `--endpoint-url`)."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and environment_of(int(entry.name)).get("IRAS_ENDPOINT_URL") == endpoint_url
    ]


async def stop_leftover_workers(endpoint_url: str) -> list[int]:
    """SIGTERM the workers still running on `endpoint_url` (those of a killed gateway),
    SIGKILL what outlives the grace; the pids found."""
    pids = workers_of(endpoint_url)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    async with asyncio.timeout(WORKER_STOP_GRACE_S + 5):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WORKER_STOP_GRACE_S):
                while any(_alive(pid) for pid in pids):  # noqa: ASYNC110 - other processes
                    await asyncio.sleep(0.1)
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return pids


def _alive(pid: int) -> bool:
    """Running, and not a zombie (a killed gateway's orphans are reaped by init, but
    a zombie child of ours would count as alive to os.kill(pid, 0))."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _tail(log_path: Path, lines: int = 30) -> str:
    text = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"the end of {log_path}:\n" + "\n".join(text)
