"""The flight recorder window: bounded, per-source, compressed (recorder.py; block format in codec.py)."""

from fodc.window.codec import FORMAT_VERSION, Block, BlockColumn, CodecError, decode_block, encode_block
from fodc.window.model import SeriesMeta, SeriesWindow, WindowStats
from fodc.window.recorder import FlightRecorder, NotAfterNewest
from fodc.window.sizing import estimate_window_seconds

__all__ = ["FORMAT_VERSION", "Block", "BlockColumn", "CodecError", "FlightRecorder", "NotAfterNewest", "SeriesMeta",
           "SeriesWindow", "WindowStats", "decode_block", "encode_block", "estimate_window_seconds"]
