"""Write the bundle's ``tokenizer.json`` and prove it tokenizes exactly as transformers does.

The file is the checkpoint's fast tokenizer (for ALBERT, SentencePiece converted by
transformers) with any baked-in padding and truncation removed: the runtime and any
other language binding apply their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from .errors import ExportError


def write_tokenizer(hf_tokenizer: Any, path: Path, texts: list[str], max_length: int) -> Path:
    """Save the clean tokenizer.json; raise if it disagrees with transformers on ``texts``."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None) or getattr(hf_tokenizer, "_tokenizer", None)
    if backend is None:
        raise ExportError(f"{type(hf_tokenizer).__name__} has no tokenizers backend to save as tokenizer.json")
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(path))

    check = Tokenizer.from_file(str(path))
    check.enable_truncation(max_length)
    ours = [e.ids for e in check.encode_batch(texts)]
    theirs = hf_tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if list(a) != list(b):
            raise ExportError(
                f"the saved tokenizer.json gives different ids than transformers for text {index} "
                f"({len(a)} vs {len(b)} tokens); this tokenizer cannot be exported faithfully"
            )
    return path
