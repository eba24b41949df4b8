"""The embedded AWS: loopback only, any free port, and a clear error for a taken one."""

from __future__ import annotations

import urllib.request

import pytest

from iras.local_aws import dummy_credentials, embedded_aws


def test_embedded_aws_serves_on_loopback_and_stops() -> None:
    with embedded_aws(port=0) as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{endpoint}/moto-api/reset", data=b"", timeout=10) as r:
            assert r.status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/moto-api/reset", data=b"", timeout=2)


def test_taken_port_is_a_clear_error(aws_endpoint: str) -> None:
    port = int(aws_endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="--aws-port"), embedded_aws(port=port):
        pass


def test_dummy_credentials_leave_real_ones_alone() -> None:
    assert dummy_credentials({"AWS_ACCESS_KEY_ID": "mine", "AWS_SECRET_ACCESS_KEY": "s"}) == {}
    assert set(dummy_credentials({})) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
