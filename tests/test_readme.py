"""Every fenced ```bash, ```python and ```js block of README.md and of each docs/*.md page runs as
written, and every link between those pages resolves.

Each page's blocks run in page order in a working folder of their own, as a reader would run them
from the checkout after ``make demo``: the folder holds ``bundles/all-MiniLM-L6-v2`` (a hard-linked
copy of the session's ``minilm_bundle``), the inputs the commands name (``texts.txt``,
``texts.jsonl``, ``corpus/``), and links to this checkout's ``.venv`` and ``js/`` (and
``node_modules/layerwise``, so that ``import { load } from "layerwise"`` resolves as it does for
an installed package). JavaScript blocks run in Node. A block runs unless it is listed below, for
its page, with the reason it cannot run here; a listed block that is gone from its page, or a
block in another language, fails the test, so the lists stay true.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")))
RUN = ("bash", "python", "js")
BUNDLE = "bundles/all-MiniLM-L6-v2"  # what `make demo` writes (the Makefile's BUNDLE); every page uses this path
SERVE = f"layerwise serve {BUNDLE} --port 8080"  # what the WITH_SERVER blocks talk to; the test starts it on a free port

EXPORT_MINUTES = "a MiniLM export takes minutes here: the minilm_bundle fixture runs the same export once per session"
SERVES = "serves until stopped: the test starts this same command for the blocks that talk to it (WITH_SERVER)"
NPM_CI = "npm ci reinstalls the checkout's js/node_modules; make test installs them, and the js blocks here run with them"

# Each list names a block by a line of it (found in exactly one block of that page).
# Page -> {block -> why it does not run here}.
NOT_RUN: dict[str, dict[str, str]] = {
    "README.md": {
        "make demo   # creates .venv, exports the bundled all-MiniLM-L6-v2, prints per-layer parity and a latency table":
            "make test runs this suite (it would run itself); make demo builds .venv and exports MiniLM (minutes)",
        "pip install '.[cpu]'                    # runtime on the CPU: numpy, onnxruntime, tokenizers":
            "installs into this environment ('.[gpu]' needs CUDA); a fresh venv from PyPI takes minutes",
        'layerwise export "$MODEL" --out bundles/all-MiniLM-L6-v2 --force': EXPORT_MINUTES,
        f"{SERVE}     # TEI and OpenAI routes on 127.0.0.1:8080; Ctrl-C stops it": SERVES,
        "cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci && cd ..": NPM_CI,
    },
    "docs/benchmarks.md": {
        "make bench                                                                    # both models":
            "benchmarks: the BERT-base jobs alone take about 15 minutes on a quiet 2-core machine (7 more to build the model once)",
    },
    "docs/development.md": {
        "make test                 # lint, then the full suite under transformers 5, the js/ package in Node and headless Chromium"
        " included": "make test runs this suite; make bench takes about 40 minutes; make test-transformers4 builds .venv-tf4 (minutes)",
        "make .arm64/.installed                       # build (or check) .arm64/ alone":
            "needs root (apt-get qemu-user-static, debootstrap); make test builds it, and runs these two test files itself",
    },
    "docs/embedding.md": {
        "layerwise bench bundles/all-MiniLM-L6-v2 --batch-sizes 1,8,32 --seq-lens 16,128,512    # latency and throughput on this machine":
            "a benchmark: 9 cells of 3 s each after warm-up, minutes on a shared 2-core machine",
    },
    "docs/export.md": {
        'layerwise export "$MODEL" --out bundles/all-MiniLM-L6-v2 --force     # the bundled all-MiniLM-L6-v2, as make demo exports it':
            EXPORT_MINUTES,
    },
    "docs/int8.md": {
        'layerwise export "$MODEL" --out bundles/all-MiniLM-L6-v2-edge --variants int8 --edge':
            "a MiniLM export takes minutes here: tests/test_edge_bundle.py exports the same edge bundle",
    },
    "docs/javascript.md": {"cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci && cd ..": NPM_CI},
    "docs/scores.md": {f"{SERVE}     # Ctrl-C stops it": SERVES},
    "docs/server.md": {
        f"{SERVE}      # 127.0.0.1 by default; --api-key KEY to require a bearer token; Ctrl-C stops it": SERVES,
        "layerwise serve bundles/all-MiniLM-L6-v2 --ray --replicas 2 --threads 1     # or --autoscale 1..8; Ctrl-C stops":
            "serves until stopped; tests/test_ray_serve.py runs `layerwise serve BUNDLE --ray --replicas 1` and stops it",
    },
}
# Blocks that run in a copy of the checkout (they build from it), with the files they must make.
IN_CHECKOUT = {
    "README.md": {
        "python -m pip wheel --no-deps -w dist .   # dist/layerwise-0.1.0-py3-none-any.whl": (
            "dist/layerwise-0.1.0-py3-none-any.whl", "layerwise-0.1.0.tgz"),
    },
}
# Blocks that talk to SERVE: the test starts it once, on a free port in place of 8080.
WITH_SERVER = {
    "README.md": {
        "curl -s localhost:8080/embed -H 'content-type: application/json' -d '{\"inputs\": [\"my own sentence\"]}'",
        "from openai import OpenAI",
    },
    "docs/scores.md": {"print(InferenceClient(model=\"http://127.0.0.1:8080/similarity\").sentence_similarity("},
    "docs/server.md": {
        "curl -s localhost:8080/embed -H 'content-type: application/json' -d '{\"inputs\": [\"first text\", \"second\"]}'",
        "from huggingface_hub import InferenceClient   # what LangChain's and LlamaIndex's HF embeddings call",
        "curl -s localhost:8080/info",
    },
}
# Blocks that need a server no machine here runs -> (why, the call that connects): every line before it must run.
UNTIL_CONNECTING = {
    "docs/corpora.md": {
        "client = http.InferenceServerClient(\"localhost:8000\")": ("needs a Triton Inference Server on localhost:8000", "client.infer("),
    },
}
# Blocks that join the session's Ray cluster (RAY_ADDRESS), as a script on a cluster node does.
WITH_RAY = {"docs/corpora.md": {"from layerwise.ray import Embedder"}}
OTHER_LANGUAGES = {"": "a file listing, not code"}
LISTS = {
    "NOT_RUN": NOT_RUN, "IN_CHECKOUT": IN_CHECKOUT, "WITH_SERVER": WITH_SERVER, "UNTIL_CONNECTING": UNTIL_CONNECTING, "WITH_RAY": WITH_RAY,
}


@dataclass(frozen=True)
class Block:
    page: str
    language: str
    text: str
    line: int

    def key(self, listed: dict[str, dict[str, object]] | dict[str, set[str]]) -> str | None:
        """The entry of ``listed`` (for this block's page) naming this block, if any."""
        entries = listed.get(self.page, ())
        return next((line for line in self.text.splitlines() if line in entries), None)


def page_blocks(page: str) -> list[Block]:
    """The fenced blocks of one page, in order."""
    blocks, lines = [], (ROOT / page).read_text(encoding="utf-8").splitlines()
    start = language = None
    for number, line in enumerate(lines, 1):
        if not line.startswith("```"):
            continue
        if start is None:
            start, language = number, line[3:].strip()
        else:
            blocks.append(Block(page, language, "\n".join(lines[start : number - 1]) + "\n", start))
            start = None
    assert start is None, f"{page} line {start}: a fenced block is never closed"
    return blocks


BLOCKS = [block for page in PAGES for block in page_blocks(page)]


def test_every_listed_block_is_on_its_page_and_every_language_is_known():
    for name, listed in LISTS.items():
        assert set(listed) <= set(PAGES), f"{name} names pages that do not exist: {set(listed) - set(PAGES)}"
        for page, entries in listed.items():
            for line in entries:
                holding = [b.line for b in BLOCKS if b.page == page and b.language in RUN and line in b.text.splitlines()]
                assert len(holding) == 1, f"{name}: listed for {page}, but in {len(holding)} of its blocks (lines {holding}): {line!r}"
    unknown = {(b.page, b.language) for b in BLOCKS if b.language not in RUN and b.language not in OTHER_LANGUAGES}
    assert not unknown, f"blocks in languages this test neither runs nor lists: {unknown}"


def test_the_server_the_blocks_talk_to_is_the_one_each_page_starts():
    for page in WITH_SERVER:
        starts = [b.line for b in BLOCKS if b.page == page and any(line.startswith(SERVE) for line in b.text.splitlines())]
        assert starts, f"{page} has blocks that talk to a server but no block running {SERVE!r}"


# ---- links -------------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
CODE_SPAN = re.compile(r"`[^`]*`")


def _prose(page: str, code_spans: bool = False) -> list[tuple[int, str]]:
    """(line number, text) of a page's lines outside fenced blocks, inline code removed unless ``code_spans``."""
    out, fenced = [], False
    for number, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((number, line if code_spans else CODE_SPAN.sub("", line)))
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: str) -> set[str]:
    """Every heading anchor of a page (a repeated heading gets -1, -2, ... as on GitHub)."""
    found, counts = set(), dict[str, int]()
    for _, line in _prose(page, code_spans=True):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            found.add(f"{base}-{counts[base]}" if base in counts else base)
            counts[base] = counts.get(base, 0) + 1
    return found


