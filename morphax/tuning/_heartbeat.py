"""The thread that renews a search's lease while the search is open."""

from __future__ import annotations

import threading
import weakref
from typing import Any


class _Heartbeat(threading.Thread):
    """Renews a search's lease while it is open (trials may run for minutes)."""

    def __init__(self, search: Any) -> None:
        super().__init__(name="morphax-lease", daemon=True)
        self.search = weakref.ref(search)
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            search = self.search()
            if search is None:
                return
            interval = search.lease_s / 3
            del search
            if self.stop.wait(interval):
                return
            search = self.search()
            if search is None:
                return
            search._renew()
            del search
