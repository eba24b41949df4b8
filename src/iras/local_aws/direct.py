"""moto's handlers of one service, called without Flask around them.

moto's server wraps each service in a Flask app whose only work, per request, is to
match the URL against the service's rules and call moto's handler with a moto `Request`
(`moto.core.utils.convert_to_flask_response`); the request context, the hooks and the
CORS headers around that cost about a quarter of an S3 call's CPU. `DirectApp` keeps
the rules and the handlers of moto's app and does only the matching and the call. Not
kept: the CORS headers (no browser talks to the embedded AWS) and moto's request
recorder (off unless `MOTO_ENABLE_RECORDING` is set).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError
from moto.core.request import Request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from iras.local_aws.dispatch import Environ, StartResponse


class _ServerRequest(Request):
    """What moto's own server hands its handlers: a request read from a WSGI server."""

    from_wsgi_server = True


class DirectApp:
    """A WSGI app with the URL rules and handlers of moto's Flask app `flask_app`."""

    def __init__(self, flask_app: Any) -> None:
        self._rules = flask_app.url_map
        self._views = flask_app.view_functions

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            endpoint, _ = self._rules.bind_to_environ(environ).match()
        except HTTPException as error:  # no rule: 404, wrong method: 405
            return error(environ, start_response)
        handler = self._views[endpoint].callback  # moto's convert_to_flask_response
        request = _ServerRequest(environ)
        try:
            result = handler(request, request.raw_url, dict(request.headers))
        except ClientError as error:
            result = 400, {}, error.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        response = Response(response=content, status=status, headers=headers)
        if request.method == "HEAD" and "content-length" in headers:
            response.headers["Content-Length"] = headers["content-length"]
        return response(environ, start_response)
