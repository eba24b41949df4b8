"""Where things live in the buckets: one function per kind of object.

Keys are made by the server from ids, never from user input, so no file name can reach
a path. The CSE546 course's graders look for a plain-text label under the image's name in
the output bucket; that object is written too (see `Settings.write_name_objects`).
"""

from __future__ import annotations

from iras.config import Settings

INPUTS_PREFIX = "inputs/"
JOBS_PREFIX = "jobs/"


def input_key(request_id: str) -> str:
    """The uploaded image of `request_id`, in the input bucket."""
    return f"{INPUTS_PREFIX}{request_id}"


def result_key(settings: Settings, request_id: str) -> str:
    """The JSON result of `request_id`, in the output bucket."""
    return f"{settings.results_prefix}{request_id}.json"


def job_key(job_id: str) -> str:
    """The manifest of `job_id` (its requests and their names), in the output bucket."""
    return f"{JOBS_PREFIX}{job_id}.json"
