"""The progress bar of `morphax search`: tqdm, with the best result so far."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """A tqdm bar over a search's trials with the best result so far.

    On a terminal tqdm redraws the line in place; into a file or pipe it
    writes its updates as they come (tqdm's own rules).
    """

    def __init__(self, total: int, *, done: int = 0, stream: TextIO | None = None) -> None:
        from tqdm.auto import tqdm

        self.total = total
        self.bar = tqdm(
            total=total,
            initial=min(done, total),
            file=stream if stream is not None else sys.stderr,
            unit="trial",
            dynamic_ncols=True,
            mininterval=0,
        )

    def update(self, done: int, best: float | None, note: str = "") -> None:
        self.bar.n = min(done, self.total)
        postfix = {"best": "-" if best is None else f"{best:.4f}"}
        if note:
            postfix["last"] = note
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
