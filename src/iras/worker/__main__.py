"""`python -m iras.worker` is `iras-worker`."""

import signal
import sys

# First thing, before the imports that take a second: a stop request during start-up
# finds nothing held, so it exits 0 at once (a worker scaled in while still loading).
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

from iras.cli.worker import main  # noqa: E402 - after the handler, on purpose

sys.exit(main())
