"""Refcounted canonical copies of the strings and label pairs that many series share.

A page repeats the same metric names and label pairs (group="sw_metric", le="0.5") across thousands of
series. Keeping one copy of each, counted, makes the window's memory both smaller and knowable: each atom is
priced once when it first appears and released when its last series goes.
"""

from __future__ import annotations

import sys
from typing import TypeVar

Atom = TypeVar("Atom", str, tuple[str, str])


def atom_size(atom: str | tuple[str, str]) -> int:
    if isinstance(atom, str):
        return sys.getsizeof(atom)
    return sys.getsizeof(atom) + sys.getsizeof(atom[0]) + sys.getsizeof(atom[1])


class Atoms:
    __slots__ = ("_canon", "_refs", "nbytes")

    def __init__(self) -> None:
        self._canon: dict = {}
        self._refs: dict = {}
        self.nbytes = 0  # the atoms themselves; containers() adds the tables

    def take(self, atom: Atom) -> Atom:
        canon = self._canon.get(atom)
        if canon is None:
            self._canon[atom] = atom
            self._refs[atom] = 1
            self.nbytes += atom_size(atom)
            return atom
        self._refs[canon] += 1
        return canon

    def give_back(self, atom: str | tuple[str, str]) -> None:
        refs = self._refs[atom] - 1
        if refs:
            self._refs[atom] = refs
            return
        del self._refs[atom]
        del self._canon[atom]
        self.nbytes -= atom_size(atom)

    def __len__(self) -> int:
        return len(self._canon)

    def total_bytes(self) -> int:
        # Refcounts above 256 are int objects of their own; a few, so a flat allowance covers them.
        return self.nbytes + sys.getsizeof(self._canon) + sys.getsizeof(self._refs) + 32 * len(self._refs) // 8
