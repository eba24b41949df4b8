"""The CSE546 course preset: IRAS set up the way the course's IaaS project is checked.

The course names every resource after the student's id and checks them by those names:
`<id>-in-bucket` (one object per uploaded image), `<id>-out-bucket` (one object per
image, keyed by its name without extension, holding the label), the request queue
`<id>-req-queue` (MaximumMessageSize 1024, which is IRAS's own) and the response queue
`<id>-resp-queue`, both empty at rest; a `web-instance` and at most 15
`app-tier-instance-<n>` instances, none at rest, all 15 during a burst of 100 requests,
and none again seconds after the last answer; the gateway on port 8000.

`course_environment(id)` is that set-up as `IRAS_*` settings; `apply_course_preset`
fills them into an environment where `IRAS_COURSE_ID` is set, as defaults, so that
anything set explicitly still wins and every process started from it (workers, a
second command) reads the same names. IRAS's own records (the JSON result per request,
manifests, the scaler's lease) go to a bucket of their own, `<id>-iras-state`, so that
the output bucket holds the course's objects and nothing else.

Left as they are: the region (the course's scripts hard-code one, `us-east-1` in 2025,
`us-west-2` in 2026: set `IRAS_REGION` to theirs; `us-east-1` otherwise), and the rest
of IRAS, which does more than the course asks (the JSON API, the page, WebSockets).
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping

#: The course's cap on app-tier instances.
COURSE_MAX_WORKERS = 15
#: Requests one worker is sized for: a burst of 100 asks for 20, so the fleet reaches
#: the cap (the course scores reaching it), where the default (10) would stop at 10.
COURSE_BACKLOG_PER_WORKER = 5
#: Where the course's resources are unless its scripts' region is set.
COURSE_DEFAULT_REGION = "us-east-1"
#: A student id that can name S3 buckets: lower-case letters, digits and inner '-',
#: short enough for `<id>-iras-state` (S3's 63 characters).
COURSE_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?")


def check_course_id(course_id: str) -> str:
    """`course_id` as given, or ValueError saying what an id may be."""
    if not COURSE_ID_PATTERN.fullmatch(course_id):
        raise ValueError(
            f"the course id {course_id!r} must be 1 to 48 lower-case letters, digits and "
            "inner '-' (it names S3 buckets: <id>-in-bucket, <id>-out-bucket)"
        )
    return course_id


def course_environment(course_id: str) -> dict[str, str]:
    """The `IRAS_*` settings of the course preset for the student id `course_id`."""
    check_course_id(course_id)
    return {
        "IRAS_COURSE_ID": course_id,
        "IRAS_INPUT_BUCKET": f"{course_id}-in-bucket",
        "IRAS_OUTPUT_BUCKET": f"{course_id}-out-bucket",
        "IRAS_STATE_BUCKET": f"{course_id}-iras-state",
        "IRAS_REQUEST_QUEUE": f"{course_id}-req-queue",
        "IRAS_DEAD_LETTER_QUEUE": f"{course_id}-req-queue-dlq",
        "IRAS_REPLY_QUEUE": f"{course_id}-resp-queue",
        "IRAS_WRITE_NAME_OBJECTS": "true",
        "IRAS_MIN_WORKERS": "0",
        "IRAS_MAX_WORKERS": str(COURSE_MAX_WORKERS),
        "IRAS_BACKLOG_PER_WORKER": str(COURSE_BACKLOG_PER_WORKER),
        "IRAS_WORKER_NAME_PREFIX": "app-tier-instance",
        "IRAS_WEB_INSTANCE_NAME": "web-instance",
    }


def apply_course_preset(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """With `IRAS_COURSE_ID` in `environ`, fill in the preset's settings (and the region)
    that `environ` does not set; return those filled in. Without it, change nothing."""
    course_id = environ.get("IRAS_COURSE_ID", "").strip()
    if not course_id:
        return {}
    preset = course_environment(course_id)
    if not (environ.get("IRAS_REGION") or environ.get("AWS_REGION")):
        preset["IRAS_REGION"] = COURSE_DEFAULT_REGION
    filled = {name: value for name, value in preset.items() if not environ.get(name)}
    environ.update(filled)
    return filled


def env_file(environ: MutableMapping[str, str]) -> str:
    """The preset as `KEY=value` lines (an env file: `docker run --env-file`, or `set -a;
    . ./course.env` in a shell), with the values `environ` holds for its names."""
    course_id = environ.get("IRAS_COURSE_ID", "")
    names = [*course_environment(course_id), "IRAS_REGION"]
    lines = [
        f"# IRAS's CSE546 course preset for {course_id}: the same set-up on AWS with",
        "# `iras provision` and `iras gateway` (IRAS_WEB_INSTANCE_NAME is iras serve's only).",
    ]
    lines += [f"{name}={environ[name]}" for name in names if environ.get(name)]
    return "\n".join(lines) + "\n"
