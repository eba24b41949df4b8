"""The embedded AWS's own process: moto behind `FastDispatch`, on a socket its parent bound.

This runs in the child that `embedded_aws()` starts (`python -m iras.local_aws`). Its own
process because moto spends milliseconds of CPU per call in Python (~7.5 ms as moto
ships, ~2 ms with `dispatch`, `direct`, `keepalive` and `speedups`; an S3 object PUT
or GET ~0.5-1 ms with `s3_objects`): in the gateway's process it held the GIL against
the gateway's event loop, and a separate process served about 60% more calls per second. The parent binds the port (so a taken port is an
immediate, explained error in the parent) and passes the listening socket down.

The child never outlives its parent: it holds the read end of a pipe whose only write
end the parent keeps, and exits when that pipe reaches end-of-file, which the kernel
arranges however the parent ends (even `kill -9`). It ignores SIGINT: a Ctrl-C at the
terminal reaches the whole process group, and the gateway still needs AWS while it
stops in order; the parent ends the child (SIGTERM) last.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, cast

from iras.local_aws.dispatch import FastDispatch, WsgiApp
from iras.local_aws.process import LOOPBACK


def build_app() -> FastDispatch:
    """moto's S3/SQS/EC2 called directly (the rest of moto the long way), SQS sped up,
    plain S3 object PUTs and GETs answered from moto's backend (`s3_objects`), S3's
    conditional writes made atomic (`conditional`)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from iras.local_aws import speedups
    from iras.local_aws.conditional import ConditionalWrites
    from iras.local_aws.direct import DirectApp

    on_patched_moto = speedups.apply()  # False on another moto: then none of this

    def create_app(service: str) -> WsgiApp:
        app: WsgiApp = DirectApp(create_backend_app(cast(Any, service)))  # a Literal to moto
        if service != "s3":
            return app
        app = ConditionalWrites(app)  # what the fast path passes on includes every If-*
        if on_patched_moto:
            from iras.local_aws.s3_objects import S3Objects

            return S3Objects(app)
        return app

    return FastDispatch(create_app, DomainDispatcherApplication(create_backend_app))


def serve(listen_fd: int, ready_fd: int, parent_fd: int) -> None:
    """Serve on the inherited socket `listen_fd` until SIGTERM or the parent's end.

    Writes one line to `ready_fd` once requests can be answered; `parent_fd` is the read
    end of the parent's life pipe.
    """
    from werkzeug.serving import make_server

    from iras.local_aws import headers
    from iras.local_aws.keepalive import KeepAliveHandler

    headers.install()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # werkzeug logs every request at INFO: thousands of lines per benchmark, none useful.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = build_app()
    server = make_server(
        LOOPBACK, 0, app, threaded=True, request_handler=KeepAliveHandler, fd=listen_fd
    )
    os.close(listen_fd)  # werkzeug serves a duplicate of it

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=_exit_with_parent, args=(parent_fd,), daemon=True).start()
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    server.serve_forever(poll_interval=0.2)


def _exit_with_parent(parent_fd: int) -> None:
    """Block until the parent's life pipe closes, then end this process at once."""
    while os.read(parent_fd, 1):
        pass
    os._exit(0)
