"""The ids a log line is about, carried by the code path rather than passed to each call.

A route binds its job and request ids once it has them, a worker its name once it runs
and each batch its number; every line logged afterwards on that path (in the same task,
or in a task it starts, which copies the context) gets them as fields through
`ContextFilter`, whichever module logs it. A context variable rather than arguments, so
that `iras.aws` and the other helpers below a route need not know about ids at all; a
field given with `extra=` wins over the context's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Protocol

#: The fields a context may hold, in the order a text line shows them.
CONTEXT_FIELDS = ("request_id", "job_id", "worker", "batch")

_EMPTY: Mapping[str, object] = MappingProxyType({})
_CONTEXT: ContextVar[Mapping[str, object]] = ContextVar("iras_log_context", default=_EMPTY)


def bind_log_context(
    *,
    request_id: str | None = None,
    job_id: str | None = None,
    worker: str | None = None,
    batch: int | None = None,
) -> None:
    """Add the given fields to the current context, for the rest of this task (and the
    tasks it starts from now on); None leaves a field as it was."""
    given = {"request_id": request_id, "job_id": job_id, "worker": worker, "batch": batch}
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in given.items() if v is not None}})


@contextlib.contextmanager
def log_context(
    *,
    request_id: str | None = None,
    job_id: str | None = None,
    worker: str | None = None,
    batch: int | None = None,
) -> Iterator[None]:
    """The given fields for the lines logged inside the block only."""
    token = _CONTEXT.set(_CONTEXT.get())
    try:
        bind_log_context(request_id=request_id, job_id=job_id, worker=worker, batch=batch)
        yield
    finally:
        _CONTEXT.reset(token)


def current_log_context() -> Mapping[str, object]:
    return _CONTEXT.get()


class Identified(Protocol):
    """A request, a result, anything else with the two ids (`iras.messages`)."""

    @property
    def request_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...


def request_ids(about: Identified | None) -> dict[str, str]:
    """The `extra=` of a line about one request or result (none when it has no ids)."""
    return {} if about is None else {"request_id": about.request_id, "job_id": about.job_id}


class ContextFilter(logging.Filter):
    """Puts the context's fields on every record that reaches the handler it is attached
    to (a handler's filter sees the records of every logger that propagates to it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if not hasattr(record, name):  # `extra=` came first
                setattr(record, name, value)
        return True
