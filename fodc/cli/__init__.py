"""The `fodc` operator command line (talks to the proxy HTTP API)."""
