"""How one call's texts become batches on this machine: the measured defaults per CPU family.

On the CPU a batch holds at most ``max_tokens`` padded tokens (big batches cost more than
they save there), and batches run side by side on one thread each: on 2 cores with
natural-length sentences that gave about 1.7x the throughput of intra-op threads, which gain
little on small matrices. From ``spread_from`` texts on, a call is cut into a multiple of
``side_by_side`` batches of about equal tokens (runtime/tokenize.py), so a handful of texts (the
server's regime at moderate concurrency) uses every core too and no thread idles at a call's end;
a single text runs on intra-op threads (lowest latency). On CUDA there is no cap and one batch
runs at a time. The figures behind each default are in docs/benchmarks.md ("Small calls");
``benchmarks/jobs/batching.py`` re-measures them on a machine.
"""

from __future__ import annotations

from dataclasses import dataclass

# Padded tokens per batch on the CPU, by CPU family (runtime/cpu.py), measured on 2 cores with int8
# MiniLM, all layers mean-pooled (texts/s):
# - AVX-512 VNNI, cap 256 / 512 / 1024 / 2048 / none: sentences 440 / 503 / 539 / 465 / 347;
#   512-token texts 15.9 / 17.5 / 16.7 / 16.3 / 12.7; sentences with a few long texts 325 / 333 / 306 / 314 / 84.
# - AVX2: sentences 240 / 227 / 223 / - / 175; 512-token texts 9.3 / 9.6 / 8.1 / - / 6.3; mixed 146 / 140 / 132 / - / 71
#   (256 and 512 within each other's spread).
# - AMX, 256 / 384 / 512 over 15 alternated repeats: sentences 830 / 783 / 750; 512-token texts 27.3 / 27.2 / 27.2;
#   mixed 446 / 430 / 430 (fused: equal within 2% on all three).
BATCH_TOKENS_CPU = 512  # families without an entry below
BATCH_TOKENS_BY_FAMILY = {"amx": 256}
# Texts from which a call is spread over the threads (side-by-side batches of about equal tokens), by
# CPU family: measured 2 on AVX-512 VNNI (docs/benchmarks.md, "Small calls"); AVX2 and AMX are not
# measured yet and take the default until benchmarks/jobs/batching.py runs there.
SPREAD_FROM_CPU = 2
SPREAD_FROM_BY_FAMILY: dict[str, int | None] = {}


def cpu_batch_tokens(family: str) -> int:
    """The padded-token cap for CPU batches on a CPU of ``family`` (a key of runtime/cpu.py's FAMILIES)."""
    return BATCH_TOKENS_BY_FAMILY.get(family, BATCH_TOKENS_CPU)


@dataclass(frozen=True)
class Batching:
    """How the texts of one ``embed`` call are cut into batches and run.

    ``max_tokens``: padded tokens a batch holds at most (None: no cap). ``side_by_side``: batches
    that run at once, on one thread each (1: one at a time on the intra-op threads).
    ``spread_from``: a call of at least this many texts is cut into a multiple of ``side_by_side``
    batches of about equal tokens (None: by the caps alone).
    """

    max_tokens: int | None
    side_by_side: int
    spread_from: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_tokens", "spread_from"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"Batching.{name} must be a positive int or None, got {value!r}")
        if not isinstance(self.side_by_side, int) or isinstance(self.side_by_side, bool) or self.side_by_side < 1:
            raise ValueError(f"Batching.side_by_side must be a positive int, got {self.side_by_side!r}")

    def spread(self, texts: int) -> int:
        """Batches a call of ``texts`` texts is cut into at least."""
        return self.side_by_side if self.spread_from is not None and texts >= self.spread_from else 1


def default_batching(provider: str, threads: int, family: str) -> Batching:
    """The measured default for ``provider`` ("cpu" or "cuda") with ``threads`` on a CPU of ``family``."""
    if provider != "cpu":
        return Batching(max_tokens=None, side_by_side=1)
    spread_from = SPREAD_FROM_BY_FAMILY.get(family, SPREAD_FROM_CPU)
    return Batching(cpu_batch_tokens(family), threads, spread_from)
