"""A simulated BanyanDB node for demos and end-to-end tests.

`page` models the node's Prometheus page as a pure function of time, `faults` describes injectable
faults, `server` is the HTTP adapter, `launcher` starts a node as a real process for tests and the
quick-start demo, and `python -m fodc.sim` runs one.
"""
