"""One logging configuration for every IRAS process: text for a person, JSON for a machine.

`configure_logging` is what each entry point calls first (`iras`, `iras-worker`, the
bake script): one handler on stderr for the root logger, which uvicorn's loggers
propagate to, so the gateway's own lines, uvicorn's and the workers' come out alike.
`IRAS_LOG_FORMAT` picks the format: `text` (today's `time LEVEL logger: message`, the
context's ids appended as `key=value`), `json` (one object per line, every field a key,
for journald, CloudWatch or Loki to index), or `auto`, the default: text when stderr is
a terminal, JSON otherwise (a service, a container, a file).

It is read from the environment rather than from `Settings` because logging is
configured before the settings load, so that their own errors are logged in the chosen
format; `Settings.log_format` declares and documents the same variable, and carries it
to the workers on instances.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from typing import Any, Literal, TextIO, get_args

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from iras.telemetry.log_context import CONTEXT_FIELDS, ContextFilter

LogFormat = Literal["auto", "text", "json"]
LOG_FORMAT_VARIABLE = "IRAS_LOG_FORMAT"

#: The text format of every line (the ids follow the message).
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The fields of a JSON line before the record's own (`extra=`, the context's ids).
JSON_FIELDS = ("levelname", "name", "message")
JSON_RENAMED = {"levelname": "level", "name": "logger"}
#: Record fields left out of JSON: uvicorn's copy of its message with terminal colours.
NOT_LOGGED = ("color_message",)

#: uvicorn's loggers: left without handlers of their own, their lines reach ours.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
#: What `uvicorn.run` is given as `log_config`: nothing, so that it keeps the
#: configuration made here instead of installing its own handlers.
UVICORN_LOG_CONFIG = None


class TextFormatter(logging.Formatter):
    """The human format, with the record's ids after the message (`job_id=... batch=3`).

    Only the ids are appended: other `extra=` fields (a scale decision's figures) are
    already in the message's words, and only JSON needs them as keys."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        )
        line = super().formatMessage(record)
        return f"{line} {ids}" if ids else line


def json_formatter() -> JsonFormatter:
    """One JSON object per line: `time` (ISO 8601, UTC), `level`, `logger`, `message`,
    then every other field of the record (`extra=`, the context's ids, `exc_info`)."""
    return JsonFormatter(
        list(JSON_FIELDS),
        rename_fields=JSON_RENAMED,
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, *NOT_LOGGED],
    )


def resolve_log_format(requested: str | None, stream: TextIO) -> Literal["text", "json"]:
    """`requested` (None: `IRAS_LOG_FORMAT`, else auto) as the format to write to `stream`."""
    value = requested or os.environ.get(LOG_FORMAT_VARIABLE) or "auto"
    if value not in get_args(LogFormat):
        raise ValueError(f"{LOG_FORMAT_VARIABLE} must be auto, text or json, got {value!r}")
    if value == "auto":
        return "text" if _is_terminal(stream) else "json"
    return "json" if value == "json" else "text"


def logging_config(log_format: Literal["text", "json"], level: int | str) -> dict[str, Any]:
    """The `logging.config.dictConfig` of an IRAS process."""
    formatter = {"()": json_formatter} if log_format == "json" else {"()": TextFormatter}
    return {
        "version": 1,
        "disable_existing_loggers": False,  # modules take their loggers at import
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"iras": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "iras",
                "filters": ["context"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {name: {"handlers": [], "propagate": True} for name in UVICORN_LOGGERS},
    }


def configure_logging(
    log_format: str | None = None, level: int | str = logging.INFO
) -> Literal["text", "json"]:
    """Configure this process's logging; returns the format chosen.

    A process whose root logger has handlers already (an application that runs IRAS's
    commands in-process, pytest's log capture) keeps them, as `logging.basicConfig`
    would: replacing them would write to a stream that is not its to use.

    Raises ValueError (saying what is allowed) for an unknown format."""
    chosen = resolve_log_format(log_format, sys.stderr)
    if not logging.getLogger().handlers:
        logging.config.dictConfig(logging_config(chosen, level))
    return chosen


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False
