"""The scaler's lease on the embedded AWS's S3: one holder, renewals, takeover, release.

The gateways' clocks are a number the test moves, so a time to live passes without
waiting for it; every read and write is a real conditional request to the S3 API.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.scaler.lease import Lease, Seen, lapsed, parse_lease

TTL_S = 6.0
KEY = "scaler/leader.json"


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lease_of(aws: AwsClients, settings: Settings, me: str, clock: Clock) -> Lease:
    return Lease(aws.s3, settings.output_bucket, KEY, me, TTL_S, clock=clock)


async def stored(aws: AwsClients, settings: Settings) -> dict[str, object]:
    response = await aws.s3.get_object(Bucket=settings.output_bucket, Key=KEY)
    data: dict[str, object] = json.loads(await response["Body"].read())
    return data


def test_a_lease_lapses_after_a_whole_ttl_unchanged_or_when_free() -> None:
    held = Seen("e1", "a", 1, 0, TTL_S, since_s=10.0)
    assert not lapsed(held, 10.0 + TTL_S - 0.01, TTL_S)
    assert lapsed(held, 10.0 + TTL_S, TTL_S)
    assert lapsed(Seen("e1", None, 1, 0, TTL_S, since_s=10.0), 10.0, TTL_S)
    # The longer of the two times to live counts: a holder configured longer is safe.
    assert not lapsed(Seen("e1", "a", 1, 0, 3 * TTL_S, 10.0), 10.0 + 2 * TTL_S, TTL_S)


def test_a_body_that_is_no_lease_counts_as_free() -> None:
    assert parse_lease(b"not json", "e", 0.0).holder is None
    assert parse_lease(b'{"holder": 7}', "e", 0.0).holder is None
    assert parse_lease(b"[1, 2]", "e", 0.0).holder is None


async def test_the_first_gateway_leads_and_the_second_follows(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    a, b = lease_of(aws, settings, "a", clock), lease_of(aws, settings, "b", clock)
    await a.round()
    await b.round()
    assert a.may_act() and a.held_for_s() == pytest.approx(TTL_S)
    assert not b.may_act() and b.held_for_s() == 0
    assert b.leader_id == "a" and (await stored(aws, settings))["holder"] == "a"


async def test_of_gateways_starting_together_exactly_one_leads(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    for attempt in range(5):
        await aws.s3.delete_object(Bucket=settings.output_bucket, Key=KEY)
        leases = [lease_of(aws, settings, f"g{attempt}-{i}", clock) for i in range(6)]
        await asyncio.gather(*(lease.round() for lease in leases))
        leaders = [lease.me for lease in leases if lease.held_for_s() > 0]
        assert len(leaders) == 1, leaders
        assert (await stored(aws, settings))["holder"] == leaders[0]


async def test_renewals_keep_the_lease_and_silence_hands_it_over(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    a, b = lease_of(aws, settings, "a", clock), lease_of(aws, settings, "b", clock)
    await a.round()
    await b.round()
    for _ in range(6):  # two whole times to live, renewed every third of one
        clock.advance(TTL_S / 3)
        await a.round()
        await b.round()
        assert a.may_act() and b.leader_id == "a"
    # a stops renewing (killed): b takes over once it has seen no change for a TTL.
    clock.advance(TTL_S - 0.5)
    await b.round()
    assert b.leader_id == "a" and not b.may_act()
    clock.advance(0.5)
    assert not a.may_act()  # a's own time ran out before b may take over
    await b.round()
    assert b.may_act() and b.term == 2
    assert (await stored(aws, settings))["holder"] == "b"
    await a.round()  # a, back, finds b renewing: its write of its stale version fails
    assert not a.may_act() and a.leader_id == "b"


async def test_a_holder_acts_only_with_half_its_ttl_left(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    a = lease_of(aws, settings, "a", clock)
    await a.round()
    clock.advance(TTL_S / 2 - 0.1)
    assert a.may_act()
    clock.advance(0.2)
    assert not a.may_act() and a.held_for_s() > 0


async def test_a_released_lease_is_taken_at_the_next_read(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    a, b = lease_of(aws, settings, "a", clock), lease_of(aws, settings, "b", clock)
    await a.round()
    await b.round()
    await a.release()
    assert a.held_for_s() == 0 and (await stored(aws, settings))["holder"] is None
    await b.round()
    assert b.may_act() and b.leader_id == "b"


async def test_a_gateway_restarted_with_its_id_takes_its_lease_back_at_once(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    await lease_of(aws, settings, "a", clock).round()
    again = lease_of(aws, settings, "a", clock)  # same id, no memory of the first
    await again.round()
    assert again.may_act() and again.term == 1


async def test_a_lease_object_that_is_garbage_is_taken_over(
    settings: Settings, aws: AwsClients, resources: Resources, clock: Clock
) -> None:
    await aws.s3.put_object(Bucket=settings.output_bucket, Key=KEY, Body=b"garbage")
    a = lease_of(aws, settings, "a", clock)
    await a.round()
    assert a.may_act()
