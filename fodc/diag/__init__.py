"""On-demand diagnostics on the agent: Go pprof profiles of the node, kept on disk and sent to the proxy."""
