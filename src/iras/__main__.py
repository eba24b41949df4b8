"""`python -m iras` is the `iras` command."""

import sys

from iras.cli import main

sys.exit(main())
