"""The embedded AWS's fixes to moto's SQS answer exactly what moto answers, only sooner."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from iras.local_aws import speedups


def test_the_speedups_answer_what_moto_answers() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    queue = backend.create_queue("speedups-test", VisibilityTimeout="45")
    fifo = backend.create_queue(
        "speedups-test.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for i in range(30):
        backend.send_message("speedups-test", f"body {i}", delay_seconds=5 if i % 7 == 0 else 0)
    received = backend.receive_message("speedups-test", 10, 0, 60)
    assert len(received) == 10

    for q in (queue, fifo):
        assert q.attributes == speedups.ORIGINALS["attributes"].fget(q)
    assert queue.attributes["ApproximateNumberOfMessagesNotVisible"] == 10  # received
    assert queue.attributes["ApproximateNumberOfMessagesDelayed"] == 5
    for message in received:
        assert backend.is_message_valid_based_on_retention_period(
            "speedups-test", message
        ) == speedups.ORIGINALS["retention_check"](backend, "speedups-test", message)
    handles = {message.receipt_handle for message in received}
    original = speedups.ORIGINALS["receipt_handle"]()
    assert len(handles) == 10
    assert {len(handle) for handle in handles} == {len(original)}
    assert all(handle.isascii() and handle.islower() and handle.isalpha() for handle in handles)
    now_ms = time.time() * 1000
    assert abs(sqs_models.unix_time_millis() - now_ms) < 50
    assert abs(speedups.ORIGINALS["unix_time_millis"]() - now_ms) < 50


#: The queue scans the speed-ups replace: their names in `ORIGINALS`, and on the queue.
_SCANS = {
    "messages": "messages",
    "delayed_count": "approximate_number_of_messages_delayed",
    "not_visible_count": "approximate_number_of_messages_not_visible",
}


def test_the_per_message_fixes_keep_moto_s_queue_state() -> None:
    """The one-clock scans count what moto's count, a receive's copy leaves the stored
    message whole, and a delete by any handle a message ever had removes it, once."""
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    queue = backend.create_queue("per-message", VisibilityTimeout="45")
    attributes = {"traceparent": {"DataType": "String", "StringValue": "00-ab-cd-01"}}
    for i in range(12):
        backend.send_message(
            "per-message",
            f"body {i}",
            message_attributes=attributes,
            delay_seconds=30 if i % 4 == 0 else 0,
        )
    bare = backend.receive_message("per-message", 3, 0, 60, message_attribute_names=[])
    assert [message.message_attributes for message in bare] == [{}, {}, {}]
    original = {name: speedups.ORIGINALS[name].fget(queue) for name in _SCANS}
    assert original == {name: getattr(queue, attribute) for name, attribute in _SCANS.items()}
    assert len(queue.messages) == 6  # 12, less 3 delayed and 3 received
    assert queue.approximate_number_of_messages_delayed == 3
    assert queue.approximate_number_of_messages_not_visible == 3
    # The copies went out without attributes; the stored messages keep theirs.
    stored = {message.id: message for message in queue._messages}
    assert all(stored[message.id].message_attributes == attributes for message in bare)

    first = bare[0]
    old_handle = first.receipt_handle
    backend.change_message_visibility("per-message", old_handle, visibility_timeout=0)
    again = backend.receive_message("per-message", 10, 0, 60, message_attribute_names=["All"])
    assert first.id in {message.id for message in again}
    assert all(message.message_attributes == attributes for message in again)
    backend.delete_message("per-message", old_handle)  # a handle it had before
    assert first.id not in {message.id for message in queue._messages}
    backend.delete_message("per-message", old_handle)  # deleted already: let be
    backend.delete_message("per-message", bare[1].receipt_handle)
    assert len(queue._messages) == 10
    with pytest.raises(ReceiptHandleIsInvalid):
        backend.delete_message("per-message", "never-given-out")
    assert len(queue._messages) == 10


def test_a_queue_remembers_a_bounded_number_of_deleted_handles() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    queue = backend.create_queue("bounded")
    handles = []
    for i in range(40):
        backend.send_message("bounded", f"body {i}")
        (message,) = backend.receive_message("bounded", 1, 0, 60)
        handles.append(message.receipt_handle)
        backend.delete_message("bounded", message.receipt_handle)
    assert all(handle in queue.deleted_messages for handle in handles)
    queue.deleted_messages = speedups.RecentHandles(queue.deleted_messages, kept=10)
    assert len(queue.deleted_messages) == 10
    backend.delete_message("bounded", handles[-1])  # a recent one again: let be
    backend.send_message("bounded", "one more")
    (message,) = backend.receive_message("bounded", 1, 0, 60)
    backend.delete_message("bounded", message.receipt_handle)
    assert len(queue.deleted_messages) == 10
    assert handles[-1] in queue.deleted_messages and handles[0] not in queue.deleted_messages


def test_request_ids_and_receipt_handles_are_shaped_as_moto_s() -> None:
    import string

    import moto.core.responses as responses

    assert speedups.apply()
    headers: dict[str, str] = {}
    request_id = responses.gen_amzn_requestid_long(headers)
    original = speedups.ORIGINALS["request_id"]()
    assert headers == {"x-amzn-requestid": request_id}
    assert len(request_id) == len(original) == speedups.REQUEST_ID_LENGTH
    alphabet = set(string.ascii_letters + string.digits)
    ids = {responses.gen_amzn_requestid_long() for _ in range(200)}
    assert len(ids) == 200 and set("".join(ids)) <= alphabet
    assert len(set("".join(ids))) == len(alphabet)  # every letter and digit is drawn


def test_a_receive_costs_the_same_at_any_depth() -> None:
    import moto.sqs.models as sqs_models
    from moto.core import DEFAULT_ACCOUNT_ID

    assert speedups.apply()
    backend = sqs_models.SQSBackend("us-east-1", DEFAULT_ACCOUNT_ID)
    seconds = {}
    for depth in (50, 1000):
        name = f"depth-{depth}"
        backend.create_queue(name)
        for i in range(depth):
            backend.send_message(name, f"body {i}")
        started = time.perf_counter()
        for _ in range(5):
            assert len(backend.receive_message(name, 10, 0, 60)) == 10
        seconds[depth] = time.perf_counter() - started
    # Unpatched, a receive of 10 at depth 1000 took ~50x longer than at depth 50.
    assert seconds[1000] < 5 * seconds[50] + 0.05


def test_plain_answers_are_the_serializers_json(
    in_process_aws: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SQS answer the embedded AWS gives while IRAS-shaped calls run is made both
    ways; the plain one must parse to what moto's serializer makes."""
    import moto.sqs.responses as sqs_responses

    made: list[tuple[str, Any, Any]] = []
    fast = sqs_responses.SQSResponse.serialized

    def both(response: Any, action_result: Any) -> Any:
        answer = fast(response, action_result)
        original = speedups.ORIGINALS["serialized"](response, action_result)
        made.append((response._get_action(), answer, original))
        return answer

    monkeypatch.setattr(sqs_responses.SQSResponse, "serialized", both)
    endpoint, _ = in_process_aws
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue = sqs.create_queue(QueueName="plain-answers")["QueueUrl"]
    traced = {"traceparent": {"DataType": "String", "StringValue": "00-ab-cd-01"}}
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "a", "MessageBody": "one", "MessageAttributes": traced},
            {"Id": "b", "MessageBody": "two"},
            {"Id": "c", "MessageBody": "three", "DelaySeconds": 0},
        ],
    )
    binary = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    sqs.send_message(QueueUrl=queue, MessageBody="four", MessageAttributes=binary)
    received = []
    while len(received) < 4:
        received += sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages") is None
    handles = [message["ReceiptHandle"] for message in received]
    deleted = sqs.delete_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": "x", "ReceiptHandle": handles[0]}, {"Id": "y", "ReceiptHandle": "bad"}],
    )
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handles[1])

    assert {message["Body"] for message in received} == {"one", "two", "three", "four"}
    by_body = {message["Body"]: message for message in received}
    assert by_body["one"]["MessageAttributes"] == traced
    assert by_body["four"]["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\xff"
    assert [entry["Id"] for entry in deleted["Successful"]] == ["x"]
    assert [entry["Id"] for entry in deleted["Failed"]] == ["y"]
    actions = [action for action, _, _ in made]
    assert {"SendMessageBatch", "SendMessage", "ReceiveMessage", "DeleteMessageBatch"} <= set(
        actions
    )
    for action, (status, headers, body), (status0, headers0, body0) in made:
        headers.pop("x-amzn-requestid", None)  # added to the first answer after it is made
        assert (status, headers) == (status0, headers0), action
        assert json.loads(body) == json.loads(body0), action
