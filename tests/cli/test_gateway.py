"""`iras gateway`'s own part: the stable id it takes when IRAS_GATEWAY_ID is not set."""

from __future__ import annotations

import pytest

from iras.cli.gateway import default_gateway_id
from iras.config import Settings


@pytest.mark.parametrize(
    ("hostname", "port", "prefix", "expected"),
    [
        ("web-1", 8000, "iras-replies", "web-1-8000"),
        # The first label only; a Docker container's host name is its id.
        ("ip-10-0-1-5.ec2.internal", 8000, "iras-replies", "ip-10-0-1-5-8000"),
        ("3f2a9c1b7d4e", 8001, "iras-replies", "3f2a9c1b7d4e-8001"),
        ("My Laptop's", 80, "iras-replies", "My-Laptop-s-80"),
        ("", 8000, "iras-replies", "gateway-8000"),
        # 80 - len("iras-replies-") - len("-8000") = 62 characters of host name.
        ("h" * 100, 8000, "iras-replies", "h" * 62 + "-8000"),
    ],
)
def test_the_default_id_is_host_and_port_as_a_valid_queue_name(
    hostname: str, port: int, prefix: str, expected: str
) -> None:
    gateway_id = default_gateway_id(hostname, port, prefix)
    assert gateway_id == expected
    Settings(gateway_id=gateway_id, reply_queue_prefix=prefix)  # passes validation
