"""What a BanyanDB node runs with: its argv, environment and config files, captured as comparable snapshots.

Pure functions over plain data (argv lists, environment dicts, file bytes) except `procread`, which is the
only module that touches /proc and the filesystem. The agent captures; the proxy compares (drift).
"""
