"""System tests: Debian packages and systemd units exercised in booted Debian 12 containers (root only)."""
