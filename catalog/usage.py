"""Usage statistics: downloads and API calls per dataset and per day, nothing about callers.

Counts are kept in memory and added to the store every few seconds (and when asked),
so counting costs a request no database write. No IP address, user agent or query is
kept: only (dataset, day, kind) and a number.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date

from catalog.store import Usage
from core import clock

KINDS = {"telechargement": "téléchargements", "api": "appels à l'API", "page": "consultations"}


class UsageCounter:
    def __init__(self, store: Usage, flush_seconds: float = 5.0) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._counts: Counter[tuple[str, date, str]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, dataset: str, kind: str) -> None:
        with self._lock:
            self._counts[(dataset, clock.today(), kind)] += 1

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        self.store.add_usage(counts)

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.flush_seconds):
                self.flush()

        self._thread = threading.Thread(target=run, name="statistiques", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.flush()
