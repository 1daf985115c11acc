"""Kernel Telemetry Module: eBPF (BCC, tracepoints only) counters and latency histograms for the database
process, plus OS metrics from /proc that flow whether or not eBPF loads. See docs/ktm.md.
"""

from fodc.ktm.status import KtmStatus, Mode, ProgramState
from fodc.ktm.telemetry import KernelTelemetry

__all__ = ["KernelTelemetry", "KtmStatus", "Mode", "ProgramState"]
