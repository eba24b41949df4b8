"""Build `Settings` in a command-line program, turning bad values into one clear message."""

from __future__ import annotations

import os
import sys
from typing import Any

from pydantic import ValidationError

from iras.config import Settings
from iras.config.course import apply_course_preset

#: Settings whose values are never printed, even when they are wrong: a log keeps them.
SECRET_FIELDS = frozenset({"api_keys"})


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus command-line `overrides` (None means not given).

    With `IRAS_COURSE_ID` set, the course preset fills in what the environment does not
    set (`iras.config.course`), in the environment itself, for the processes it starts.

    A bad value ends the program with exit code 2 and a line per problem that names the
    environment variable, instead of a traceback.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        apply_course_preset(os.environ)  # the course's names, where none are given
    except ValueError as error:
        print(f"iras: invalid setting IRAS_COURSE_ID: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        return Settings(**given)
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            got = "hidden" if field in SECRET_FIELDS else repr(problem.get("input"))
            print(
                f"iras: invalid setting IRAS_{field.upper()}: {problem['msg']} (got {got})",
                file=sys.stderr,
            )
        raise SystemExit(2) from None
