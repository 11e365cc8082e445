"""``python -m fastprod ...`` is the same as the ``fastprod`` command."""

import sys

from fastprod.cli import main

sys.exit(main())
