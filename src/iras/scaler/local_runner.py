"""On one machine, the instance's boot: one `iras-worker` process per live app-tier instance.

On AWS an instance's user data starts `iras-worker`; on the embedded AWS nothing boots, so
this runner plays that part. It starts a process for every pending or running instance
that no worker has claimed yet (passing the instance id, since moto's metadata service
answers the same id for every instance), sends SIGTERM to the process of an instance
that was terminated or stopped, and has the fleet replace the instance of a process that
exited by itself (what an instance's failed unit does on AWS). The EC2 API of the
embedded AWS therefore shows exactly the live workers.

With several gateways on one embedded AWS (`iras serve --endpoint-url`), each runner
looks after the processes it started, and only the leading gateway's runner starts new
ones (`sync(start_new=...)`). An instance is claimed once its worker has tagged it
(`iras:heartbeat`, written as the worker starts and removed when it stops gracefully),
so a gateway that takes the lease over does not start a second worker for an instance
whose worker another gateway started; and every local worker watches its own instance
(`IRAS_INSTANCE_WATCH`) and stops when it is gone, as an EC2 instance's shutdown would
stop it, so the workers of a gateway that was killed still end when their instances do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from iras.aws.errors import AWS_ERRORS
from iras.scaler.fleet import LIVE_STATES, Fleet, Instance

log = logging.getLogger(__name__)

#: How long stopped workers get to finish their batch before they are killed.
STOP_GRACE_S = 30.0


def cores_shared(env: Mapping[str, str], workers: int, cores: int) -> dict[str, str]:
    """The environment of local workers: `env`, with each worker's share of the cores as
    its inference threads, unless IRAS_INFERENCE_THREADS is set already.

    On AWS a worker has its instance to itself and uses every core. Here up to `workers`
    processes share `cores`, and each taking all of them oversubscribes the machine:
    measured at concurrency 50 with two workers on two cores, IRAS's CPU per image was
    1.21-1.34x the bare model's with two threads each and 1.05-1.14x with one, at
    70-78 instead of 57-73 images/s.
    """
    if env.get("IRAS_INFERENCE_THREADS"):
        return dict(env)
    return {**env, "IRAS_INFERENCE_THREADS": str(max(1, cores // max(1, workers)))}


class LocalInstanceRunner:
    """Keeps worker processes in step with the fleet's instances."""

    def __init__(self, fleet: Fleet, env: Mapping[str, str]) -> None:
        self._fleet = fleet
        self._env = dict(env)
        self._processes: dict[str, tuple[Instance, subprocess.Popen[bytes]]] = {}

    @property
    def running(self) -> int:
        return sum(process.poll() is None for _, process in self._processes.values())

    def process_of(self, instance_id: str) -> subprocess.Popen[bytes] | None:
        entry = self._processes.get(instance_id)
        return entry[1] if entry else None

    async def sync(self, instances: list[Instance], *, start_new: bool = True) -> None:
        """Stop the processes of gone instances, reap the dead, and (`start_new`) start
        processes for live instances no worker has claimed."""
        live = {i.id: i for i in instances if i.state in LIVE_STATES}
        exited = [
            instance
            for instance_id, (instance, process) in list(self._processes.items())
            if process.poll() is not None and instance_id in live
        ]
        for instance_id, (_, process) in list(self._processes.items()):
            if process.poll() is not None:
                del self._processes[instance_id]
            elif instance_id not in live:
                process.send_signal(signal.SIGTERM)  # graceful: finish the batch, hand back
        if exited:
            log.info("worker process of %s exited: replacing", ", ".join(i.name for i in exited))
            await self._fleet.replace(exited)
        if not start_new:
            return
        for instance_id, instance in live.items():
            unclaimed = instance.heartbeat is None
            if unclaimed and instance_id not in self._processes and instance not in exited:
                self._processes[instance_id] = (instance, self._start(instance))

    async def stop_all(self) -> None:
        """SIGTERM every worker, wait for them, kill what outlives the grace period, and
        have the fleet replace their instances: none is left running without a worker
        (another gateway, or the next start, launches what is needed)."""
        entries = list(self._processes.values())
        for _, process in entries:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(_wait_all, [process for _, process in entries], STOP_GRACE_S)
        self._processes.clear()
        if entries:
            try:
                await self._fleet.replace([instance for instance, _ in entries])
            except AWS_ERRORS as error:  # AWS is going away too: nothing is left to bill
                log.warning("could not end the instances of stopped workers: %s", error)

    def _start(self, instance: Instance) -> subprocess.Popen[bytes]:
        log.info("starting worker process for %s (%s)", instance.name, instance.id)
        env = {**self._env, "IRAS_INSTANCE_ID": instance.id, "IRAS_WORKER_NAME": instance.name}
        # Its own session: a Ctrl-C at the terminal reaches the gateway, which stops workers in order.
        return subprocess.Popen(
            [sys.executable, "-m", "iras.worker"], env=env, start_new_session=True
        )


def _wait_all(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
