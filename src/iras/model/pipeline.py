"""Run a function over a sequence with a few calls in flight, results in input order.

`Classifier.classify` decodes outside its lock and runs the network inside it, so with
two calls in flight one batch is decoded while the other runs: the cores stay busy
through each forward pass's serial stretches and each decode's tail.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def pipelined(function: Callable[[In], Out], items: Iterable[In], depth: int = 2) -> Iterator[Out]:
    """`map(function, items)`, with up to `depth` calls running at once in threads."""
    with ThreadPoolExecutor(depth, thread_name_prefix="iras-pipeline") as pool:
        running: deque[Future[Out]] = deque()
        for item in items:
            running.append(pool.submit(function, item))
            if len(running) >= depth:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
