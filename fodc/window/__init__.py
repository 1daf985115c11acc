"""The flight recorder window: bounded, per-source, compressed (see recorder.py and codec.py)."""

from fodc.window.codec import CodecError, decode_block, encode_block
from fodc.window.recorder import (
    FlightRecorder,
    SeriesMeta,
    SeriesWindow,
    WindowStats,
    estimate_window_seconds,
)

__all__ = ["CodecError", "FlightRecorder", "SeriesMeta", "SeriesWindow", "WindowStats", "decode_block",
           "encode_block", "estimate_window_seconds"]
