"""The digest of a /metrics answer's order of series ids (proto/fodc/v1/series_table.proto, `ids_digest`).

Agent and proxy compute it alike: an agent whose ids are in the order the proxy says it holds sends only the
values, so the proxy reads no ids. 64 bits of BLAKE2b over the ids as little-endian uint32; never 0 (none).
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterable


def ids_digest(ids: Iterable[int]) -> int:
    words = ids if isinstance(ids, array) and ids.typecode == "I" else array("I", ids)
    if sys.byteorder == "big":
        words = array("I", words)
        words.byteswap()
    return int.from_bytes(hashlib.blake2b(words.tobytes(), digest_size=8).digest(), "little") or 1
