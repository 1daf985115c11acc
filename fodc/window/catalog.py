"""The recorder's series catalog: which series and families it holds, their shared names, and what they cost.

A series is created by the first scrape that carries it and forgotten once no block holds it; a family's
metadata lives exactly as long as one of its series does, so churn leaves nothing behind. Names and label
pairs are shared atoms (atoms.py), priced once.

Owned by the recorder and touched only under its lock; no locking or clocks here.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from fodc.window.atoms import Atoms
from fodc.window.model import Labels, SeriesMeta
from fodc.window.openblock import OpenBlock
from fodc.window.reads import UNTYPED
from fodc.window.records import SeriesEntry, SourceState
from fodc.window.sizing import meta_size, series_size

Heads = list[tuple[str, Labels, str]]


class SeriesCatalog:
    __slots__ = ("families", "atoms", "_family_refs", "_family_bytes", "_series_bytes")

    def __init__(self) -> None:
        self.families: dict[str, SeriesMeta] = {}  # the latest metadata seen, per family with a live series
        self.atoms = Atoms()
        self._family_refs: dict[str, int] = {}  # family -> live series of it
        self._family_bytes = 0
        self._series_bytes = 0

    def new_series(self, state: SourceState, name: str, labels: Labels, family: str) -> SeriesEntry:
        """Adds a series to `state`'s index, its strings shared with every other series that has them."""
        atoms = self.atoms
        name = atoms.take(name)
        labels = tuple(atoms.take(pair) for pair in labels)
        family = atoms.take(family)
        series = SeriesEntry(name, labels, family)
        key = (name, labels)
        series.cost = series_size(series, key, labels)
        state.series[key] = series
        self._series_bytes += series.cost
        self._family_refs[family] = self._family_refs.get(family, 0) + 1
        return series

    def forget(self, state: SourceState, series: SeriesEntry) -> None:
        """Removes a series no block holds any more, with its family's metadata if it was the family's last."""
        del state.series[(series.name, series.labels)]
        self._series_bytes -= series.cost
        atoms = self.atoms
        atoms.give_back(series.name)
        for pair in series.labels:
            atoms.give_back(pair)
        atoms.give_back(series.family)
        refs = self._family_refs[series.family] - 1
        if refs:
            self._family_refs[series.family] = refs
            return
        del self._family_refs[series.family]
        meta = self.families.pop(series.family, None)
        if meta is not None:
            self._family_bytes -= meta_size(meta)

    def update_families(self, families: Mapping[str, SeriesMeta]) -> None:
        """Keeps the newest metadata of the families that have a series held; ignores the rest."""
        known = self.families
        for name, meta in families.items():
            if name not in self._family_refs:
                continue  # no series of it held: keeping its metadata would leak under churn
            old = known.get(name)
            if old == meta:
                continue
            if old is not None:
                self._family_bytes -= meta_size(old)
            known[name] = meta
            self._family_bytes += meta_size(meta)

    def heads(self, block: OpenBlock) -> tuple[Heads, tuple[SeriesMeta, ...]]:
        """The (name, labels, family) of each column of `block` and its families' metadata, as a seal needs."""
        heads = [(series.name, series.labels, series.family) for series in block.series]
        names = dict.fromkeys(head[2] for head in heads)
        return heads, tuple(self.families.get(f) or SeriesMeta(f, UNTYPED, "", "") for f in names)

    def nbytes(self) -> int:
        """The catalog's accounted memory: its tables, atoms, metadata and series entries."""
        return (sys.getsizeof(self.families) + sys.getsizeof(self._family_refs) + self.atoms.total_bytes()
                + self._family_bytes + self._series_bytes)
