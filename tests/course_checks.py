"""The course's view of an IRAS set-up, as its scripts take it: boto3 clients with the
region and keys given outright, instances counted by Name tag and state, queues asked by
name, and the 2024-2026 workload generator's request (one `inputFile` part to `/`).

Shared by the suite (`tests/web/test_course_preset.py`) and the benchmark of the course's
latency figure (`benchmarks/course_latency.py`).
"""

from __future__ import annotations

import threading
import urllib.request
import uuid
from typing import Any

import boto3


def course_clients(endpoint: str) -> dict[str, Any]:
    """boto3 clients as the course's scripts make them: region and keys given outright."""
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "course-key",
        "aws_secret_access_key": "course-secret",
    }
    return {name: boto3.client(name, **options) for name in ("ec2", "s3", "sqs")}  # type: ignore[call-overload]


def running(ec2: Any, name_pattern: str) -> list[str]:
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[
            {"Name": "tag:Name", "Values": [name_pattern]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )
    return [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]


def queue_counts(sqs: Any, name: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=name, AttributeNames=["All"])["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [entry["Key"] for page in pages for entry in page.get("Contents", ())]


def post_input_file(url: str, name: str, blob: bytes) -> tuple[int, str]:
    """One request of the 2024-2026 generator: one multipart part `inputFile` to `/`."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="inputFile"; filename="{name}"'
            "\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        + blob
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{url}/", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return answer.status, answer.read().decode()


class FleetSampler:
    """Counts the running app-tier instances every `period_s`, in a thread of its own."""

    def __init__(self, ec2: Any, period_s: float = 0.5) -> None:
        self.counts: list[int] = []
        self._ec2, self._period_s = ec2, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FleetSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            self.counts.append(len(running(self._ec2, "app-tier-instance-*")))
