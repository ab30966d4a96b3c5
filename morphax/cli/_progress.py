"""A one-line progress bar for a search."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line progress bar with the best result so far and an ETA.

    On a terminal the line is redrawn in place; otherwise one line per update.
    """

    def __init__(
        self, total: int, *, done: int = 0, stream: TextIO | None = None, width: int = 24
    ) -> None:
        self.total, self.width, self.first = total, width, done
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, done: int, best: float | None, note: str = "") -> str:
        filled = int(self.width * min(done, self.total) / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        ran = done - self.first
        eta = (
            f" eta {elapsed / ran * (self.total - done):.0f}s"
            if ran > 0 and done < self.total
            else ""
        )
        best_text = "-" if best is None else f"{best:.4f}"
        return f"[{bar}] {done}/{self.total} best {best_text} {elapsed:.1f}s{eta} {note}".rstrip()

    def update(self, done: int, best: float | None, note: str = "") -> None:
        text = self.line(done, best, note)
        if self.tty:
            self.stream.write("\r" + text[:119].ljust(119))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()
