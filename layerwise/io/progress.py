"""The one-line progress bar ``layerwise embed`` and ``layerwise extract`` draw on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def progress_bar(total: int) -> Callable[[int], None]:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""
    state = {"done": 0}
    if not sys.stderr.isatty():
        return lambda rows: None

    def advance(rows: int) -> None:
        state["done"] += rows
        filled = int(30 * state["done"] / max(total, 1))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {state['done']}/{total} texts")
        sys.stderr.write("\n" if state["done"] >= total else "")
        sys.stderr.flush()

    return advance


def progress_callback() -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback (what the scoring functions call) drawing ``progress_bar``."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def report(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = progress_bar(total)
        state["bar"](done - state["done"])
        state["done"] = done

    return report
