"""FODC proxy: agent registry, cluster view and the HTTP API."""
