"""An embedded AWS for one machine: moto's server mode on 127.0.0.1, in its own process.

`iras serve` and the tests run the very code that runs on AWS, only pointed at this
endpoint: S3, SQS and EC2 answer over real HTTP, so nothing branches on "local".
moto checks no signatures, but botocore refuses to sign without credentials, so
`dummy_credentials()` supplies obviously fake ones for processes that talk to it.

The modules: `process` starts and stops the child, `server` is the child, `dispatch`
its WSGI front (short routing, call counts at `GET /_iras/calls`), `direct` moto's
handlers without Flask, `s3_objects` plain S3 object PUTs and GETs straight from moto's
backend, `speedups` its fixes to moto's SQS, `keepalive` its HTTP handler, `headers` its
reading of request headers; `web_instance` the EC2 record `iras serve` keeps for its
gateway, the course's `web-instance`. Importing this package imports no moto: only the
child pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from iras.local_aws.dispatch import CALLS_PATH
from iras.local_aws.process import LOOPBACK, EmbeddedAwsError, embedded_aws

__all__ = [
    "CALLS_PATH",
    "LOOPBACK",
    "EmbeddedAwsError",
    "dummy_credentials",
    "embedded_aws",
    "use_dummy_credentials",
]

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


def use_dummy_credentials() -> None:
    """Put placeholder credentials into this process's environment if it has none."""
    os.environ.update(dummy_credentials(os.environ))
