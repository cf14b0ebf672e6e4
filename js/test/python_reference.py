"""Reference vectors from the Python runtime for the JavaScript tests, computed at test time.

Usage: python python_reference.py SPEC.json OUT.json, where SPEC holds the bundle folder,
the texts and the cases ({variant, method: "embed" | "embed_tokens" | "bertscore" | "maxsim",
options in the JS spelling, optional texts of their own; bertscore cases carry candidates and
references, maxsim cases a query and documents; a case with "error": true expects an error}).
OUT holds, per case, {dims, data: base64 float32 little-endian} (a list of them for per-token
output; for a score, its fields: runtime/bertscore.py's BERTScore, runtime/maxsim.py's MaxSim),
or {error, type} when the call raised, and the call's last_stats, plus the constants the JS
package mirrors, so a drift fails a test, numpy's str() of SPEC's "float32Strings", and, for each
of SPEC's optional "windows" ({maxLength, stride}), the windows runtime/windows.py cuts the texts into.

python python_reference.py long-texts BUNDLE prints the long texts of the overflow tests as
JSON: tests/test_long_texts.py's document (~2,100 tokens of CPython's own docs), pieces of it
exactly at the model maximum and one token over, and a ~100-token piece.
"""

from __future__ import annotations

import base64
import contextlib
import json
import string
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

import layerwise
from layerwise.runtime import TruncationWarning, loader, manifest, options, windows
from layerwise.runtime import batching as batching_defaults
from layerwise.runtime.batching import Batching
from layerwise.runtime.bertscore import bertscore
from layerwise.runtime.errors import InputError

NAMES = {
    "batchSize": "batch_size",
    "maxLength": "max_length",
    "chunkTokens": "chunk_tokens",
    "skipPunctuation": "skip_punctuation",
    "returnMatches": "return_matches",
}


def _array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"dims": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _run(enc, method: str, texts: list[str], opts: dict, case: dict) -> object:
    kwargs = {NAMES.get(k, k): v for k, v in opts.items()}
    if method == "bertscore":
        return _bertscore(enc, case, kwargs)
    if method == "maxsim":
        m = enc.maxsim(case["query"], case["documents"], **kwargs)
        matches = None if m.matches is None else [
            {"positions": x.positions.tolist(), "tokens": list(x.tokens), "similarities": _array(x.similarities)} for x in m.matches
        ]  # fmt: skip
        return {"scores": _array(m.scores), "layers": list(m.layers), "queryTokens": list(m.query_tokens), "matches": matches}
    if method == "embed_tokens":
        return [_array(t) for t in enc.embed_tokens(texts, **kwargs)]
    return _array(enc.embed(texts, **kwargs))


def _bertscore(enc, case: dict, kwargs: dict) -> dict:
    """runtime.bertscore.bertscore (Encoder.bertscore's function, which also takes chunk_tokens); a
    baseline's text goes through a file, as the package's baselines are read."""
    with tempfile.TemporaryDirectory() as folder:
        if kwargs.get("baseline") is not None:
            path = Path(folder) / "baseline.tsv"
            path.write_text(kwargs["baseline"], encoding="utf-8")
            kwargs["baseline"] = path
        s = bertscore(enc, case["candidates"], case["references"], **kwargs)
    stats = {"pairs": s.stats.pairs, "uniqueTexts": s.stats.unique_texts, "embeddedTexts": s.stats.embedded_texts}
    stats.update(tokens=s.stats.tokens, chunks=s.stats.chunks)
    return {
        "precision": _array(s.precision),
        "recall": _array(s.recall),
        "f1": _array(s.f1),
        "layers": list(s.layers),
        "hash": s.hash,
        "truncatedCandidates": list(s.truncated_candidates),
        "truncatedReferences": list(s.truncated_references),
        "stats": stats,
    }


