"""One graph change at a time: a bundle variant against the same variant rewritten, in one process.

Each change (CHANGES) writes a copy of the bundle whose variant graph or session config differs in
one thing, then times ``embed`` on real sentences (all hidden states, mean-pooled) for the current
and the changed bundle, alternated round by round, and reports the speed ratio, the worst-layer
pooled cosine to the fp32 variant on those sentences and on odd text (``odd_texts``), and whether a
text's vector depends on the other texts of its call (each of the first ALONE texts embedded alone
against the same texts embedded together). This is how the int8 and fused forms the README lists
as tried were measured; rerun it on each CPU family (AMX, AVX2) before choosing a form there.

Usage: python -m benchmarks.graph_ab BUNDLE [--changes a,b] [--texts 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
from onnx import helper, numpy_helper
from tokenizers import Tokenizer

import layerwise
from layerwise.exporter import graph_tools
from layerwise.exporter.reference import CALIBRATION_SENTENCES, short_texts
from layerwise.exporter.smoothing import matmul_targets
from layerwise.exporter.texts import corpus_sentences
from layerwise.runtime.manifest import read_manifest

from .common import agreement, alternate, machine, real_sentences

ALONE = 32  # texts embedded one per call too: a form whose vectors depend on the batch's other texts shows it


def odd_texts() -> dict[str, list[str]]:
    """Sets of text unlike the calibration sentences, where fixed scales would clip: one-to-four-word
    queries, random code points, and other scripts, emoji, repeats, symbols and code (deterministic)."""
    rng = random.Random(0)
    lines = [
        "I love this 😍😍😍 so much!!! 🎉🎉 #blessed @friend http://example.com/a?b=c", "$$$ 1234567890 ====== ------ ......",
        "A" * 300, "the " * 120, "ZZZZZZZZ QQQQQQ XXXXXXX", "こんにちは世界、これは日本語の文です。", "Привет, мир! Это русский текст.",
        "مرحبا بالعالم", "def f(x):\n    return {k: v for k, v in x.items() if v is not None}  # SELECT * FROM t;",
    ]  # fmt: skip
    return {
        "queries": short_texts(real_sentences(64)),
        "random code points": ["".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randrange(5, 80))) for _ in range(32)],
        "scripts, emoji, symbols, code": lines,
    }


def worst_set(encoder: Any, sets: dict[str, list[str]], references: dict[str, np.ndarray]) -> tuple[float, float, str]:
    """Over the sets: the lowest pooled cosine to the reference, and the lowest worst-layer mean with its set's name."""
    found = {name: agreement(encoder.embed(texts), references[name]) for name, texts in sets.items()}
    name = min(found, key=lambda n: found[n]["cos_mean_worst_layer"])
    return min(q["cos_min"] for q in found.values()), found[name]["cos_mean_worst_layer"], name


Rewrite = Callable[[Path], onnx.ModelProto | None]  # bundle folder -> the variant's new graph (None: the graph stays)


