"""`python -m iras.local_aws --listen-fd N --ready-fd N --parent-fd N`: the child process.

Started only by `iras.local_aws.embedded_aws()`, which passes the three descriptors.
"""

from __future__ import annotations

import argparse
import logging

from iras.local_aws.server import serve
from iras.telemetry.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m iras.local_aws", description=__doc__)
    parser.add_argument("--listen-fd", type=int, required=True, help="bound, listening socket")
    parser.add_argument("--ready-fd", type=int, required=True, help="pipe to report readiness")
    parser.add_argument("--parent-fd", type=int, required=True, help="parent's life pipe")
    args = parser.parse_args()
    try:
        configure_logging(level=logging.WARNING)  # IRAS_LOG_FORMAT, as the gateway's lines
    except ValueError:  # the gateway says what is wrong with it; this child must still run
        configure_logging("text", level=logging.WARNING)
    serve(args.listen_fd, args.ready_fd, args.parent_fd)


if __name__ == "__main__":
    main()