def main(spec_path: str, out_path: str) -> None:
    warnings.simplefilter("ignore", TruncationWarning)  # truncation is compared, not warned about
    spec = json.loads(open(spec_path, encoding="utf-8").read())
    encoders: dict[str, object] = {}
    results = []
    # JS batches at BATCH_TOKENS_CPU on every CPU (a browser cannot see the CPU family) and never
    # spreads a small call over threads, so the reference does the same, whatever this machine's family has in Python.
    with contextlib.ExitStack() as caps:
        for case in spec["cases"]:
            variant = case["variant"]
            if variant not in encoders:
                encoders[variant] = layerwise.load(spec["bundle"], variant=variant, provider="cpu", threads=spec.get("threads", 1))
                caps.enter_context(encoders[variant].use_batching(Batching(batching_defaults.BATCH_TOKENS_CPU, spec.get("threads", 1))))
            enc = encoders[variant]
            try:
                result = _run(enc, case["method"], case.get("texts", spec["texts"]), case.get("options", {}), case)
            except (InputError, TypeError) as e:
                if not case.get("error"):
                    raise
                results.append({"result": {"error": str(e), "type": type(e).__name__}})
                continue
            s = enc.last_stats
            stats = {
                "texts": s.texts,
                "tokens": s.tokens,
                "paddedTokens": s.padded_tokens,
                "batches": s.batches,
                "split": s.split,
                "windows": s.windows,
            }
            results.append({"result": result, "truncated": list(s.truncated_indices), "stats": stats})
    ids = next(iter(encoders.values())).tokenize(spec["texts"]).ids  # the ids the JS tokenizer must reproduce
    constants = {
        "FORMAT_VERSION": manifest.FORMAT_VERSION,
        "FORMAT_VERSIONS": list(manifest.FORMAT_VERSIONS),
        "VARIANTS": list(manifest.VARIANTS),
        "POOLING_KINDS": list(manifest.POOLING_KINDS),
        "INPUT_ROLES": dict(manifest.INPUT_ROLES),
        "BATCH_TOKENS_CPU": batching_defaults.BATCH_TOKENS_CPU,
        "COMBINES": [None, *options.COMBINES],
        "VERSION": metadata.version("layerwise"),
        "PUNCTUATION": string.punctuation,
        "FASTEST_FIRST": list(loader.FASTEST_FIRST),
        "OVERFLOWS": list(options.OVERFLOWS),
        "DEFAULT_STRIDE": windows.DEFAULT_STRIDE,
    }
    tokenizer = next(iter(encoders.values())).tokenizer
    cut = [_windows(tokenizer, spec["texts"], w.get("maxLength"), w.get("stride")) for w in spec.get("windows", [])]
    with open(out_path, "w", encoding="utf-8") as f:
        floats = [str(np.float32(v)) for v in spec.get("float32Strings", [])]
        json.dump({"cases": results, "ids": ids, "constants": constants, "windows": cut, "float32Strings": floats}, f)


def _windows(tokenizer, texts: list[str], max_length: int | None, stride: int | None) -> dict:
    """The windows runtime/windows.py cuts ``texts`` into: ids per window and where its rows go."""
    w = windows.split(tokenizer, texts, max_length, stride)
    placements = [{"text": p.text, "source": p.source.tolist(), "target": p.target.tolist(), "fresh": p.fresh} for p in w.placements]
    return {
        "ids": w.tokenized.ids,
        "typeIds": w.tokenized.type_ids,
        "placements": placements,
        "mergedLengths": w.output_lengths,
        "split": w.split,
        "stride": w.stride,
    }


def long_texts(bundle: str) -> dict[str, str]:
    """As tests/test_long_texts.py builds them: LONG, long_doc and text_of(512 / 513 tokens)."""
    from pydoc_data.topics import topics

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(f"{bundle}/tokenizer.json")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    source = " ".join(topics[k] for k in sorted(topics)[:12])
    doc = source[: tokenizer.encode(source, add_special_tokens=False).offsets[2100][1]]
    offsets = tokenizer.encode(doc, add_special_tokens=False).offsets

    def text_of(tokens: int) -> str:
        for skip in range(50):
            piece = doc[offsets[skip][0] : offsets[skip + tokens - 3][1]]
            if len(tokenizer.encode(piece).ids) == tokens:
                return piece
        raise AssertionError(f"no piece of {tokens} tokens found")

    return {"long": doc, "atLimit": text_of(512), "overLimit": text_of(513), "short": source[:400]}


if __name__ == "__main__":
    if sys.argv[1] == "long-texts":
        print(json.dumps(long_texts(sys.argv[2])))
    else:
        main(*sys.argv[1:3])