def matmul_nbits(block: int) -> Rewrite:
    """The fp32 graph with every weight MatMul as MatMulNBits: 8-bit symmetric weights per block of K,
    accuracy level 4 (activations quantized per block inside the kernel)."""

    def rewrite(bundle: Path) -> onnx.ModelProto:
        model = onnx.load(str(bundle / "model.fp32.onnx"))
        weights = {t.name: t for t in model.graph.initializer}
        targets = {n.name for n in matmul_targets(model)}
        for node in model.graph.node:
            if node.name not in targets:
                continue
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)  # [K, N]
            k, n = w.shape
            blocks = -(-k // block)
            padded = np.zeros((n, blocks * block), np.float32)
            padded[:, :k] = w.T
            grouped = padded.reshape(n, blocks, block)
            scale = np.maximum(np.abs(grouped).max(-1), 1e-8) / 127.0
            q = (np.clip(np.round(grouped / scale[..., None]), -127, 127) + 128).astype(np.uint8)  # zero point 128
            tag = node.name.strip("/").replace("/", "_")
            packed = [numpy_helper.from_array(q, f"{tag}_nbits"), numpy_helper.from_array(scale.ravel(), f"{tag}_scale")]
            model.graph.initializer.extend(packed)
            replacement = helper.make_node(
                "MatMulNBits", [node.input[0], f"{tag}_nbits", f"{tag}_scale"], list(node.output), name=node.name,
                domain="com.microsoft", K=k, N=n, bits=8, block_size=block, accuracy_level=4,
            )  # fmt: skip
            node.CopyFrom(replacement)
        graph_tools.prune_dead_nodes(model)  # and the weights nothing reads now
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return model

    return rewrite


def int8_merged_qkv(bundle: Path) -> onnx.ModelProto:
    """The int8 graph with the MatMulIntegerToFloat calls that share one quantized input (Q, K, V) as
    one call on the concatenated weights, its row scale, then a Split."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        if node.op_type == "MatMulIntegerToFloat":
            groups.setdefault(node.input[0], []).append(node)
    replaced: dict[str, list[onnx.NodeProto]] = {}
    dropped: set[str] = set()
    for quantized, calls in groups.items():
        if len(calls) < 2:
            continue
        scalings = [readers[c.output[0]][0] for c in calls]  # each call's row-scale Mul
        tag = calls[0].name + "_merged"
        parts = [numpy_helper.to_array(weights[c.input[1]]) for c in calls]
        model.graph.initializer.extend([
            numpy_helper.from_array(np.concatenate(parts, axis=1), f"{tag}_weight"),
            numpy_helper.from_array(np.concatenate([numpy_helper.to_array(weights[c.input[3]]) for c in calls]), f"{tag}_scale"),
            numpy_helper.from_array(np.array([p.shape[1] for p in parts], np.int64), f"{tag}_split"),
        ])  # fmt: skip
        first = calls[0]
        replaced[first.name] = [
            helper.make_node("MatMulIntegerToFloat", [quantized, f"{tag}_weight", first.input[2], f"{tag}_scale", first.input[4]],
                             [f"{tag}_rows"], name=tag, domain="com.microsoft"),
            helper.make_node("Mul", [f"{tag}_rows", scalings[0].input[1]], [f"{tag}_scaled"], name=f"{tag}_row_scale"),
            helper.make_node("Split", [f"{tag}_scaled", f"{tag}_split"], [m.output[0] for m in scalings], name=f"{tag}_split", axis=1),
        ]  # fmt: skip
        dropped.update(n.name for n in [*calls, *scalings])
    nodes = [new for node in model.graph.node for new in [*replaced.get(node.name, []), node] if new.name not in dropped]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)  # and the weights nothing reads now
    return model


def int8_per_tensor_activations(down_projections: bool) -> Rewrite:
    """The int8 graph with one scale per quantized tensor instead of one per token, so each
    MatMulIntegerToFloat takes that scale and its bias itself: no row-scale Mul, no bias Add after it
    (ONNX Runtime's kernel takes only a scalar A scale, and adds the bias before any later Mul).
    ``down_projections=False`` keeps per-token scales where K > N (the FFN output, fed by GELU)."""

    def rewrite(bundle: Path) -> onnx.ModelProto:
        return _per_tensor(onnx.load(str(bundle / "model.int8.onnx")), down_projections)

    return rewrite


def int8_static_scales(bundle: Path) -> onnx.ModelProto:
    """As ``per-tensor-but-ffn-out``, but each tensor's scale is a constant: its largest magnitude on
    the export's calibration sentences / 127 (values beyond it clip). No reductions at run time, and
    a text's vector no longer depends on its batch; out-of-range text is the risk."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    groups = _per_tensor_groups(model, down_projections=False)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(q.input[0], onnx.TensorProto.FLOAT, None) for q in groups)
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    info = read_manifest(bundle).model
    tokenizer.enable_padding(pad_id=info.pad_token_id)
    tokenizer.enable_truncation(info.max_length)
    absmax = np.zeros(len(groups))
    corpus = corpus_sentences(CALIBRATION_SENTENCES)  # and their short prefixes, as the export calibrates
    for batch in [corpus[i : i + 32] for i in range(0, len(corpus), 32)] + [short_texts(corpus[:32])]:
        encodings = tokenizer.encode_batch(batch)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        feeds = {i.name: np.array([getattr(e, fields[i.name]) for e in encodings], np.int64) for i in session.get_inputs()}
        rows = session.run([q.input[0] for q in groups], feeds)
        absmax = np.maximum(absmax, [np.abs(r).max() for r in rows])
    return _per_tensor(model, down_projections=False, static={q.name: float(m) / 127 for q, m in zip(groups, absmax)})


def _per_tensor_groups(model: onnx.ModelProto, down_projections: bool) -> list[onnx.NodeProto]:
    """The int8 graph's per-token QuantizeLinear nodes to make per tensor (all, or all but K > N)."""
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    chosen = []
    for q in [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.name.startswith("int8_")]:
        k, n = weights[readers[q.output[0]][0].input[1]].dims
        if down_projections or k <= n:
            chosen.append(q)
    return chosen


def _per_tensor(model: onnx.ModelProto, down_projections: bool, static: dict[str, float] | None = None) -> onnx.ModelProto:
    """``static``: QuantizeLinear name -> its constant scale; otherwise each tensor's scale is computed per run."""
    weights = {t.name: t for t in model.graph.initializer}
    readers = graph_tools.readers(model)
    replaced: dict[str, list[onnx.NodeProto]] = {}
    dropped: set[str] = set()
    renamed: dict[str, str] = {}  # output of a dropped Mul or Add -> what now holds the same value
    outputs = {o.name for o in model.graph.output}
    for q in _per_tensor_groups(model, down_projections):
        rows, tag = q.input[0], q.name
        if static is not None:
            model.graph.initializer.append(numpy_helper.from_array(np.array(static[tag], np.float32), f"{tag}_tscale"))
            scale_nodes = []
        else:
            scale_nodes = [
                helper.make_node("ReduceMax", [rows], [f"{tag}_tmax"], name=f"{tag}_tmax", keepdims=0),
                helper.make_node("ReduceMin", [rows], [f"{tag}_tmin"], name=f"{tag}_tmin", keepdims=0),
                helper.make_node("Neg", [f"{tag}_tmin"], [f"{tag}_tneg"], name=f"{tag}_tneg"),
                helper.make_node("Max", [f"{tag}_tmax", f"{tag}_tneg", "int8_eps"], [f"{tag}_tabs"], name=f"{tag}_tabs"),
                helper.make_node("Mul", [f"{tag}_tabs", "int8_inv127"], [f"{tag}_tscale"], name=f"{tag}_tscale"),
            ]  # fmt: skip
        replaced[q.name] = [
            *scale_nodes,
            helper.make_node("QuantizeLinear", [rows, f"{tag}_tscale", "int8_zero_point"], list(q.output), name=f"{tag}_tensor"),
        ]
        dropped.add(q.name)
        for call in readers[q.output[0]]:
            (scaling,) = readers[call.output[0]]  # the row-scale Mul
            (reshape,) = readers[scaling.output[0]]
            inputs = [*call.input[:2], f"{tag}_tscale", call.input[3], call.input[4], ""]
            renamed[scaling.output[0]] = call.output[0]
            dropped.add(scaling.name)
            add = readers[reshape.output[0]]
            bias = [i for i in add[0].input if i in weights] if len(add) == 1 and add[0].op_type == "Add" else []
            if bias and len(weights[bias[0]].dims) == 1 and add[0].output[0] not in outputs:
                inputs.append(bias[0])
                renamed[add[0].output[0]] = reshape.output[0]
                dropped.add(add[0].name)
            replaced[call.name] = [
                helper.make_node("MatMulIntegerToFloat", inputs, list(call.output), name=f"{call.name}_tensor", domain="com.microsoft")
            ]
            dropped.add(call.name)
    nodes = [new for node in model.graph.node for new in [*replaced.get(node.name, []), node] if new.name not in dropped]
    for node in nodes:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)
    return model


def int8_multi_head_attention(bundle: Path) -> onnx.ModelProto:
    """The int8 graph with each layer's float attention (bias Adds, head Reshapes and Transposes, QK^T,
    scale, additive mask, Softmax, PV, merge) as one com.microsoft.MultiHeadAttention that takes the
    Q, K, V projections, their biases and the attention mask as key lengths (key_padding_mask)."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    constants = {**weights, **{n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"}}
    producer = {out: node for node in model.graph.node for out in node.output}
    readers = graph_tools.readers(model)

    def projection(transpose: onnx.NodeProto) -> tuple[str, np.ndarray]:
        """(the projection's output before its bias, the bias) behind a head-splitting Reshape + Transpose."""
        add = producer[producer[transpose.input[0]].input[0]]
        bias = [i for i in add.input if i in weights]
        assert add.op_type == "Add" and len(bias) == 1, f"{add.name}: expected the projection's bias Add"
        return next(i for i in add.input if i not in weights), weights[bias[0]]

    replaced: dict[str, onnx.NodeProto] = {}
    for softmax in [n for n in model.graph.node if n.op_type == "Softmax"]:
        masked = producer[softmax.input[0]]
        scaled = next(producer[i] for i in masked.input if i in producer and producer[i].op_type == "Mul")
        scores = producer[scaled.input[0]]
        (weighted,) = readers[softmax.output[0]]
        (merge,) = readers[readers[weighted.output[0]][0].output[0]]  # Transpose back, then the Reshape to [B, S, D]
        (q, bq), (k, bk), (v, bv) = (projection(producer[t]) for t in (scores.input[0], scores.input[1], weighted.input[1]))
        scale = float(constants[scaled.input[1]])
        heads = bq.size // round(1 / scale**2)
        tag = merge.name + "_mha"
        model.graph.initializer.append(numpy_helper.from_array(np.concatenate([bq, bk, bv]), f"{tag}_bias"))
        replaced[merge.name] = helper.make_node(
            "MultiHeadAttention", [q, k, v, f"{tag}_bias", "mha_key_padding_mask"], list(merge.output), name=tag,
            domain="com.microsoft", num_heads=heads, scale=scale,
        )  # fmt: skip
    assert replaced, "no attention (Softmax after a scaled, masked QK^T) found in the int8 graph"
    cast = helper.make_node("Cast", ["attention_mask"], ["mha_key_padding_mask"], name="mha_key_padding_mask", to=onnx.TensorProto.INT32)
    nodes = [cast, *(replaced.get(n.name, n) for n in model.graph.node)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    graph_tools.prune_dead_nodes(model)  # the float attention nodes nothing reads now
    return model


@dataclass(frozen=True)
class Change:
    """One thing changed in one variant: its graph (``rewrite``) or its session config."""

    variant: str
    what: str
    rewrite: Rewrite | None = None
    session_config: dict[str, str] | None = None  # None: the manifest's


CHANGES = {
    "matmulnbits-32": Change("int8", "MatMulNBits from the fp32 graph, 8-bit, block 32, accuracy level 4", matmul_nbits(32)),
    "matmulnbits-128": Change("int8", "MatMulNBits from the fp32 graph, 8-bit, block 128, accuracy level 4", matmul_nbits(128)),
    "merged-qkv": Change("int8", "Q, K and V in one MatMulIntegerToFloat and a Split", int8_merged_qkv),
    "per-tensor-activations": Change("int8", "one activation scale per tensor: scale and bias inside MatMulIntegerToFloat",
                                     int8_per_tensor_activations(down_projections=True)),
    "per-tensor-but-ffn-out": Change("int8", "as per-tensor-activations, but per-token where K > N (the FFN output)",
                                     int8_per_tensor_activations(down_projections=False)),
    "static-scales-but-ffn-out": Change("int8", "as per-tensor-but-ffn-out, with constant scales from the calibration sentences",
                                        int8_static_scales),
    "multi-head-attention": Change("int8", "each layer's float attention as one MultiHeadAttention with key lengths as its mask",
                                   int8_multi_head_attention),
    "denormals-as-zero": Change("int8", "session.set_denormal_as_zero=1", session_config={"session.set_denormal_as_zero": "1"}),
    "skip-norms-refused": Change("fused", "the fused graph without its session_config: ONNX Runtime fuses SkipLayerNormalization again",
                                 session_config={}),
}  # fmt: skip


def changed_bundle(bundle: Path, change: Change, out: Path) -> Path:
    """A copy of ``bundle`` at ``out`` with ``change`` applied to its variant (digests updated)."""
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["variants"][change.variant]
    if change.rewrite is not None and (model := change.rewrite(bundle)) is not None:
        graph = out / entry["graph"]["path"]
        onnx.save(model, str(graph))
        entry["graph"].update(bytes=graph.stat().st_size, sha256=hashlib.sha256(graph.read_bytes()).hexdigest())
    if change.session_config is not None:
        entry["session_config"] = change.session_config
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def measure(bundle: Path, names: list[str], texts: list[str], repeats: int) -> list[dict[str, Any]]:
    """Speed ratio and accuracy of each named change against the current variant, timed in the same rounds."""
    with layerwise.load(bundle, variant="fp32", provider="cpu") as fp32:
        odd = odd_texts()
        reference, odd_references = fp32.embed(texts), {name: fp32.embed(t) for name, t in odd.items()}
    variants = sorted({CHANGES[n].variant for n in names})
    encoders = {f"current {v}": layerwise.load(bundle, variant=v, provider="cpu") for v in variants}
    with tempfile.TemporaryDirectory(prefix="layerwise-ab-") as tmp:
        for name in names:
            copy = changed_bundle(bundle, CHANGES[name], Path(tmp) / name)
            encoders[name] = layerwise.load(copy, variant=CHANGES[name].variant, provider="cpu")
        timings = alternate({k: (lambda e=e: e.embed(texts)) for k, e in encoders.items()}, repeats=repeats)
        rows = []
        for label, encoder in encoders.items():
            variant = label.removeprefix("current ") if label.startswith("current ") else CHANGES[label].variant
            quality = agreement(encoder.embed(texts), reference)
            odd_min, odd_mean, odd_set = worst_set(encoder, odd, odd_references)
            alone = np.stack([encoder.embed([t])[0] for t in texts[:ALONE]])
            invariance = agreement(alone, encoder.embed(texts[:ALONE]))["cos_min"]
            rows.append({
                "change": label, "variant": variant, "what": CHANGES[label].what if label in CHANGES else "as exported",
                "texts_per_s": len(texts) / timings[label]["median_s"],
                "vs_current": timings[f"current {variant}"]["median_s"] / timings[label]["median_s"],
                "cos_min": quality["cos_min"], "cos_mean_worst_layer": quality["cos_mean_worst_layer"],
                "alone_vs_batched_cos_min": invariance,
                "odd_cos_min": odd_min, "odd_cos_mean_worst_layer": odd_mean, "odd_worst_set": odd_set,
            })  # fmt: skip
            encoder.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--changes", default=",".join(CHANGES), help=f"comma-separated, from {', '.join(CHANGES)} (default: all)")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    names = [n for n in args.changes.split(",") if n]
    unknown = [n for n in names if n not in CHANGES]
    if unknown or not names:
        parser.error(f"unknown changes {unknown or names}; choose from {', '.join(CHANGES)}")
    missing = sorted({CHANGES[n].variant for n in names} - set(read_manifest(args.bundle).variants) - {"fp32"})
    if missing or "fp32" not in read_manifest(args.bundle).variants:
        parser.error(f"the bundle lacks variant(s) {', '.join(missing or ['fp32'])}; export them first")
    if args.texts < 1 or args.repeats < 1:
        parser.error("--texts and --repeats must be >= 1")
    facts = machine()
    print(f"{facts['cpu']} ({facts['cpu_family_title']}) [{' '.join(facts['cpu_flags'])}]; {args.texts} sentences, all layers "
          f"mean-pooled, median of {args.repeats} alternated rounds\n")  # fmt: skip
    print(f"| change | variant | texts/s | vs current | cos to fp32 min / worst-layer mean | odd text: min / worst set's worst-layer mean "
          f"| first {ALONE} alone vs batched, cos min | what |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in measure(args.bundle, names, real_sentences(args.texts), args.repeats):
        print(f"| {r['change']} | {r['variant']} | {r['texts_per_s']:.0f} | {r['vs_current']:.3f}x | "
              f"{r['cos_min']:.5f} / {r['cos_mean_worst_layer']:.5f} | {r['odd_cos_min']:.5f} / {r['odd_cos_mean_worst_layer']:.5f} "
              f"({r['odd_worst_set']}) | {r['alone_vs_batched_cos_min']:.5f} | {r['what']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
