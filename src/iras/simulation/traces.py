"""Arrival traces: read from a file, or generated from a named, seeded shape.

A trace is the time of each upload, in seconds, ascending. A file holds one time per
line; blank lines and lines starting with `#` are skipped, so a trace can carry a note
of where it came from. Anything else that is not a finite number >= 0, or a time before
the one above it, stops the load with the file's name, the line number and what was
wrong there: a trace that loads half-way would simulate a workload nobody sent.

The generators draw Poisson arrivals from `random.Random(seed)` (the same seed gives the
same trace on every machine) and stay under ~150k images, so that simulating every
policy on one takes seconds. Each shape is described in its function's docstring.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from pathlib import Path


class TraceError(ValueError):
    """A trace file that cannot be used; the message says where and why."""


def load(path: Path) -> list[float]:
    """The arrival times in `path`, checked (see the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceError(f"cannot read trace {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"trace {path} is not UTF-8 text") from None
    return parse(text.splitlines(), str(path))


def parse(lines: Iterable[str], name: str) -> list[float]:
    """The arrival times in `lines` (the text of the trace called `name`)."""
    times: list[float] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{name} line {number}"
        try:
            value = float(text)
        except ValueError:
            raise TraceError(f"{where}: {text!r} is not a number of seconds") from None
        if not math.isfinite(value):
            raise TraceError(f"{where}: {text!r} is not a finite number of seconds")
        if value < 0:
            raise TraceError(f"{where}: {text!r} is negative; arrival times are >= 0")
        if times and value < times[-1]:
            raise TraceError(
                f"{where}: {text!r} comes before the time above it ({times[-1]:g}); "
                "arrival times must be ascending"
            )
        times.append(value)
    if not times:
        raise TraceError(f"{name} holds no arrival times (one number of seconds per line)")
    return times


def poisson(rng: random.Random, rate_ips: float, start_s: float, end_s: float) -> list[float]:
    """Arrivals at a constant `rate_ips` in [start_s, end_s)."""
    times: list[float] = []
    t = start_s
    while True:
        t += rng.expovariate(rate_ips)
        if t >= end_s:
            return times
        times.append(t)


def thinned(
    rng: random.Random, rate_of: Callable[[float], float], peak_ips: float, end_s: float
) -> list[float]:
    """Arrivals at the varying rate `rate_of(t)` <= `peak_ips` in [0, end_s), by thinning
    (Lewis and Shedler): candidates at the peak rate, each kept with rate/peak."""
    return [t for t in poisson(rng, peak_ips, 0.0, end_s) if rng.random() * peak_ips < rate_of(t)]


def burst(seed: int) -> list[float]:
    """The issue's example: 150 images/s for 60 s, then 1 image/s for 28 minutes
    (~10.7k images). No fleet that starts empty answers the first 40 s of it in time."""
    rng = random.Random(seed)
    return poisson(rng, 150.0, 0.0, 60.0) + poisson(rng, 1.0, 60.0, 60.0 + 28 * 60.0)


def diurnal(seed: int) -> list[float]:
    """A day compressed to an hour: the rate rises smoothly from 1 image/s to 60 at
    30 minutes and falls back, 1 + 59 (1 - cos(2 pi t / 3600)) / 2 (~110k images). It
    changes by at most 0.05 images/s per second, ~2 images/s over a 40 s boot, so a
    policy that launches ahead of the trend can meet its target all along."""
    rng = random.Random(seed)

    def rate_of(t: float) -> float:
        return 1.0 + 59.0 * (1.0 - math.cos(2.0 * math.pi * t / 3600.0)) / 2.0

    return thinned(rng, rate_of, 60.0, 3600.0)


def trickle(seed: int) -> list[float]:
    """~1 image/s for 30 minutes (~1.8k images): one worker is plenty, and the question
    is only whether a policy keeps it or pays a boot for every other image."""
    return poisson(random.Random(seed), 1.0, 0.0, 30 * 60.0)


def spikes(seed: int) -> list[float]:
    """A base of 1 image/s for 30 minutes with spikes on top: every 3 to 6 minutes
    (uniformly drawn) 10 s at 40 to 80 images/s (~6k images). A spike is over before a
    worker launched for it has booted."""
    rng = random.Random(seed)
    end_s = 30 * 60.0
    times = poisson(rng, 1.0, 0.0, end_s)
    start_s = rng.uniform(60.0, 180.0)
    while start_s + 10.0 < end_s:
        times += poisson(rng, rng.uniform(40.0, 80.0), start_s, start_s + 10.0)
        start_s += 10.0 + rng.uniform(180.0, 360.0)
    return sorted(times)


def course(seed: int) -> list[float]:
    """The CSE546 grader: 100 requests within about a second, then quiet, three times
    5 minutes apart (300 images). Every round finds an idle fleet."""
    rng = random.Random(seed)
    times: list[float] = []
    for start_s in (0.0, 300.0, 600.0):
        times += sorted(start_s + rng.uniform(0.0, 1.0) for _ in range(100))
    return times


#: The generators by name, as `--generate` takes them.
GENERATORS: dict[str, Callable[[int], list[float]]] = {
    "burst": burst,
    "diurnal": diurnal,
    "trickle": trickle,
    "spikes": spikes,
    "course": course,
}


def generate(name: str, seed: int) -> list[float]:
    """The trace of shape `name` drawn with `seed`."""
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise TraceError(
            f"no trace generator {name!r}; choose one of {', '.join(GENERATORS)}"
        ) from None
    return generator(seed)
