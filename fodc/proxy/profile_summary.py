"""JSON summaries of stored profiles (top functions and a bounded flame tree), so a page can draw a profile
without downloading and decoding the raw .pb.gz itself.

One helper for every place a profile sits on the proxy: a job's result file, a member of an incident bundle,
a file an agent sends. Every size is bounded (the compressed input, the decompressed protobuf, the rows and
flame nodes answered); results are cached by content hash, so a page polling a summary costs one decode.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify

from fodc.pprof.analysis import SUMMARY_MAX_NODES, SUMMARY_TOP, summary
from fodc.pprof.reader import PprofError, parse
from fodc.proxy.httpargs import BadRequest, query_args, whole_number_arg

MAX_PROFILE_BYTES = 64 * 1024 * 1024  # compressed, as the agents' --diagnostics-max-bytes default
MAX_RAW_BYTES = 64 * 1024 * 1024  # decompressed; Go profiles are a few MiB, and this is decoded in the worker
MAX_TOP = 500
MAX_DECODING = 2  # summaries decoded at once; more wait (DECODE_WAIT_S) and are then refused with a 503
DECODE_WAIT_S = 10.0
_CACHE_ENTRIES = 32
RESULTS: dict[str, int] = {}  # summaries answered by result (ok, cached, not_a_profile, busy): the proxy's metrics
_decoding = threading.BoundedSemaphore(MAX_DECODING)


class NotAProfile(Exception):
    """The stored file is not a readable pprof profile (a config snapshot, or damaged)."""


class SummaryBusy(Exception):
    """Too many summaries are being decoded at once."""


def _count(result: str) -> None:
    with _cache_lock:
        RESULTS[result] = RESULTS.get(result, 0) + 1


def not_a_profile(exc: NotAProfile | SummaryBusy) -> tuple[Response, int]:
    """The error handler blueprints register for NotAProfile (422: the file is there but is no profile)
    and SummaryBusy (503)."""
    if isinstance(exc, SummaryBusy):
        _count("busy")
        return jsonify(error="busy", message=str(exc)), 503
    _count("not_a_profile")
    return jsonify(error="not_a_profile", message=str(exc)), 422


def register_errors(bp: Blueprint) -> None:
    bp.register_error_handler(NotAProfile, not_a_profile)
    bp.register_error_handler(SummaryBusy, not_a_profile)


def summary_args() -> tuple[str | None, int]:
    """(sample_type, top) from the query string: ?sample_type=inuse_space&top=50."""
    args = query_args({"sample_type": None, "top": None})
    top = whole_number_arg(args, "top", SUMMARY_TOP, 1, MAX_TOP)
    sample_type = args.get("sample_type")
    if sample_type is not None and not (0 < len(sample_type) <= 64):
        raise BadRequest("sample_type must be 1 to 64 characters")
    return sample_type, top


_cache: OrderedDict[tuple[str, str | None, int], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def summarise(data: bytes, sample_type: str | None, top: int) -> dict[str, Any]:
    """The summary of profile bytes; NotAProfile (one line) when they do not decode or lack the type."""
    if len(data) > MAX_PROFILE_BYTES:
        raise NotAProfile(f"profile larger than {MAX_PROFILE_BYTES} bytes")
    key = (hashlib.sha256(data).hexdigest(), sample_type, top)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            RESULTS["cached"] = RESULTS.get("cached", 0) + 1  # under the lock already
            return cached
    if not _decoding.acquire(timeout=DECODE_WAIT_S):
        raise SummaryBusy(f"{MAX_DECODING} profile summaries are being made; try again shortly")
    try:
        result = summary(parse(data, MAX_RAW_BYTES), sample_type, top_n=top, max_nodes=SUMMARY_MAX_NODES)
    except PprofError as exc:
        raise NotAProfile(str(exc)) from None
    finally:
        _decoding.release()
    _count("ok")
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return result


def summarise_file(path: Path, sample_type: str | None, top: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read(MAX_PROFILE_BYTES + 1)
    return summarise(data, sample_type, top)


def bundle_member(bundle: Path | bytes, name: str) -> bytes | None:
    """The file `name` (e.g. cpu.pb.gz) in a bundle tar.gz whose members sit under one top directory; None
    when it holds no such file. Only regular files within the size bound are read."""
    try:
        fileobj = None if isinstance(bundle, Path) else io.BytesIO(bundle)
        with tarfile.open(bundle if fileobj is None else None, "r:gz", fileobj) as tar:
            for member in tar:
                if member.isfile() and member.name.split("/", 1)[-1] == name:
                    if member.size > MAX_PROFILE_BYTES:
                        raise NotAProfile(f"{name} is larger than {MAX_PROFILE_BYTES} bytes")
                    extracted = tar.extractfile(member)
                    return extracted.read() if extracted is not None else None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise NotAProfile(f"the bundle does not read: {exc}") from None
    return None
