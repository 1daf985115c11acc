"""Sample values as fodc's JSON carries them.

JSON has no NaN or infinities: `json.dumps` writes bare `NaN`/`Infinity`, which browsers and strict parsers
refuse. Every JSON document fodc writes (incident series, /metrics-windows, `fodc dump`) spells them as the
exposition format does, as the strings "NaN", "+Inf" and "-Inf"; finite values stay numbers.
"""

from __future__ import annotations

import math


def json_value(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"
