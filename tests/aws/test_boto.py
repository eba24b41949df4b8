"""The botocore implementation answers as the lean one does: same calls, same answers.

Both run side by side on the real embedded AWS, each in its own keys and queue, and what
they return (bodies, keys, messages, failed indexes, depths, error codes) must be equal;
then each method must make the one operation the IAM reading counts for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import botocore.session
import pytest
from aiobotocore.credentials import AioCredentials
from botocore.exceptions import ClientError

from iras.aws import AwsClients, MessageQueue, ObjectStore, open_clients
from iras.aws.boto import BotoMessages, BotoObjects
from iras.aws.lean import Endpoint, S3Objects, SignedHttp, SqsMessages
from iras.aws.lean.http1 import Http1Client
from iras.aws.queues import MISSING_QUEUE_CODES
from iras.config import Settings
from iras.infra.provision import Resources
from tests.aws_calls import INTERFACES

KEYS = ["plain", "with space/and ü.txt", "a+b=c&d?e#f", "x/y/z"]


@pytest.fixture
async def both(settings: Settings, resources: Resources) -> AsyncIterator[dict[str, AwsClients]]:
    """Clients of each implementation, open at once on the same embedded AWS."""
    async with (
        open_clients(settings.model_copy(update={"aws_client": "lean"})) as lean,
        open_clients(settings.model_copy(update={"aws_client": "botocore"})) as botocore,
    ):
        assert isinstance(lean.objects, S3Objects) and isinstance(lean.messages, SqsMessages)
        assert isinstance(botocore.objects, BotoObjects)
        assert isinstance(botocore.messages, BotoMessages)
        yield {"lean": lean, "botocore": botocore}


async def failure(call: Awaitable[object]) -> tuple[str, str]:
    """The (operation, error code) of the `ClientError` that `call` must raise."""
    with pytest.raises(ClientError) as error:
        await call
    return error.value.operation_name, error.value.response["Error"]["Code"]


async def object_answers(objects: ObjectStore, bucket: str, prefix: str) -> dict[str, Any]:
    for key in KEYS:
        await objects.put(bucket, prefix + key, key.encode(), content_type="text/plain")
    answers: dict[str, Any] = {
        "bodies": [await objects.get(bucket, prefix + key) for key in KEYS],
        "listed": [key.removeprefix(prefix) for key in await objects.list_keys(bucket, prefix)],
    }
    await objects.delete(bucket, prefix + KEYS[0])
    await objects.delete(bucket, prefix + "never-written")  # deleting nothing is no error
    answers["after delete"] = await objects.list_keys(bucket, prefix + KEYS[0])
    answers["missing key"] = await failure(objects.get(bucket, prefix + KEYS[0]))
    answers["missing bucket"] = [
        await failure(objects.put("iras-no-such-bucket", "k", b"x")),
        await failure(objects.get("iras-no-such-bucket", "k")),
        await failure(objects.list_keys("iras-no-such-bucket")),
    ]
    return answers


async def test_objects_give_the_same_answers(
    both: dict[str, AwsClients], settings: Settings
) -> None:
    bucket = settings.output_bucket
    answers = {
        name: await object_answers(aws.objects, bucket, f"{name}/") for name, aws in both.items()
    }
    assert answers["lean"] == answers["botocore"]
    assert answers["lean"]["bodies"] == [key.encode() for key in KEYS]
    assert answers["lean"]["listed"] == sorted(KEYS)
    assert answers["lean"]["after delete"] == []
    assert answers["lean"]["missing key"] == ("GetObject", "NoSuchKey")
    # And each reads what the other wrote.
    assert await both["lean"].objects.get(bucket, f"botocore/{KEYS[1]}") == KEYS[1].encode()
    assert await both["botocore"].objects.get(bucket, f"lean/{KEYS[1]}") == KEYS[1].encode()


async def message_answers(messages: MessageQueue, url: str, gone: str) -> dict[str, Any]:
    answers: dict[str, Any] = {"sent": await messages.send_batch(url, [f"m{i}" for i in range(12)])}
    held = []
    while len(held) < 12:
        held += await messages.receive(url, wait_s=0, visibility_timeout_s=30)
    answers["received"] = sorted((m.body, m.receive_count) for m in held)
    answers["depth"] = await messages.depth(url)
    handles = [m.receipt_handle for m in held]
    answers["handed back"] = await messages.change_visibility_batch(url, handles[:2], 0)
    again = await messages.receive(url, max_messages=2, wait_s=1)
    answers["again"] = sorted(
        (m.body in {held[0].body, held[1].body}, m.receive_count) for m in again
    )
    fresh = {m.body: m.receipt_handle for m in again}
    handles[:2] = [fresh[held[0].body], fresh[held[1].body]]
    answers["bad handles"] = await messages.change_visibility_batch(url, ["x", handles[2]], 5)
    answers["deleted"] = await messages.delete_batch(url, handles)
    answers["depth after"] = await messages.depth(url)
    answers["missing queue"] = [
        await failure(messages.send_batch(gone, ["x"])),
        await failure(messages.receive(gone)),
        await failure(messages.delete_batch(gone, ["x"])),
        await failure(messages.change_visibility_batch(gone, ["x"], 0)),
        await failure(messages.depth(gone)),
    ]
    return answers


async def test_messages_give_the_same_answers(both: dict[str, AwsClients]) -> None:
    answers = {}
    for name, aws in both.items():
        url = (await aws.sqs.create_queue(QueueName=f"iras-parity-{name}"))["QueueUrl"]
        gone = url.rsplit("/", 1)[0] + "/iras-no-such-queue"
        answers[name] = await message_answers(aws.messages, url, gone)
    assert answers["lean"] == answers["botocore"]
    lean = answers["lean"]
    assert lean["sent"] == [] and lean["deleted"] == [] and lean["handed back"] == []
    assert lean["received"] == sorted((f"m{i}", 1) for i in range(12))
    assert lean["depth"] == (0, 12) and lean["depth after"] == (0, 0)
    assert lean["again"] == [(True, 2), (True, 2)]
    assert lean["bad handles"] == [0]
    assert {code for _, code in lean["missing queue"]} <= MISSING_QUEUE_CODES


# --- each method is the operation the IAM reading counts -----------------------------------


class RecordingHttp(SignedHttp):
    """`SignedHttp` that notes the operation of every call it sends."""

    def __init__(self, http: Http1Client, service: str, seen: list[str]) -> None:
        model = botocore.session.get_session().get_service_model(service)
        super().__init__(AioCredentials("placeholder", "placeholder"), http, model, "us-east-1", 1)
        self._seen = seen

    async def send(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        self._seen.append(operation)
        return await super().send(operation, *args, **kwargs)


@pytest.fixture(params=["lean", "botocore"])
async def recorded(
    request: pytest.FixtureRequest, settings: Settings, aws: AwsClients
) -> AsyncIterator[tuple[ObjectStore, MessageQueue, list[str]]]:
    """An implementation's clients, and the operations they make, as they make them."""
    seen: list[str] = []
    if request.param == "botocore":

        def record(model: Any, **_: Any) -> None:
            seen.append(model.name)

        for client in (aws.s3, aws.sqs):
            client.meta.events.register("before-call", record)
        yield BotoObjects(aws.s3), BotoMessages(aws.sqs), seen
        return
    endpoint = str(settings.endpoint_url)
    async with Http1Client(max_connections=4, connect_timeout_s=5, read_timeout_s=10) as http:
        objects = S3Objects(RecordingHttp(http, "s3", seen), Endpoint(endpoint, path_style=True))
        yield objects, SqsMessages(RecordingHttp(http, "sqs", seen), endpoint), seen


