"""``fastprod --version`` names the package version and the interpreter."""

from __future__ import annotations

import platform

import pytest

from fastprod import __version__
from fastprod.cli import main


def test_version_prints_the_package_version_and_exits_0(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.strip() == f"fastprod {__version__} (Python {platform.python_version()})"
