"""An embedded AWS for one machine: moto's server mode on 127.0.0.1.

`iras serve` and the tests run the very code that runs on AWS, only pointed at this
endpoint: S3, SQS and EC2 answer over real HTTP, so nothing branches on "local".
moto checks no signatures, but botocore refuses to sign without credentials, so
`dummy_credentials()` supplies obviously fake ones for processes that talk to it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

#: Placeholder credentials for the embedded AWS (moto accepts anything).
_DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "iras-local",
    "AWS_SECRET_ACCESS_KEY": "iras-local",
}


def dummy_credentials(environ: Mapping[str, str]) -> dict[str, str]:
    """The credential variables to add to `environ` so that botocore can sign for moto.

    Variables already set win: a user's own (fake) credentials are left alone.
    """
    return {name: value for name, value in _DUMMY_CREDENTIALS.items() if name not in environ}


@contextmanager
def embedded_aws(port: int = 0) -> Iterator[str]:
    """Run moto's server on 127.0.0.1:`port` (0 picks a free port); yield its endpoint URL.

    This is moto's `ThreadedMotoServer` less one flaw: that class binds the port inside
    its thread, so a port already in use leaves `start()` waiting forever. Here the bind
    happens in the caller, and a taken port is an immediate, explained error.

    The server binds to the loopback address only: the embedded AWS accepts any
    credentials, so it must never be reachable from another machine.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((LOOPBACK, port))
    except OSError as error:
        listener.close()
        raise OSError(
            f"cannot start the embedded AWS on {LOOPBACK}:{port}: {error.strerror}; "
            "choose another port (iras serve --aws-port), or 0 for any free one"
        ) from None
    listener.listen(128)
    # werkzeug logs every request at INFO: thousands of lines per benchmark, none useful.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        LOOPBACK,
        port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
        fd=listener.detach(),
    )
    thread = threading.Thread(target=server.serve_forever, name="embedded-aws", daemon=True)
    thread.start()
    endpoint = f"http://{LOOPBACK}:{server.socket.getsockname()[1]}"
    log.info("embedded AWS (moto) listening on %s", endpoint)
    try:
        yield endpoint
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def use_dummy_credentials() -> None:
    """Put placeholder credentials into this process's environment if it has none."""
    os.environ.update(dummy_credentials(os.environ))
