"""The probe's demonstration task, offline: sentences of the Python reference manual labelled by their section.

CPython ships its reference manual's topics as text (``pydoc_data.topics``: what ``help("if")``
shows). Each prose sentence (5-80 words, mostly letters, starting upper-case, ending with
. ! or ?, no ``>>>``; a sentence seen in an earlier section is dropped) is labelled with the
key of the section it comes from; the sections with at least ``min_sentences`` sentences are
the classes. A real text with a label derived from its source, nothing hand-labelled; the
sections overlap in topic (``string-methods`` and ``formatstrings``, ``customization`` and
``specialnames``), so the task is not trivial. Deterministic for a given Python version.

    python -m layerwise.probe.demo topics.csv        # then: layerwise probe BUNDLE topics.csv
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z]+")


def section_sentences(min_sentences: int = 60, per_section: int | None = None) -> list[tuple[str, str]]:
    """(sentence, section) pairs: every section with at least ``min_sentences`` prose sentences,
    each cut to its first ``per_section`` sentences when given."""
    from pydoc_data.topics import topics

    seen: set[str] = set()
    by_section: dict[str, list[str]] = {}
    for key in sorted(topics):
        for raw in _SENTENCE_END.split(topics[key]):
            sentence = " ".join(raw.split())
            letters = sum(len(w) for w in _WORD.findall(sentence))
            prose = sentence[:1].isupper() and sentence[-1:] in (".", "!", "?") and ">>>" not in sentence
            if prose and letters >= 0.8 * len(sentence.replace(" ", "")) and 5 <= len(sentence.split()) <= 80 and sentence not in seen:
                seen.add(sentence)
                by_section.setdefault(key, []).append(sentence)
    return [
        (sentence, key)
        for key, sentences in by_section.items()
        if len(sentences) >= min_sentences
        for sentence in sentences[:per_section]
    ]


def write_csv(path: str | Path, min_sentences: int = 60, per_section: int | None = None) -> Path:
    """Write the task as a CSV with columns ``text`` and ``label``."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(section_sentences(min_sentences, per_section))
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_csv(sys.argv[1] if len(sys.argv) > 1 else "reference-sections.csv"))
