"""The progress bar ``embed`` and ``extract`` share: drawn on a terminal only, one line, ends with a newline."""

from __future__ import annotations

import io
import sys

from layerwise.io.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_fills_in_place_and_ends_the_line_when_done(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    advance = progress_bar(10)
    advance(5)
    advance(5)
    assert terminal.getvalue() == f"\r[{'#' * 15}{'.' * 15}] 5/10 texts\r[{'#' * 30}] 10/10 texts\n"


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    progress_bar(3)(3)
    assert pipe.getvalue() == ""
