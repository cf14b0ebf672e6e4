"""Writing to standard streams that a reader may have closed, without the process dying.

Python ignores SIGPIPE, so a write to a pipe whose reader left raises ``BrokenPipeError``
instead of killing the process; the signal must stay ignored in every long-running command
(``serve``, ``extract``): with SIGPIPE at its default, one client resetting its connection while
the server writes to it ends the whole server (exit 141), because a socket write raises the
same signal. Short commands end quietly on a closed stdout (``quiet_broken_pipe``); log
handlers whose stream went away stop writing instead of printing a traceback per record
(``LossyStreamHandler``), and the server logs through ``BackgroundStreamHandler``, so a log reader
that stalls cannot stop it answering.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import Any

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


class BackgroundStreamHandler(logging.Handler):
    """Writes records to its stream on a thread of its own, through a bounded queue: a log reader that
    stalls (alive, not reading: the pipe fills) blocks that thread only, never the caller (the server's
    event loop). Records that find the queue full are dropped and counted; the count is written once
    the stream moves again. ``flush`` (and so logging's shutdown) waits a moment for the queue, no longer."""

    QUEUED = 10_000  # records waiting at most
    FLUSH_WAIT_S = 2.0

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self._target = LossyStreamHandler(stream)
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(self.QUEUED)
        self._dropped = 0
        threading.Thread(target=self._write, name="layerwise-log", daemon=True).start()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - logging's name
        super().setFormatter(fmt)
        self._target.setFormatter(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._dropped += 1

    def _write(self) -> None:
        while True:
            record = self._queue.get()
            try:
                if self._dropped:
                    dropped, self._dropped = self._dropped, 0
                    self._target.stream.write(f"({dropped} log records dropped: the log stream was not being read)\n")
                self._target.handle(record)
            except Exception:  # noqa: BLE001 - a log line must never end the writer
                pass
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        deadline = time.monotonic() + self.FLUSH_WAIT_S
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
