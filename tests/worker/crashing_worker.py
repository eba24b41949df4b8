"""`iras-worker` with one bug planted in its fetch loop: every download raises.

The crash tests run it as `python -m tests.worker.crashing_worker` from the repository's
root: the real worker process, with the real model, on the embedded AWS, and a loop that
dies of an exception no code path expects, as a bug would make it.
"""

from __future__ import annotations

import sys
from unittest.mock import patch

from iras.cli.worker import main


class PlantedBug(RuntimeError):
    """What the fetch loop dies of."""


async def download_with_a_bug(*args: object, **kwargs: object) -> object:
    raise PlantedBug("a bug planted in the fetch loop")


if __name__ == "__main__":
    with patch("iras.worker.worker.download_batch", download_with_a_bug):
        code = main()
    sys.exit(code)
