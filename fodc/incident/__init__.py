"""First-occurrence incidents: triggers that notice trouble, and bundles that freeze the evidence."""

# The built-in triggers an agent knows; threshold rules add `rule:<name>` (fodc.incident.rules).
TRIGGERS = ("node-down", "node-unresponsive", "node-restart", "memory-pressure", "ktm-read-latency", "node-crash",
            "node-oom")
# Triggers nobody configures, because someone asks for them: `fodc capture`, the trigger file, SIGUSR2.
PULLED = ("manual",)
