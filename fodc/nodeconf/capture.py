"""Assembles one snapshot of the node: find the process, read it, parse and redact, read its config files.

Never raises for anything the node or host does: an unreadable part becomes an entry in `errors` and the
rest of the snapshot is still taken (a snapshot that says "permission denied reading the environment" is
worth more than none).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fodc.nodeconf.argv import parse_argv
from fodc.nodeconf.finder import NodeProcessFinder, NotFound
from fodc.nodeconf.procread import ProcessView, process_start_ms, read_config_file, read_process
from fodc.nodeconf.redact import (
    REDACTED,
    SecretNames,
    filter_environment,
    redact_argv,
    redact_config_text,
    redact_value,
)
from fodc.nodeconf.snapshot import Snapshot, stamp
from fodc.times import rfc3339


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    pid_file: str | None = None
    systemd_unit: str | None = None
    process_name: str = "banyand"
    pprof_url: str | None = None
    env_allow: tuple[str, ...] = ("*",)
    env_deny: tuple[str, ...] = ()
    secret_patterns: tuple[str, ...] = ()
    config_files: tuple[str, ...] = ()
    file_max_bytes: int = 256 * 1024
    proc_root: str = "/proc"


class NodeConfigCapturer:
    def __init__(self, options: CaptureOptions, *, node_id: str, role: str, agent_config: Mapping[str, object],
                 version_source: Callable[[], str | None] = lambda: None) -> None:
        self.options = options
        self.node_id = node_id
        self.role = role
        self.agent_config = {k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                             for k, v in agent_config.items()}
        self.version_source = version_source
        self.is_secret = SecretNames(extra_patterns=options.secret_patterns)
        self.finder = NodeProcessFinder(pid_file=options.pid_file, systemd_unit=options.systemd_unit,
                                        process_name=options.process_name, proc_root=options.proc_root)

    def identity(self) -> tuple[int, int] | None:
        """(pid, start ms) of the node process, or None: cheap enough to poll for restarts."""
        try:
            pid = self.finder.find().pid
            return pid, process_start_ms(pid, self.options.proc_root)
        except (NotFound, OSError, ValueError, IndexError):
            return None

    def capture(self, reason: str, now_ms: int) -> Snapshot:
        errors: dict[str, str] = {}
        process: dict[str, object] = {}
        view: ProcessView | None = None
        try:
            found = self.finder.find()
            view = read_process(found.pid, self.options.proc_root)
            errors.update(view.errors)
            process = {"pid": found.pid, "found_by": found.how, "argv_source": "proc"}
            if view.start_time_ms is not None:
                process["start_time_ms"] = view.start_time_ms
                process["start_time"] = rfc3339(view.start_time_ms)
        except NotFound as exc:
            errors["process"] = str(exc)
        argv = list(view.argv) if view is not None and view.argv else None
        if argv is None and self.options.pprof_url:
            argv = self._argv_from_pprof(self.options.pprof_url, errors)
            if argv is not None:
                process["argv_source"] = "pprof"
                errors.pop("argv", None)
        snapshot: Snapshot = {
            "node_id": self.node_id, "role": self.role, "reason": reason, "process": process,
            "binary": view.binary if view is not None else None,
            "version": self._version(errors),
            "argv": None, "flags": {}, "positional": [], "env": None, "files": {},
            "agent": dict(self.agent_config),
        }
        if argv is not None:
            parsed = parse_argv(argv)
            snapshot["argv"] = redact_argv(argv, self.is_secret)
            snapshot["flags"] = {name: REDACTED if self.is_secret(name) else _shown(value)
                                 for name, value in sorted(parsed.flags.items())}
            snapshot["positional"] = list(parsed.positional)
            snapshot["files"] = self._files(parsed.flags, errors)
        if view is not None and view.environ is not None:
            env, left_out = filter_environment(view.environ, allow=self.options.env_allow,
                                               deny=self.options.env_deny, is_secret=self.is_secret)
            snapshot["env"] = env
            snapshot["env_left_out"] = left_out
        elif "env" not in errors:
            errors["env"] = "no process to read the environment from" if view is None else "environment unavailable"
        snapshot["errors"] = dict(sorted(errors.items()))
        return stamp(snapshot, now_ms)

    def _version(self, errors: dict[str, str]) -> str | None:
        try:
            return self.version_source()
        except Exception as exc:  # a failing lookup must not cost the snapshot
            errors["version"] = f"cannot determine the version: {exc}"
            return None

    def _argv_from_pprof(self, pprof_url: str, errors: dict[str, str]) -> list[str] | None:
        url = f"{pprof_url.rstrip('/')}/debug/pprof/cmdline"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                raw = resp.read(1024 * 1024)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors["argv_pprof"] = f"cannot read {url}: {getattr(exc, 'reason', exc)}"
            return None
        parts = raw.decode(errors="replace").split("\0")
        return [p for p in parts if p] or None

    def _files(self, flags: Mapping[str, str | list[str]], errors: dict[str, str]) -> dict[str, dict[str, object]]:
        """Config files: those named explicitly, and those the flags point to (see `_names_config_file`)."""
        wanted: dict[str, bool] = {path: True for path in self.options.config_files}
        for name, value in flags.items():
            guarded = self.is_secret.guards_file(name) or self.is_secret(name)
            for path in value if isinstance(value, list) else [value]:
                if _names_config_file(name, path) and os.path.isfile(path):
                    wanted[path] = wanted.get(path, True) and not guarded
        files: dict[str, dict[str, object]] = {}
        for path, keep in sorted(wanted.items()):
            captured = read_config_file(path, self.options.file_max_bytes, keep_content=keep)
            info = captured.to_json()
            if captured.content is not None:
                text, hidden = redact_config_text(captured.content, self.is_secret)
                info["content"] = text
                if hidden:
                    info["redacted_lines"] = hidden
            if captured.error:
                errors[f"file:{path}"] = captured.error
            files[path] = info
        return files


def _shown(value: str | list[str]) -> str | list[str]:
    """A flag's value with credentials found by their shape replaced (fodc.nodeconf.redact.redact_value)."""
    return [redact_value(v) for v in value] if isinstance(value, list) else redact_value(value)


CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".conf", ".cfg", ".ini", ".properties", ".env")


def _names_config_file(flag: str, value: str) -> bool:
    """An absolute path given to a flag about configuration, or with a config file's extension.

    Pid files, data directories, certificates and sockets are left alone: they are not configuration."""
    if not value.startswith("/"):
        return False
    words = set(flag.lower().replace("_", "-").split("-"))
    return bool(words & {"config", "conf", "cfg"}) or value.lower().endswith(CONFIG_SUFFIXES)
