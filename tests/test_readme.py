"""Every fenced ```bash and ```python block of README.md runs as written.

The blocks run in README order in one working folder, as a reader would run them, with the
bundled all-MiniLM-L6-v2 standing in for the hub id: ``bundles/minilm`` and
``bundles/all-MiniLM-L6-v2`` are (hard-linked) copies of the session's ``minilm_bundle``, and the
folder holds the inputs the commands name (``texts.txt``, ``texts.jsonl``, ``corpus/``). A block
runs unless it is listed below with the reason it cannot run here; a listed block that is gone
from the README, or a block in another language, fails the test, so the lists stay true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN = ("bash", "python")

# Each list names a block by a line of it (found in exactly one block).
# A block -> why it does not run here.
NOT_RUN = {
    "make demo   # creates .venv, exports the bundled all-MiniLM-L6-v2, prints per-layer parity and a latency table":
        "make test runs this suite (it would run itself); make demo builds .venv and exports MiniLM (minutes)",
    "pip install '.[cpu]'                    # runtime on the CPU: numpy, onnxruntime, tokenizers":
        "installs into this environment ('.[gpu]' needs CUDA); a fresh venv from PyPI takes minutes",
    "layerwise export sentence-transformers/all-MiniLM-L6-v2 --out bundles/minilm":
        "a MiniLM export takes minutes here: the minilm_bundle fixture runs the same export once per session",
    "layerwise bench bundles/minilm --batch-sizes 1,8,32 --seq-lens 16,128,512    # latency and throughput on this machine":
        "a benchmark: 9 cells of 3 s each after warm-up, minutes on a shared 2-core machine",
    "pip install '.[cpu,serve]'                            # from a checkout (see Install)":
        "installs into this environment, then serves until stopped; tests/test_server_*.py send these requests over real sockets",
    "layerwise export sentence-transformers/all-MiniLM-L6-v2 --out bundles/minilm-edge --variants int8 --edge":
        "a MiniLM export takes minutes here: tests/test_edge_bundle.py exports the same edge bundle",
    "layerwise serve bundles/all-MiniLM-L6-v2 --ray --replicas 2 --threads 1     # or --autoscale 1..8; Ctrl-C stops":
        "serves until stopped; tests/test_ray_serve.py runs `layerwise serve BUNDLE --ray --replicas 1` and stops it",
    "cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci && cd ..     # in this repository (make test does it)":
        "npm ci reinstalls js/node_modules of the checkout; make test does it, and tests/test_js_package.py runs the package",
    "make bench                                                                    # both models":
        "benchmarks: the BERT-base jobs alone take about 15 minutes on a quiet 2-core machine (7 more to build the model once)",
    "make test                 # lint, then the full suite under transformers 5, the js/ package in Node and headless Chromium included":
        "make test runs this suite; make bench takes about 40 minutes; make test-transformers4 builds .venv-tf4 (minutes)",
}
# Blocks that run in a copy of the checkout (they build from it), with the files they must make.
IN_CHECKOUT = {
    "python -m pip wheel --no-deps -w dist .   # dist/layerwise-0.1.0-py3-none-any.whl": (
        "dist/layerwise-0.1.0-py3-none-any.whl", "layerwise-0.1.0.tgz"),
}
# Blocks that talk to `layerwise serve bundles/minilm`: the test starts it on a free port in place of 8080.
WITH_SERVER = {"from huggingface_hub import InferenceClient   # what LangChain's and LlamaIndex's HF embeddings call"}
# Blocks that need a server no machine here runs -> (why, the call that connects): every line before it must run.
UNTIL_CONNECTING = {
    "client = http.InferenceServerClient(\"localhost:8000\")": ("needs a Triton Inference Server on localhost:8000", "client.infer("),
}
WITH_RAY = {"from layerwise.ray import Embedder"}  # joins the session's Ray cluster (RAY_ADDRESS), as a script on a cluster node does
OTHER_LANGUAGES = {"js": "tests/test_js_package.py runs the JavaScript API in Node and Chromium", "": "a file listing, not code"}


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int

    def key(self, listed: dict[str, object] | set[str]) -> str | None:
        """The entry of ``listed`` naming this block, if any."""
        return next((line for line in self.text.splitlines() if line in listed), None)


def readme_blocks() -> list[Block]:
    """The fenced blocks of README.md, in order."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    start = language = None
    for number, line in enumerate(lines, 1):
        if not line.startswith("```"):
            continue
        if start is None:
            start, language = number, line[3:].strip()
        else:
            blocks.append(Block(language, "\n".join(lines[start : number - 1]) + "\n", start))
            start = None
    assert start is None, f"README.md line {start}: a fenced block is never closed"
    return blocks


