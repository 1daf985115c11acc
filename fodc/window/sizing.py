"""Memory figures for the flight recorder: what one series, one family costs, and how long a window fits.

The recorder's budget is a hard bound on memory it *accounts*; these figures make the accounting match what
the interpreter really allocates (tests/test_window_budget.py checks it against tracemalloc). Container sizes
(dicts, arrays, sets) are measured with sys.getsizeof where they live; this module prices the objects the
recorder keeps per series and per family.
"""

from __future__ import annotations

import sys

from fodc.window.model import Labels, SeriesMeta

# Python int objects the recorder keeps per series (column base, block sequence, cost) beyond the small-int cache.
_INT_OBJECTS_PER_SERIES = 3 * 32
DEFAULT_FIXED_BYTES_PER_SERIES = 400
DEFAULT_BYTES_PER_SAMPLE = 1.0


def series_size(series_object: object, key: tuple, labels: Labels) -> int:
    """What one series entry allocates itself: its object, its key and labels tuples (the names and label pairs
    are shared atoms, priced in atoms.py; the dict slot is measured with the dict)."""
    return sys.getsizeof(series_object) + sys.getsizeof(key) + sys.getsizeof(labels) + _INT_OBJECTS_PER_SERIES


def meta_size(meta: SeriesMeta) -> int:
    return (sys.getsizeof(meta) + sys.getsizeof(meta.name) + sys.getsizeof(meta.type) + sys.getsizeof(meta.help)
            + sys.getsizeof(meta.unit) + 32)


def estimate_window_seconds(budget_bytes: int, series: int, interval_s: float, bytes_per_sample: float, *,
                            block_scrapes: int = 120,
                            fixed_bytes_per_series: float = DEFAULT_FIXED_BYTES_PER_SERIES) -> float:
    """How many seconds of `series` series sampled every `interval_s` fit in `budget_bytes`.

    The newest `block_scrapes` scrapes sit uncompressed (8 bytes a cell); the rest of the budget, after the
    per-series bookkeeping, holds sealed samples at `bytes_per_sample`.
    """
    if series <= 0 or interval_s <= 0:
        return 0.0
    room = budget_bytes - series * fixed_bytes_per_series
    open_bytes = series * block_scrapes * 8
    if room <= open_bytes:
        return max(0.0, room / (series * 8)) * interval_s
    sealed_scrapes = (room - open_bytes) / (series * max(bytes_per_sample, 0.001))
    return (block_scrapes + sealed_scrapes) * interval_s