async def test_each_method_makes_the_operation_the_iam_reading_counts(
    recorded: tuple[ObjectStore, MessageQueue, list[str]],
    settings: Settings,
    resources: Resources,
) -> None:
    objects, messages, seen = recorded
    bucket, url = settings.input_bucket, resources.request_queue_url
    await messages.send_batch(url, ["m"])
    (message,) = await messages.receive(url, wait_s=1)
    handles = [message.receipt_handle]
    calls: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
        "objects": {
            "put": lambda: objects.put(bucket, "k", b"x"),
            "get": lambda: objects.get(bucket, "k"),
            "list_keys": lambda: objects.list_keys(bucket),
            "delete": lambda: objects.delete(bucket, "k"),
        },
        "messages": {
            "send_batch": lambda: messages.send_batch(url, ["m"]),
            "receive": lambda: messages.receive(url, wait_s=0),
            "change_visibility_batch": lambda: messages.change_visibility_batch(url, handles, 5),
            "delete_batch": lambda: messages.delete_batch(url, handles),
            "depth": lambda: messages.depth(url),
        },
    }
    for interface, methods in calls.items():
        assert set(methods) == set(INTERFACES[interface][1])
        for method, call in methods.items():
            seen.clear()
            await call()
            assert seen == [INTERFACES[interface][1][method]], f"{interface}.{method}"