BLOCKS = readme_blocks()


def test_every_listed_block_is_in_the_readme_and_every_language_is_known():
    for listed in (NOT_RUN, IN_CHECKOUT, WITH_SERVER, UNTIL_CONNECTING, WITH_RAY):
        for line in listed:
            holding = [b.line for b in BLOCKS if b.language in RUN and line in b.text.splitlines()]
            assert len(holding) == 1, f"listed here, but in {len(holding)} README blocks (lines {holding}), not one: {line!r}"
    unknown = {b.language for b in BLOCKS} - set(RUN) - set(OTHER_LANGUAGES)
    assert not unknown, f"README blocks in languages this test neither runs nor lists: {unknown}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, minilm_bundle: Path) -> Path:
    """A folder holding the bundles and inputs the README's commands name."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("minilm", "all-MiniLM-L6-v2"):  # copies, not symlinks: the folder name is the model's name (serve, triton)
        shutil.copytree(minilm_bundle, folder / "bundles" / name, copy_function=os.link)
    texts = ["The encoder returns every hidden state.", "A second, longer sentence about the layers of a model.", "short"]
    (folder / "texts.txt").write_text("\n".join(texts) + "\n")
    (folder / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    (folder / "corpus").mkdir()
    pq.write_table(pa.table({"text": texts * 4}), folder / "corpus" / "part-0.parquet")
    return folder


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # layerwise, python: this venv's
    return {**env, **extra}


def _run(block: Block, cwd: Path, env: dict[str, str], text: str | None = None) -> subprocess.CompletedProcess:
    code = text or block.text
    command = ["bash", "-euo", "pipefail", "-c", code] if block.language == "bash" else [sys.executable, "-c", code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _checkout_copy(destination: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) copied to ``destination``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def _serve(workdir: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(["layerwise", "serve", "bundles/minilm", "--port", str(port)], cwd=workdir, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise AssertionError(f"layerwise serve did not become ready: {server.communicate()[1]}")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in RUN], ids=lambda b: f"line{b.line}-{b.language}")
def test_readme_block_runs_as_written(block: Block, workdir: Path, tmp_path: Path, request: pytest.FixtureRequest):
    if block.key(NOT_RUN):
        pytest.skip(f"README.md line {block.line}: {NOT_RUN[block.key(NOT_RUN)]}")
    if block.key(IN_CHECKOUT):
        checkout = _checkout_copy(tmp_path / "checkout")
        result = _run(block, checkout, _env())
        assert result.returncode == 0, result.stdout + result.stderr
        wheel, tarball = (checkout / name for name in IN_CHECKOUT[block.key(IN_CHECKOUT)])
        assert "layerwise/runtime/encoder.py" in zipfile.ZipFile(wheel).namelist()
        assert "package/src/node.js" in tarfile.open(tarball).getnames()
        return
    if block.key(WITH_SERVER):
        port = _free_port()
        server = _serve(workdir, port)
        try:
            result = _run(block, workdir, _env(), re.sub(r"(127\.0\.0\.1|localhost):8080", rf"\1:{port}", block.text))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    env = _env(RAY_ADDRESS=request.getfixturevalue("ray_cluster")) if block.key(WITH_RAY) else _env()
    result = _run(block, workdir, env)
    if block.key(UNTIL_CONNECTING):
        call = UNTIL_CONNECTING[block.key(UNTIL_CONNECTING)][1]
        connect = 1 + next(i for i, line in enumerate(block.text.splitlines()) if call in line)
        assert result.returncode != 0 and "ConnectionRefusedError" in result.stderr, result.stdout + result.stderr
        assert f'File "<string>", line {connect}, in <module>' in result.stderr, result.stderr  # everything before it ran
        return
    assert result.returncode == 0, result.stdout + result.stderr
