"""HTTP request headers parsed without the `email` package, in the embedded AWS's process.

`http.server` (under werkzeug's server) parses every request's headers with
`http.client.parse_headers`, which hands them to `email.parser`: a feed parser, a policy
object and a regular expression per line, about 0.15 ms of a call's ~1 ms of CPU here
(py-spy, S3 PUTs and SQS batches from botocore). AWS SDKs send plain `Name: value`
lines, which need only a split. `parse_headers` splits those into the same
`HTTPMessage` the email parser builds (its compat32 policy keeps names as sent and
values with leading blanks and the line end removed) and leaves anything else to the
original: folded continuation lines, a line without a colon, a name with blanks or
bytes outside printable ASCII.

It replaces `http.client.parse_headers` in the process that calls `install()`, which is
only the embedded AWS's child: it makes no HTTP calls of its own, so only the server
reads headers there.
"""

from __future__ import annotations

import http.client
from typing import Any, BinaryIO

#: The parser this module stands in front of, as the standard library has it.
ORIGINAL = http.client.parse_headers
#: Its reading of the lines, kept: the limits on line length and header count are its.
_read_headers: Any = getattr(http.client, "_read_headers")  # noqa: B009 (private, untyped)
_LINE_ENDS = (b"\r\n", b"\n", b"")


def parse_headers(fp: BinaryIO, _class: Any = http.client.HTTPMessage) -> Any:
    """`http.client.parse_headers`, with plain header lines split here."""
    lines: list[bytes] = _read_headers(fp)  # the same limits: line length, header count
    message = _class()
    for line in lines:
        if line in _LINE_ENDS:
            break
        name, colon, value = line.decode("iso-8859-1").partition(":")
        if not (colon and name.isascii() and name.isprintable() and " " not in name):
            return _parsed_by_email(lines, _class)
        message[name] = value.lstrip(" \t").rstrip("\r\n")
    message.set_payload("")  # as the email parser leaves a message with no body
    return message


def _parsed_by_email(lines: list[bytes], _class: Any) -> Any:
    import email.parser

    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=_class).parsestr(text)


def install() -> None:
    """Parse this process's HTTP request headers with `parse_headers`."""
    setattr(http.client, "parse_headers", parse_headers)  # noqa: B010 (typed as overloads)
