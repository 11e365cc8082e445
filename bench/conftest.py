"""pytest-benchmark suite: not part of ``pytest tests/``; run ``python bench/report_kernels.py``
(or ``python -m pytest bench/``) from the repository root."""

from __future__ import annotations

import sys
from pathlib import Path

# run from a source checkout without installing: the compiled extensions sit in place
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
