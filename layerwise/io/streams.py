"""Writing to standard streams that a reader may have closed, without the process dying.

Python ignores SIGPIPE, so a write to a pipe whose reader left raises ``BrokenPipeError``
instead of killing the process; the signal must stay ignored in every long-running command
(``serve``, ``extract``): with SIGPIPE at its default, one client resetting its connection while
the server writes to it ends the whole server (exit 141), because a socket write raises the
same signal. Short commands end quietly on a closed stdout (``quiet_broken_pipe``); log
handlers whose stream went away stop writing instead of printing a traceback per record
(``LossyStreamHandler``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

BROKEN_PIPE_STATUS = 128 + int(getattr(signal, "SIGPIPE", 13))  # what a shell reports for a process SIGPIPE ended: 141


def quiet_broken_pipe() -> int:
    """After a BrokenPipeError on stdout: point stdout at /dev/null so the interpreter's last flush
    cannot fail again, and give the status a shell shows for a reader that left (``inspect B | head``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError):
                pass
    os.close(devnull)
    return BROKEN_PIPE_STATUS


class LossyStreamHandler(logging.StreamHandler):
    """A StreamHandler that drops records once its stream cannot be written (a closed pipe or
    terminal), instead of logging's traceback for every record: the process keeps working."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], OSError):
            self.stream = _Discard()  # not setStream: it would flush the broken stream again
            return
        super().handleError(record)


class _Discard:
    """A text stream that takes everything and keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
