"""The result cache at the gateway's door: which requests of an upload it answers, which
follow another upload's flight, and which lead one (are queued for the fleet).

An answered request costs no worker time, yet leaves what a classified one leaves: its
input object (stored with every upload), its result object under its own request id,
`"cached": true` and the original's timings, and the course's name object; then its
result is delivered into the job book as if it had come from the reply queue, so every
route and WebSocket answers it the same way. Those writes are part of the submission
(`Submitter`), within its deadline: when they fail, the upload is refused whole, as when
storing its images fails.

A follower's writes come later, when the flight it follows lands. If that flight ends
without a result (the leader's classification failed, or its wait expired), or the writes
fail, the follower's own request is queued instead: an accepted request is always
answered, by the cache or by the fleet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from iras.aws.errors import AWS_ERRORS
from iras.aws.retry import retry_while_away
from iras.aws.types import ObjectStore
from iras.config import Settings
from iras.messages import result_objects
from iras.web.jobs import Job, JobBook, RequestRef
from iras.web.result_cache import ResultCache, ResultJson, answer_from
from iras.web.sender import SendFailed

log = logging.getLogger(__name__)

#: Sends the requests of `refs` (of job `job_id`) to the fleet.
SendRequests = Callable[[str, list[RequestRef]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Plan:
    """An upload's requests, sorted: answered now, following a flight, or leading one."""

    answered: list[tuple[RequestRef, ResultJson]]
    following: list[tuple[RequestRef, str, asyncio.Future[ResultJson | None]]]
    leading: list[tuple[RequestRef, str]]


class CacheFront:
    """Sorts an upload's requests against the cache and answers what it can."""

    def __init__(
        self,
        cache: ResultCache,
        settings: Settings,
        objects: ObjectStore,
        book: JobBook,
        send: SendRequests,
        on_answer: Callable[[str], object] = lambda source: None,
    ) -> None:
        self.cache = cache
        self._settings = settings
        self._objects = objects
        self._book = book
        self._send = send
        self._on_answer = on_answer
        #: The requests leading a flight: request id -> (digest, the timer that ends it).
        self._leaders: dict[str, tuple[str, asyncio.TimerHandle]] = {}
        self._followers: set[asyncio.Task[None]] = set()

    def plan(
        self, refs: Sequence[RequestRef], digests: Sequence[str], found: Sequence[ResultJson | None]
    ) -> Plan:
        """Sort `refs` (with their images' `digests` and what the cache `found` for each):
        each request without an entry follows the flight of its image, or leads one."""
        plan = Plan([], [], [])
        for ref, digest, entry in zip(refs, digests, found, strict=True):
            if entry is not None:
                plan.answered.append((ref, entry))
                continue
            flight = self.cache.fly(digest)
            if flight is None:
                plan.leading.append((ref, digest))
            else:
                plan.following.append((ref, digest, flight))
        return plan

    async def write_answers(self, job_id: str, plan: Plan) -> list[ResultJson]:
        """Write the objects of the requests the cache answers now; their results, to
        `deliver` once the job is in the book. AWS's errors propagate (the upload fails)."""
        answers = [_answer(entry, ref, job_id) for ref, entry in plan.answered]
        await asyncio.gather(*(self._write(answer) for answer in answers))
        return answers

    def deliver(self, answers: Sequence[ResultJson], source: str = "cache") -> None:
        for answer in answers:
            self._book.deliver(answer)
            self._on_answer(source)

    def take_off(self, plan: Plan) -> None:
        """The leaders' requests are about to be queued: their flights are under way until
        their results land (`landed`), `wait_timeout_s` passes, or the upload fails
        (`abort`). Before the send, not after: a result may come back before the sending
        coroutine runs again."""
        loop = asyncio.get_running_loop()
        for ref, digest in plan.leading:
            timer = loop.call_later(self._settings.wait_timeout_s, self._expire, ref.request_id)
            self._leaders[ref.request_id] = (digest, timer)

    def abort(self, plan: Plan) -> None:
        """The upload failed: its flights end without a result (followers queue their own)."""
        for ref, digest in plan.leading:
            leader = self._leaders.pop(ref.request_id, None)
            if leader is not None:
                leader[1].cancel()
            self.cache.land(digest, None)

    def follow(self, job: Job, plan: Plan) -> None:
        """Answer each follower once its flight lands, or queue its request."""
        for ref, _, flight in plan.following:
            task = asyncio.create_task(self._follow(job.job_id, ref, flight))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)

    def landed(self, result: ResultJson) -> None:
        """A result came from the fleet: if it ends a flight, keep it and tell followers."""
        leader = self._leaders.pop(str(result.get("request_id", "")), None)
        if leader is None:
            return
        digest, timer = leader
        timer.cancel()
        self.cache.land(digest, result)
        if self.cache.cacheable(result):
            task = asyncio.create_task(self.cache.store(digest, result))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)

    async def close(self) -> None:
        """Cancel what is still waiting (the gateway stops: its jobs go with it)."""
        for _, timer in self._leaders.values():
            timer.cancel()
        for task in list(self._followers):
            task.cancel()
        await asyncio.gather(*self._followers, return_exceptions=True)

    def _expire(self, request_id: str) -> None:
        leader = self._leaders.pop(request_id, None)
        if leader is not None:
            self.cache.land(leader[0], None)

    async def _follow(
        self, job_id: str, ref: RequestRef, flight: asyncio.Future[ResultJson | None]
    ) -> None:
        entry = await asyncio.shield(flight)
        if entry is not None:
            answer = _answer(entry, ref, job_id)
            try:
                async with asyncio.timeout(self._settings.aws_deadline_s):
                    await self._write(answer)
            except AWS_ERRORS as error:
                log.warning("a cached answer could not be stored (%s): queued instead", error)
            else:
                self.deliver([answer], source="flight")
                return
        await retry_while_away(  # an accepted request is answered: queue it, however long
            lambda: self._send(job_id, [ref]),
            on=(*AWS_ERRORS, SendFailed),
            failed=f"queueing request {ref.request_id} after its image's flight",
            logger=log,
            traceback_unless=(*AWS_ERRORS, SendFailed),
        )

    async def _write(self, answer: ResultJson) -> None:
        data = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
        stored = result_objects(
            self._settings, answer["request_id"], answer["name"], answer.get("label"), data
        )
        await asyncio.gather(
            *(
                self._objects.put(bucket, key, blob, content_type=media)
                for bucket, key, blob, media in stored
            )
        )


def _answer(entry: ResultJson, ref: RequestRef, job_id: str) -> ResultJson:
    return answer_from(entry, {"request_id": ref.request_id, "job_id": job_id, "name": ref.name})
