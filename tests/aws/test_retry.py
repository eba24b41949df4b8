"""`retry_while_away`: what it retries, what it logs, when it gives up, what it raises.

Steps here are plain async functions that fail as scripted: the helper knows nothing of
AWS. Tests that count attempts run in stamina's test mode (no waits); the ones about
time and about retrying for ever use real, tiny waits, since test mode bounds both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
import stamina

from iras.aws.retry import retry_while_away

log = logging.getLogger("tests.retry")


class Script:
    """A step that raises `failures` in turn, then returns "done"; counts its calls."""

    def __init__(self, *failures: BaseException) -> None:
        self._failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self._failures:
            raise self._failures.pop(0)
        return "done"


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture
def no_waits() -> Iterator[None]:
    """stamina's test mode: no waits; each call keeps its own bound on attempts (`cap`)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.mark.usefixtures("no_waits")
async def test_configured_errors_are_retried_with_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    step = Script(ConnectionError("refused"), TimeoutError("slow"))
    with caplog.at_level(logging.WARNING):
        answer = await retry_while_away(step, on=OSError, failed="receiving replies failed")
    assert answer == "done" and step.calls == 3
    assert [r.getMessage() for r in warnings(caplog)] == [
        "receiving replies failed (ConnectionError('refused')); retrying",
        "receiving replies failed (TimeoutError('slow')); retrying",
    ]
    assert not any(r.exc_info for r in warnings(caplog))  # no traceback unless asked


@pytest.mark.usefixtures("no_waits")
async def test_other_errors_are_raised_at_once(caplog: pytest.LogCaptureFixture) -> None:
    step = Script(ValueError("a bug"))
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="a bug"):
        await retry_while_away(step, on=OSError, failed="scaler step failed")
    assert step.calls == 1
    assert warnings(caplog) == []


@pytest.mark.usefixtures("no_waits")
async def test_a_predicate_decides_error_by_error() -> None:
    def transient(error: Exception) -> bool:
        return "transient" in str(error)

    retried = Script(RuntimeError("transient"), RuntimeError("transient"))
    assert await retry_while_away(retried, on=transient) == "done"
    assert retried.calls == 3
    permanent = Script(RuntimeError("transient"), RuntimeError("permanent"))
    with pytest.raises(RuntimeError, match="permanent"):
        await retry_while_away(permanent, on=transient)
    assert permanent.calls == 2


@pytest.mark.usefixtures("no_waits")
async def test_a_cancelled_step_is_never_retried() -> None:
    """stamina hands every exception of an attempt to the predicate, cancellation too; a
    predicate that approves every error (the gateway's) must not make a stopping task
    try again."""
    step = Script(ConnectionError("away"), asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await retry_while_away(step, on=lambda error: True, failed="gateway not ready")
    assert step.calls == 2


@pytest.mark.usefixtures("no_waits")
async def test_it_gives_up_after_its_attempts_and_raises_the_last_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    step = Script(*(ConnectionError(f"try {n}") for n in range(1, 6)))
    with caplog.at_level(logging.WARNING), pytest.raises(ConnectionError, match="try 3"):
        await retry_while_away(step, on=OSError, failed="signed call failed", attempts=3)
    assert step.calls == 3  # the first call counts
    # The failure given up on is raised, not logged: its catcher reports it.
    assert [r.getMessage() for r in warnings(caplog)] == [
        "signed call failed (ConnectionError('try 1')); retrying",
        "signed call failed (ConnectionError('try 2')); retrying",
    ]


async def test_it_gives_up_after_its_timeout_and_raises_the_last_error() -> None:
    calls = 0

    async def never() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"try {calls}")

    started = time.monotonic()
    with pytest.raises(ConnectionError) as raised:
        await retry_while_away(
            never, on=OSError, timeout_s=0.3, wait_initial_s=0.01, wait_max_s=0.02
        )
    elapsed_s = time.monotonic() - started
    # stamina stops *before* a wait that would pass the timeout: at the earliest, one
    # longest wait (0.02 s, plus up to 0.01 s of jitter) short of it.
    assert 0.3 - 0.03 <= elapsed_s < 2.0, elapsed_s
    assert calls > 3 and str(raised.value) == f"try {calls}"  # the last one


async def test_without_bounds_it_never_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    """More failures than stamina's default 10 attempts, and more time than a timeout of
    0.01 s: with neither bound given, the step is retried until it succeeds."""
    step = Script(*(ConnectionError("away") for _ in range(25)))
    with caplog.at_level(logging.WARNING):
        answer = await retry_while_away(
            step, on=OSError, failed="away", wait_initial_s=0.001, wait_max_s=0.002
        )
    assert answer == "done" and step.calls == 26
    assert len(warnings(caplog)) == 25


@pytest.mark.usefixtures("no_waits")
async def test_unexpected_errors_are_logged_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    step = Script(ConnectionError("away"), KeyError("bug"))
    with caplog.at_level(logging.WARNING):
        await retry_while_away(
            step, on=Exception, failed="gateway not ready", traceback_unless=(OSError,), logger=log
        )
    expected, unexpected = warnings(caplog)
    assert expected.name == unexpected.name == "tests.retry"  # the caller's logger
    assert not expected.exc_info
    assert unexpected.exc_info and unexpected.exc_info[0] is KeyError
    assert unexpected.exc_info[2] is not None  # the traceback of where it was raised


@pytest.mark.usefixtures("no_waits")
async def test_without_words_the_retries_are_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert await retry_while_away(Script(ConnectionError("away")), on=OSError) == "done"
    assert caplog.records == []  # stamina's own "stamina.retry_scheduled" line is off too


async def test_the_success_path_does_not_go_through_stamina(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """16 us a call through `retry_context`, about ten calls an image on the lean path:
    stamina sees only failures (the module docstring has the figures)."""

    def no_stamina(**_: object) -> None:
        raise AssertionError("retry_context was entered on the success path")

    monkeypatch.setattr(stamina, "retry_context", no_stamina)
    assert await retry_while_away(Script(), on=OSError, attempts=5) == "done"
    with pytest.raises(AssertionError, match="success path"):
        await retry_while_away(Script(ConnectionError("away")), on=OSError, attempts=5)


def test_stamina_instrumentation_is_off() -> None:
    """No second log line and no Prometheus counter in the default registry per retry."""
    assert stamina.instrumentation.get_on_retry_hooks() == ()
    assert stamina.instrumentation.get_prometheus_counter() is None
