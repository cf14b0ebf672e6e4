"""The public surface fits on one screen, is pinned here, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import layerwise
import layerwise.exporter
import layerwise.runtime

ERRORS = [
    "BundleError",
    "ExportError",
    "FusionError",
    "InputError",
    "LayerwiseError",
    "NonFiniteOutputError",
    "ParityError",
    "ProviderError",
]


def test_public_names_are_exactly_these():
    assert sorted(layerwise.__all__) == sorted([*ERRORS, "EmbedOptions", "Encoder", "TruncationWarning", "__version__", "export", "load"])
    assert sorted(
        n
        for n in dir(layerwise)
        if not n.startswith("_") and n not in {"annotations", "Any", "TYPE_CHECKING"} and not isinstance(getattr(layerwise, n), type(sys))
    ) == sorted([*ERRORS, "EmbedOptions", "Encoder", "TruncationWarning", "export", "load"])


def test_runtime_and_exporter_surfaces_are_pinned():
    assert sorted(layerwise.runtime.__all__) == [
        "Batch", "Batching", "BundleError", "EmbedOptions", "EmbedStats", "Encoder", "EncoderInfo", "Engine", "InputError",
        "LayerwiseError",
        "NonFiniteOutputError", "ProviderError", "TokenAlignment", "Tokenized", "TruncationWarning", "VerifyReport", "Windows", "load",
    ]  # fmt: skip
    assert sorted(layerwise.exporter.__all__) == ["ExportError", "FusionError", "ParityError", "export"]
    for module in (layerwise, layerwise.runtime, layerwise.exporter):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


def test_the_encoder_and_engine_methods_are_pinned():
    """What code outside the runtime may call: the Encoder's API and, below ``embed``, the Engine's (for measuring)."""

    def public(cls: type) -> list[str]:
        return sorted(name for name in vars(cls) if not name.startswith("_"))

    assert public(layerwise.runtime.Encoder) == [
        "batching", "bertscore", "close", "embed", "embed_spans", "embed_tokens", "engine", "last_stats", "maxsim",
        "token_offsets", "tokenize", "tokenizer", "use_batching", "verify",
    ]  # fmt: skip
    assert public(layerwise.runtime.Engine) == [
        "hidden_states", "manifest", "run", "session", "session_options", "tuned",
    ]  # fmt: skip


def test_every_error_is_importable_from_layerwise_and_is_a_layerwise_error():
    for name in ERRORS:
        assert issubclass(getattr(layerwise, name), layerwise.LayerwiseError)
    assert layerwise.ParityError is layerwise.exporter.ParityError


def test_export_shows_its_typed_signature():
    import inspect

    wrapper, real = inspect.signature(layerwise.export), inspect.signature(layerwise.exporter.export)
    assert list(wrapper.parameters) == list(real.parameters)
    assert [p.default for p in wrapper.parameters.values()] == [p.default for p in real.parameters.values()]


def test_import_layerwise_does_not_import_torch_or_transformers():
    heavy = ("torch", "transformers", "onnx", "optimum", "ray", "pyarrow", "tritonclient")
    code = f"import sys, layerwise, layerwise.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
