"""`python -m iras.worker` is `iras-worker`."""

import sys

from iras.worker.cli import main

sys.exit(main())
