"""`python -m tftune`: the `tftune` command line, as the console script runs it."""

import sys

from tftune.cli import main

sys.exit(main())
