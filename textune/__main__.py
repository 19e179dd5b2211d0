"""`python -m textune` runs the same command as the `textune` script."""

import sys

from .cli import main

sys.exit(main())