def _links() -> Iterator[tuple[str, int, str]]:
    for page in PAGES:
        for number, line in _prose(page):
            for target in LINK.findall(line):
                if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked here
                    yield page, number, target


def test_every_link_between_the_pages_resolves_to_a_file_and_a_heading():
    broken = []
    for page, number, target in _links():
        path, _, anchor = target.partition("#")
        resolved = ((ROOT / page).parent / path).resolve() if path else ROOT / page
        if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
            broken.append(f"{page}:{number}: {target} (no such file in the checkout)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.relative_to(ROOT).as_posix()):
            broken.append(f"{page}:{number}: {target} (no heading #{anchor} there)")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page():
    linked = {((ROOT / page).parent / target.partition("#")[0]).resolve() for page, _, target in _links() if page == "README.md"}
    assert not {ROOT / page for page in PAGES[1:]} - linked, "docs pages the README never links"


# ---- running the blocks ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory, minilm_bundle: Path) -> Callable[[str], Path]:
    """page -> its working folder, holding the bundle and inputs the commands name (made once a page)."""
    made: dict[str, Path] = {}

    def make(page: str) -> Path:
        if page not in made:
            folder = made[page] = tmp_path_factory.mktemp(re.sub(r"\W", "-", page))
            # a copy, not a symlink: the folder name is the model's name (serve, triton)
            shutil.copytree(minilm_bundle, folder / BUNDLE, copy_function=os.link)
            texts = ["The encoder returns every hidden state.", "A second, longer sentence about the layers of a model.", "short"]
            (folder / "texts.txt").write_text("\n".join(texts) + "\n")
            (folder / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
            (folder / "corpus").mkdir()
            pq.write_table(pa.table({"text": texts * 4}), folder / "corpus" / "part-0.parquet")
            (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)  # the checkout's .venv, as after make demo
            (folder / "js").symlink_to(ROOT / "js", target_is_directory=True)
            (folder / "node_modules").mkdir()
            (folder / "node_modules" / "layerwise").symlink_to(ROOT / "js", target_is_directory=True)
        return made[page]

    return make


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "VIRTUAL_ENV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # layerwise, python: this venv's
    return {**env, **extra}


def _run(block: Block, cwd: Path, env: dict[str, str], text: str | None = None) -> subprocess.CompletedProcess:
    code = text or block.text
    if block.language == "js":
        if shutil.which("node") is None or not (ROOT / "js" / "node_modules" / ".installed").exists():
            pytest.fail("the js/ package's dependencies are not installed: run `make test` (or `make js/node_modules/.installed`)")
        script = cwd / f".{block.page.replace('/', '-')}-line{block.line}.mjs"
        script.write_text(code, encoding="utf-8")
        command = ["node", str(script)]
    else:
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


@pytest.fixture(scope="module")
def server_port(workdirs: Callable[[str], Path]) -> Iterator[int]:
    """SERVE, started once for every block that talks to it, on a free port."""
    port = _free_port()
    command = SERVE.replace("--port 8080", f"--port {port}").split()
    server = subprocess.Popen(command, cwd=workdirs("README.md"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            break
        time.sleep(0.5)
    if server.poll() is not None:
        raise AssertionError(f"{SERVE} did not become ready: {server.communicate()[1]}")
    yield port
    server.send_signal(signal.SIGINT)
    server.wait(timeout=60)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in RUN], ids=lambda b: f"{b.page}:line{b.line}-{b.language}")
def test_block_runs_as_written(block: Block, workdirs: Callable[[str], Path], tmp_path: Path, request: pytest.FixtureRequest):
    where = f"{block.page} line {block.line}"
    if block.key(NOT_RUN):
        pytest.skip(f"{where}: {NOT_RUN[block.page][block.key(NOT_RUN)]}")
    if block.key(IN_CHECKOUT):
        checkout = _checkout_copy(tmp_path / "checkout")
        result = _run(block, checkout, _env())
        assert result.returncode == 0, result.stdout + result.stderr
        wheel, tarball = (checkout / name for name in IN_CHECKOUT[block.page][block.key(IN_CHECKOUT)])
        assert "layerwise/runtime/encoder.py" in zipfile.ZipFile(wheel).namelist()
        assert "package/src/node.js" in tarfile.open(tarball).getnames()
        return
    workdir = workdirs(block.page)
    if block.key(WITH_SERVER):
        port = request.getfixturevalue("server_port")
        result = _run(block, workdir, _env(), re.sub(r"(127\.0\.0\.1|localhost):8080", rf"\1:{port}", block.text))
        assert result.returncode == 0, f"{where}\n{result.stdout}{result.stderr}"
        return
    env = _env(RAY_ADDRESS=request.getfixturevalue("ray_cluster")) if block.key(WITH_RAY) else _env()
    result = _run(block, workdir, env)
    if block.key(UNTIL_CONNECTING):
        call = UNTIL_CONNECTING[block.page][block.key(UNTIL_CONNECTING)][1]
        connect = 1 + next(i for i, line in enumerate(block.text.splitlines()) if call in line)
        assert result.returncode != 0 and "ConnectionRefusedError" in result.stderr, result.stdout + result.stderr
        assert f'File "<string>", line {connect}, in <module>' in result.stderr, result.stderr  # everything before it ran
        return
    assert result.returncode == 0, f"{where}\n{result.stdout}{result.stderr}"
