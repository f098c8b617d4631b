"""Entry point for ``python -m tpat_bridge``."""

import sys

from .cli import main

sys.exit(main())
