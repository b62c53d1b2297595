"""`python -m pilive` is the same as the `pilive` command."""

import sys

from pilive.cli import main

sys.exit(main())
