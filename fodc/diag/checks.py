"""What a taken profile says about itself that the operator must hear: a block or mutex profile with no
samples means the node never enabled that profiling, not that it had no contention.

Go records blocking events only after runtime.SetBlockProfileRate(rate > 0) and lock contention only after
runtime.SetMutexProfileFraction(n > 0); both are off by default, so such a profile is empty however busy
the node is. The job still ends `done` (the node answered correctly) but carries this warning.
"""

from __future__ import annotations

from pathlib import Path

EMPTY_CONTENTION_HINT = ("Go records block and mutex profiles only after the program calls "
                         "runtime.SetBlockProfileRate / runtime.SetMutexProfileFraction with a value above 0")

_SWITCHES = {
    "block": "runtime.SetBlockProfileRate",
    "mutex": "runtime.SetMutexProfileFraction",
}


def profile_warning(kind: str, path: Path) -> str:
    """A one-line warning about the profile at `path`, or "" when there is nothing to say."""
    switch = _SWITCHES.get(kind)
    if switch is None:
        return ""
    # Imported here: the pprof decoder's descriptors cost the agent ~2 MiB, and only these two kinds need it.
    from fodc.pprof.reader import PprofError, read_file  # noqa: PLC0415

    try:
        profile = read_file(path)
    except PprofError as exc:
        return f"the node's {kind} profile does not read as pprof: {exc}"
    if any(any(sample.values) for sample in profile.samples):
        return ""
    return (f"the {kind} profile has no samples: {kind} profiling is off on this node unless it calls "
            f"{switch} with a value above 0 (Go's default is off)")
