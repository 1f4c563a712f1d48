"""`python -m tftune.cli`: the `tftune` command line."""

import sys

from tftune.cli import main

sys.exit(main())
