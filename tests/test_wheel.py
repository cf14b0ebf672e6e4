"""The wheel holds every module of the folders pyproject maps into ``layerwise`` (setup.py derives the
package list from those folders, so a new subpackage cannot be left out), and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _tracked_modules() -> set[str]:
    """Every tracked .py file under the mapped folders, as its path inside the wheel."""
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    modules = set()
    for name, folder in package_dir.items():
        for path in tracked:
            inside = Path(path).relative_to(folder) if Path(path).is_relative_to(folder) else None
            if inside is not None and (ROOT / folder / inside.parent / "__init__.py").exists():
                modules.add("/".join((*name.split("."), *inside.parts)))
    return modules


def test_the_wheel_holds_every_module_of_the_mapped_folders(tmp_path: Path) -> None:
    source = tmp_path / "src"  # the tracked files alone: a build/ folder left in the checkout would leak stale modules in
    for path in subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines():
        if (ROOT / path).is_file():
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, source / path)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("layerwise-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if name.endswith(".py")}
    expected = _tracked_modules()
    assert "layerwise/runtime/options.py" in expected and "layerwise/commands/score.py" in expected
    assert shipped == expected, (sorted(expected - shipped)[:10], sorted(shipped - expected)[:10])
