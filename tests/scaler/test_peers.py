"""Gateways that do not lead report their uploads to the one that does."""

from __future__ import annotations

import asyncio

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.messages import GatewayReport, MessageError, decode_gateway_report
from iras.scaler.peers import PeerFigures, PeerReporter
from iras.web.replies import create_reply_queue, listen_for_replies


def test_peer_uploads_in_progress_count_while_fresh() -> None:
    figures = PeerFigures(period_s=1.0)
    figures.add(GatewayReport("b", uploads=3, arriving=2, answered=0), now_s=10.0)
    figures.add(GatewayReport("c", uploads=0, arriving=5, answered=1), now_s=12.0)
    assert figures.arriving(12.0) == 7 and figures.gateways(12.0) == ["b", "c"]
    assert figures.arriving(13.5) == 5  # b's is 3.5 periods old
    figures.add(GatewayReport("c", uploads=0, arriving=0, answered=0), now_s=14.0)
    assert figures.arriving(14.0) == 0


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "gateway-report", "uploads": 1},  # no gateway
        {"kind": "gateway-report", "gateway": "b", "uploads": -1},
        {"kind": "gateway-report", "gateway": "b", "uploads": "many"},
    ],
)
def test_malformed_reports_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(MessageError):
        decode_gateway_report(data)


async def test_a_follower_reports_to_the_leaders_reply_queue_and_only_when_it_has_news(
    settings: Settings, aws: AwsClients
) -> None:
    url = await create_reply_queue(aws.sqs, f"{settings.reply_queue_prefix}-leader")
    reporter = PeerReporter(aws.sqs, aws.messages, settings.reply_queue_prefix, "follower")
    assert not await reporter.report("leader", arriving=0, urgent=False)  # nothing to say
    assert not await reporter.report(None, arriving=0, urgent=True)  # nobody leads
    assert not await reporter.report("missing", arriving=0, urgent=True)  # no such queue
    reporter.uploaded(3)
    reporter.answered(2)
    assert await reporter.report("leader", arriving=1, urgent=True)
    assert await reporter.report("leader", arriving=0, urgent=False)  # arriving went to 0
    assert not await reporter.report("leader", arriving=0, urgent=False)
    reporter.uploaded()
    assert not await reporter.report("follower", arriving=0, urgent=True)  # it leads itself
    assert not await reporter.report("leader", arriving=0, urgent=False)  # and was reset

    heard: list[GatewayReport] = []
    results: list[object] = []
    listening = listen_for_replies(
        aws.messages, url, 1, results.append, pollers=1, on_report=heard.append
    )
    task = asyncio.create_task(listening)
    try:
        async with asyncio.timeout(10):
            while len(heard) < 2:  # noqa: ASYNC110 - the listener fills it
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert heard == [
        GatewayReport("follower", uploads=3, arriving=1, answered=2, urgent=True),
        GatewayReport("follower", uploads=0, arriving=0, answered=0, urgent=False),
    ]
    assert results == []  # reports are not results
