"""The package list, derived: every folder holding an ``__init__.py`` under the folders pyproject's
``package-dir`` maps into ``layerwise`` (top-level runtime/, exporter/ and server/ among them), so a
new subpackage cannot be left out of the wheel. Everything else is in pyproject.toml."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the build requirement brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent


def packages() -> list[str]:
    """``layerwise`` and its subpackages, as pyproject's ``package-dir`` lays them out."""
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = set()
    for name, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            if "__pycache__" not in relative and not any(part.startswith(".") for part in relative):
                found.add(".".join((name, *relative)))
    return sorted(found)


if __name__ == "__main__":
    setup(packages=packages())
