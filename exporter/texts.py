"""Real English text, offline: a fixed parity set and a larger sentence corpus.

The parity set mixes short and long texts (one longer than any model maximum) from
public-domain works. The corpus is split from the Python reference manual shipped with
every CPython (``pydoc_data``): thousands of natural sentences, no download needed.
"""

from __future__ import annotations

import re

PARITY_TEXTS: tuple[str, ...] = (
    "Hello, world!",
    "Call me Ishmael.",
    "The quick brown fox jumps over the lazy dog.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, "
    "and dedicated to the proposition that all men are created equal.",
    "Café au lait costs €3.50 at 7:45 a.m.; naïve coöperation isn't free (see §12, p. 34).",
    "The mitochondria is the powerhouse of the cell, producing ATP through oxidative phosphorylation.",
    "Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul, "
    "I account it high time to get to sea as soon as I can.",
    "There is grandeur in this view of life, with its several powers, having been originally breathed into a few "
    "forms or into one; and that, whilst this planet has gone cycling on according to the fixed law of gravity, "
    "from so simple a beginning endless forms most beautiful and most wonderful have been, and are being, evolved.",
    "Q: Does the runtime leak padding into mean pooling? A: No, only real tokens count.",
    "",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, "
    "it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing "
    "before us, we were all going direct to Heaven, we were all going direct the other way.",
    # Longer than 512 tokens for every BERT-family vocabulary: exercises the model maximum.
    " ".join(
        [
            "When in the Course of human events, it becomes necessary for one people to dissolve the political bands "
            "which have connected them with another, and to assume among the powers of the earth, the separate and "
            "equal station to which the Laws of Nature and of Nature's God entitle them, a decent respect to the "
            "opinions of mankind requires that they should declare the causes which impel them to the separation.",
            "We hold these truths to be self-evident, that all men are created equal, that they are endowed by their "
            "Creator with certain unalienable Rights, that among these are Life, Liberty and the pursuit of Happiness.",
            "That to secure these rights, Governments are instituted among Men, deriving their just powers from the "
            "consent of the governed, That whenever any Form of Government becomes destructive of these ends, it is "
            "the Right of the People to alter or to abolish it, and to institute new Government, laying its "
            "foundation on such principles and organizing its powers in such form, as to them shall seem most likely "
            "to effect their Safety and Happiness.",
            "Prudence, indeed, will dictate that Governments long established should not be changed for light and "
            "transient causes; and accordingly all experience hath shewn, that mankind are more disposed to suffer, "
            "while evils are sufferable, than to right themselves by abolishing the forms to which they are "
            "accustomed.",
            "But when a long train of abuses and usurpations, pursuing invariably the same Object evinces a design to "
            "reduce them under absolute Despotism, it is their right, it is their duty, to throw off such Government, "
            "and to provide new Guards for their future security.",
            "Such has been the patient sufferance of these Colonies; and such is now the necessity which constrains "
            "them to alter their former Systems of Government.",
        ]
        * 2
    ),
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z]+")


def corpus_sentences(count: int, skip: int = 0) -> list[str]:
    """``count`` natural English sentences from the Python reference manual, after ``skip``.

    Deterministic for a given Python version; prose sentences of 5-80 words, mostly letters,
    without duplicates. Disjoint slices (different ``skip``) serve calibration and evaluation.
    """
    from pydoc_data.topics import topics

    seen: set[str] = set()
    sentences: list[str] = []
    for key in sorted(topics):
        for raw in _SENTENCE_END.split(topics[key]):
            sentence = " ".join(raw.split())
            words = sentence.split()
            letters = sum(len(w) for w in _WORD.findall(sentence))
            prose = sentence[:1].isupper() and sentence[-1] in ".!?" and ">>>" not in sentence
            mostly_letters = letters >= 0.8 * len(sentence.replace(" ", ""))
            if prose and mostly_letters and 5 <= len(words) <= 80 and sentence not in seen:
                seen.add(sentence)
                sentences.append(sentence)
    if skip + count > len(sentences):
        raise ValueError(f"the corpus has {len(sentences)} sentences; {skip} + {count} were asked for")
    return sentences[skip : skip + count]
