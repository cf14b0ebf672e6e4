"""Lay the ``layerwise`` package out as Python imports it, as symlinks under one folder.

pyproject's ``package-dir`` maps the top-level runtime/, exporter/ and server/ folders to
``layerwise.runtime`` and so on; the editable install resolves that with an import hook, which
static tools (mypy, import-linter) do not run. They read this tree instead:
``python tools/package_tree.py build/package`` -> build/package/layerwise/{runtime -> ../../../runtime, ...}.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def build_tree(out: Path) -> Path:
    """Recreate ``out/layerwise`` from pyproject's package-dir; returns it."""
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = out / "layerwise"
    if top.exists():
        shutil.rmtree(top)
    top.mkdir(parents=True)
    mapped = {name.split(".", 1)[1]: folder for name, folder in package_dir.items() if name.startswith("layerwise.")}
    for entry in sorted((ROOT / package_dir["layerwise"]).iterdir()):
        if entry.name not in mapped and entry.name != "__pycache__":
            os.symlink(entry, top / entry.name)
    for name, folder in mapped.items():
        os.symlink(ROOT / folder, top / name)
    return top


if __name__ == "__main__":
    print(build_tree(Path(sys.argv[1]).resolve()))
