import pathlib
import sys

# Let a plain `pytest` (not only `python -m pytest`) import fastprod from the checkout
# when it is not pip-installed; pyproject's pytest `pythonpath = ["."]` would do the same.
_ROOT = str(pathlib.Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["fastprod.localkafka.pytest_plugin"]
