"""``layerwise serve`` with a rigged model, for the process tests that need one (it holds no tests).

    python -m tests.rigged_serve RIG_JSON serve BUNDLE --port P [flags...]

runs the real command line (``layerwise.cli.main``, so uvloop, signals, logging and exit codes
are the ones users get) after making ``layerwise.load`` return the bundle's Encoder wrapped in
``Rig``. RIG_JSON is a JSON object, every key optional:

    {"delay": 0.4,                      # seconds each run sleeps before computing
     "gate": "/tmp/x/gate",             # runs wait (60 s at most) until this file exists
     "load_gate": "/tmp/x/load",        # loading the model waits until this file exists
     "runs": "/tmp/x/runs.jsonl",       # each run appends its texts as one JSON line as it starts
     "patch": {"layerwise.server.batcher.SLICE_TOKENS": 512}}   # module constants to set first

and the rigged texts below always do what they say. Not rigged: ``serve --ray`` (its replicas
load the model in other processes).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAN_TEXT = "please come out as NaN"
FAIL_TEXT = "please fail like fp16 overflow"
BUG_TEXT = "please hit a bug"
GATE_WAIT_S = 60.0


class Rig:
    """An Encoder stand-in: each run is recorded (``record(texts)``) as it starts, waits (``wait()``), sleeps ``delay`` s,
    and NAN_TEXT, FAIL_TEXT and BUG_TEXT come out as NaN, fail as the runtime does, or hit a bug."""

    def __init__(
        self, encoder: Any, delay: float = 0.0, wait: Callable[[], None] | None = None, record: Callable[[list[str]], None] | None = None
    ) -> None:
        self._encoder = encoder
        self._delay = delay
        self._wait = wait
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def embed(self, inputs: Any, **options: Any) -> Any:
        return self._rigged(self._encoder.embed, inputs, options)

    def embed_tokens(self, inputs: Any, **options: Any) -> Any:
        return self._rigged(self._encoder.embed_tokens, inputs, options)

    def _rigged(self, embed: Any, inputs: Any, options: dict[str, Any]) -> Any:
        from layerwise.runtime.errors import NonFiniteOutputError

        texts = list(getattr(inputs, "texts", inputs))  # Tokenized and Windows carry their texts
        if self._record is not None:
            self._record(texts)
        if self._wait is not None:
            self._wait()
        time.sleep(self._delay)
        if FAIL_TEXT in texts:
            raise NonFiniteOutputError(f"variant 'fp32' produced NaN or Inf at layer 1 for text {texts.index(FAIL_TEXT)}")
        if BUG_TEXT in texts:
            raise RuntimeError("internal detail that must stay in the log")
        output = embed(inputs, **options)
        for row, text in enumerate(texts):
            if text == NAN_TEXT:
                output[row][...] = float("nan")
        return output


def file_rig(encoder: Any, delay: float, gate: str | None, runs: str | None) -> Rig:
    """A Rig whose runs wait for the ``gate`` file and are appended to the ``runs`` file, one JSON line each."""

    def record(texts: list[str]) -> None:
        with open(str(runs), "a") as log:
            log.write(json.dumps(texts) + "\n")

    wait = (lambda: wait_for_file(Path(str(gate)), "the test never opened the gate")) if gate else None
    return Rig(encoder, delay, wait, record if runs else None)


def wait_for_file(path: Path, why: str) -> None:
    deadline = time.monotonic() + GATE_WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(why)
        time.sleep(0.005)


def patch_constants(patch: dict[str, Any]) -> None:
    """``{"package.module.NAME": value}``: set each, refusing names that do not exist (a renamed
    constant must fail the test, not leave it unrigged)."""
    for dotted, value in patch.items():
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise AttributeError(f"rig: {module_name} has no {name} to patch")
        setattr(module, name, value)


def rig_loader(rig: dict[str, Any]) -> None:
    """Make ``layerwise.load`` (and every later ``from ..runtime import load``) give a Rig."""
    import layerwise
    import layerwise.runtime as runtime

    real_load = runtime.load

    def load(*args: Any, **kwargs: Any) -> Rig:
        if rig.get("load_gate"):
            wait_for_file(Path(rig["load_gate"]), "the test never let the model load")
        return file_rig(real_load(*args, **kwargs), float(rig.get("delay", 0.0)), rig.get("gate"), rig.get("runs"))

    runtime.load = layerwise.load = load  # type: ignore[assignment]
    if "layerwise.server.app" in sys.modules:  # imported before the patch: it holds the real load by name
        raise RuntimeError("rig: layerwise.server.app was imported before the loader was rigged")


def main(argv: list[str]) -> int:
    rig = json.loads(argv[0])
    rig_loader(rig)
    patch_constants(rig.get("patch", {}))
    from layerwise.cli import main as layerwise_main

    return layerwise_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
