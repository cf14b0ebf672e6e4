"""Interrupted or doomed work leaves nothing behind and wastes no time: killed exports and embeds
(real processes, SIGKILL), two exports of one target at once, an unwritable --output."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import layerwise
import layerwise.commands.embed  # noqa: F401  (imported now so that the timed call below times only the check)
from layerwise.cli import main
from layerwise.exporter.errors import ExportError
from layerwise.io.atomic import atomic_write, partial_prefix
from layerwise.runtime.manifest import read_manifest


def _layerwise(*args: str) -> list[str]:
    return [sys.executable, "-m", "layerwise.cli", "-q", *args]


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (a phase of its real work has begun)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the process ended (status {process.returncode}) before it could be killed mid-way: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the phase to interrupt never began")
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def _size(path: Path) -> int:
    """The file's size, 0 if it was removed since it was listed."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_sigkilled_export_leaves_no_partial_folder_after_the_next_export(tmp_path, tiny_bert):
    out = tmp_path / "b"
    export = subprocess.Popen(
        _layerwise("export", str(tiny_bert), "--out", str(out), "--variants", "fp32"), stderr=subprocess.PIPE, text=True
    )
    # the tokenizer is the first file written into the partial folder; the fp32 trace comes next
    _kill_when(export, lambda: any((p / "tokenizer.json").exists() for p in tmp_path.glob(".b.partial-*")))
    assert not out.exists() and list(tmp_path.glob(".b.partial-*")), "the kill should have left a partial folder"
    layerwise.export(str(tiny_bert), out, variants=["fp32"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert set(read_manifest(out).variants) == {"fp32"}


def test_a_second_export_of_a_target_being_exported_is_refused_naming_the_first(tmp_path, tiny_bert):
    out = tmp_path / "b"
    command = _layerwise("export", str(tiny_bert), "--out", str(out), "--variants", "fp32")
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".b.partial-*")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    expected = (
        rf"'{re.escape(str(out))}' is being exported by another process {first.pid} on {re.escape(socket.gethostname())}, "
        r"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00; wait for it to finish \(or stop it\), or choose another --out"
    )
    with pytest.raises(ExportError, match=expected):  # also with --force: never two writers of one target
        layerwise.export(str(tiny_bert), out, variants=["fp32"], force=True)
    assert first.wait(timeout=600) == 0, first.stderr.read()  # its partial folder was left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert set(read_manifest(out).variants) == {"fp32"}


def test_a_bundle_a_killed_export_had_moved_aside_is_put_back(tmp_path, tiny_bundle):
    out = tmp_path / "b"
    shutil.copytree(tiny_bundle, tmp_path / ".b.old-k7jud0ss" / "bundle")  # killed between the two renames of a --force swap
    with pytest.raises(ExportError, match="already exists; pass --force"):
        layerwise.export(str(tmp_path / "never-loaded"), out, variants=["fp32"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert read_manifest(out).variants.keys() == read_manifest(tiny_bundle).variants.keys()


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("/nonexistent/dir/o.npy", "the folder '/nonexistent/dir' does not exist; create it first"),
        ("{tmp}/a-file/o.npy", "'{tmp}/a-file' is a file, not a folder"),
        ("{tmp}/folder.npy", "it is a folder; give a file name"),
        ("/proc/o.npy", "cannot create files in '/proc' ("),
    ],
)
def test_unwritable_output_fails_before_any_work_on_a_large_input(tiny_bundle, tmp_path, capsys, output, problem):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "folder.npy").mkdir()
    texts = tmp_path / "texts.txt"
    texts.write_text("a sentence that would take a while to embed\n" * 200_000)
    output, problem = output.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    started = time.perf_counter()
    status = main(["embed", str(tiny_bundle), "--input", str(texts), "--output", output, "--provider", "cpu"])
    seconds = time.perf_counter() - started
    assert status == 1  # a file that cannot be written, as for any OSError
    assert capsys.readouterr().err.startswith(f"error: cannot write --output {output!r}: {problem}")
    assert seconds < 0.5, f"the check took {seconds:.2f} s: the input was read or embedded first"


def test_sigkilled_embed_leaves_no_output_file(tiny_bundle, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"sentence number {i} has a handful of ordinary words in it\n" for i in range(1500)))
    out = tmp_path / "out.jsonl"
    command = _layerwise("embed", str(tiny_bundle), "--input", str(texts), "--pool", "none", "--output", str(out), "--provider", "cpu")
    embed = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)

    def writing() -> bool:  # the per-token JSONL (about 60 MB) takes seconds to write
        # only the write's own temporary: the --output check's probe file comes and goes meanwhile
        return any(_size(p) > 0 for p in tmp_path.glob(partial_prefix(out) + "*"))

    _kill_when(embed, writing)
    assert not out.exists()
    assert main(["embed", str(tiny_bundle), "one", "two", "--output", str(out), "--provider", "cpu"]) == 0
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "texts.txt"], "the killed run's temporary file was not removed"


def test_a_failed_atomic_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(target, text=True) as f:
            f.write("half of the new con")
            raise RuntimeError("disk full")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
