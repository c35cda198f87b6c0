"""Entry point for `python3 -m braid.runner`."""

import sys

from .launch import main

sys.exit(main())
