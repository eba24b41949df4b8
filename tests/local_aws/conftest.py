"""An embedded AWS served from a thread of the test process, to look inside it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from iras.local_aws import LOOPBACK, dummy_credentials
from iras.local_aws.dispatch import FastDispatch
from iras.local_aws.keepalive import KeepAliveHandler
from iras.local_aws.server import build_app


@pytest.fixture
def in_process_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FastDispatch]]:
    """The embedded AWS's app served from a thread of this process, to look inside it."""
    for name, value in dummy_credentials(os.environ).items():
        monkeypatch.setenv(name, value)
    app = build_app()
    server = make_server(LOOPBACK, 0, app, threaded=True, request_handler=KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}", app
    finally:
        server.shutdown()
        thread.join()
