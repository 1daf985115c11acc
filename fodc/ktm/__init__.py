"""Kernel Telemetry Module (eBPF through BCC). Placeholder until the KTM issue lands."""
