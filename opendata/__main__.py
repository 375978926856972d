"""`python -m opendata …`, as the `opendata` command."""

import sys

from opendata.cli import main

sys.exit(main())
