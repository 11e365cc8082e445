#!/usr/bin/env python3
"""Generate the class block of ``fastprod/errors.py`` from its error table.

    python tools/gen_errors.py            # rewrite the block between the markers
    python tools/gen_errors.py --check    # exit 1 if the committed block is stale

``errors.py`` holds the table (``_ROWS``: code, NAME, class name, base class, message)
above ``# BEGIN GENERATED ERROR CLASSES``; between that marker and ``# END GENERATED
ERROR CLASSES`` it holds one class per error code, written from the table by this script
(one-line docstring = the default message, then ``code`` and ``name``). Edit the table,
then rerun this script. The part above the marker is executed on its own (it imports
nothing from fastprod), so the table is read as Python without importing the package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ERRORS_PY = ROOT / "fastprod" / "errors.py"
BEGIN = "# BEGIN GENERATED ERROR CLASSES\n"
END = "# END GENERATED ERROR CLASSES\n"


def _table_rows(source: str, filename: str) -> list[tuple[int, str, str | None, str | None, str]]:
    """Run the part of errors.py above the generated block and return its _ROWS."""
    namespace: dict[str, object] = {"__name__": "fastprod_errors_table"}
    exec(compile(source[: source.index(BEGIN)], filename, "exec"), namespace)
    return list(namespace["_ROWS"])  # type: ignore[call-overload]


def render_class_block(source: str, filename: str = str(ERRORS_PY)) -> str:
    """The text that belongs between the BEGIN/END markers of errors.py."""
    parts = []
    for code, name, class_name, base, message in _table_rows(source, filename):
        if class_name is None:
            continue
        parts.append(
            f'\n\nclass {class_name}({base}):\n    """{message}"""\n\n'
            f'    code = {code}\n    name = "{name}"\n'
        )
    return "".join(parts)


def current_block(source: str) -> str:
    """The text between the BEGIN/END markers as it is."""
    return source[source.index(BEGIN) + len(BEGIN): source.index(END)]


def write_class_block(path: Path = ERRORS_PY) -> bool:
    """Rewrite the block of ``path`` from its table; True when it changed."""
    source = path.read_text()
    block = render_class_block(source, str(path))
    if block == current_block(source):
        return False
    start = source.index(BEGIN) + len(BEGIN)
    path.write_text(source[:start] + block + source[source.index(END):])
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed block is out of date")
    parser.add_argument("--errors-py", type=Path, default=ERRORS_PY,
                        help="the errors.py to read and rewrite (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        source = args.errors_py.read_text()
        stale = render_class_block(source, str(args.errors_py)) != current_block(source)
    except (OSError, ValueError) as exc:  # ValueError: a marker is missing
        print(f"gen_errors: {args.errors_py}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if stale:
            print(f"gen_errors: the class block of {args.errors_py} is out of date: run "
                  "`python tools/gen_errors.py` and commit the result", file=sys.stderr)
            return 1
        return 0
    if write_class_block(args.errors_py):
        print(f"gen_errors: rewrote the class block of {args.errors_py}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
