"""Booted Debian 12 containers for system tests: a cached debootstrap rootfs, booted with systemd-nspawn.

Used by the package tests (tests/system/test_packages.py) and by the Ansible/molecule scenarios, which drive
it through the command line at the bottom (`boot` writes a state file, `halt` reads it). Standard library
only, so it runs from any interpreter.

How it works, and why:
- The rootfs is built once with `debootstrap --variant=minbase` into a cache directory and reused across
  runs. It is built in a temporary directory next to the cache and renamed into place, so an interrupted
  build never leaves a half rootfs behind; a marker file records the package list it was built with.
- Every container boots from an overlayfs whose lower layer is the cached rootfs, so booting costs no copy
  and the cache is never modified. Without overlayfs support the rootfs is copied instead.
- `systemd-nspawn -b --register=no --keep-unit` works without systemd as the host's PID 1. There is no
  --private-network: containers share the host's network namespace and reach each other (and the test)
  on 127.0.0.1, so every daemon in a container needs its own port.
- Commands run inside through `nsenter -t <container init pid> -a`; files are copied in through
  /proc/<init pid>/root, which is the container's own view of its filesystem.
- A container is halted with SIGTERM to systemd-nspawn (a clean shutdown of the container's systemd);
  SIGKILL only after a deadline. Cleanup (unmount, remove the overlay) happens whatever the outcome.

It must never touch anything outside its cache directory and the scratch directories it creates.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("FODC_TEST_CACHE_DIR", "/var/cache/fodc-test"))
DEFAULT_SUITE = "bookworm"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
# What a booted test container needs beyond minbase: an init, D-Bus for systemctl, Python for the packaged
# daemons and for Ansible (python3-apt for its apt module), adduser for maintainer scripts, procps for ps/kill.
BASE_PACKAGES: tuple[str, ...] = ("systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "adduser",
                                  "procps")
REQUIRED_TOOLS = ("debootstrap", "systemd-nspawn", "nsenter", "pgrep", "mount", "umount")
MARKER = ".fodc-rootfs-packages"


BOOTED = ("running", "degraded")
STILL_BOOTING = ("", "offline", "initializing", "starting")  # systemctl is-system-running on the way up


class ContainerError(RuntimeError):
    """A container could not be built, booted, or commanded; the message says which step and why."""


def host_mirror(sources: Sequence[Path] = APT_SOURCES) -> str:
    """The Debian mirror this host's apt uses (FODC_TEST_DEBIAN_MIRROR overrides): the URI of the first
    `deb` source of the main archive, i.e. not a -security or -updates suite.

    Reads one-line sources (sources.list, *.list) and deb822 ones (*.sources), so the containers fetch from
    wherever this machine is set up to fetch, and no mirror is written into the repository.
    """
    override = os.environ.get("FODC_TEST_DEBIAN_MIRROR")
    if override:
        return override
    files: list[Path] = []
    for source in sources:
        files.extend(sorted(source.glob("*.list")) + sorted(source.glob("*.sources")) if source.is_dir() else
                     [source] if source.is_file() else [])
    for path in files:
        for uri, suites in _deb_sources(path):
            if any(suite and "-" not in suite for suite in suites) and "/debian" in uri:
                return uri.rstrip("/")
    raise ContainerError(f"no Debian archive among the apt sources in {', '.join(map(str, sources))}; "
                         "set FODC_TEST_DEBIAN_MIRROR")


def _deb_sources(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(URI, suites) of each `deb` entry of a sources file, in order."""
    text = path.read_text(errors="replace")
    if path.suffix == ".sources":
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line and not line.startswith(("#", " ", "\t")) and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    yield uri, fields.get("suites", "").split()
        return
    for line in text.splitlines():
        words = [w for w in line.split("#", 1)[0].split() if not (w.startswith("[") or w.endswith("]"))]
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def missing_requirements() -> str | None:
    """Why booted containers cannot run here (a skip reason), or None when they can."""
    if os.geteuid() != 0:
        return "booted-container tests need root (systemd-nspawn, debootstrap, mounts)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"missing {', '.join(missing)}: apt-get install debootstrap systemd-container "
                "(dev/bootstrap does this as root)")
    return None


def rootfs_path(cache_dir: Path = DEFAULT_CACHE_DIR, suite: str = DEFAULT_SUITE,
                packages: Sequence[str] = BASE_PACKAGES) -> Path:
    """Where the rootfs for this package list lives; the default list gets the plain name."""
    if tuple(packages) == BASE_PACKAGES:
        return cache_dir / f"rootfs-{suite}"
    digest = hashlib.sha256(",".join(sorted(packages)).encode()).hexdigest()[:10]
    return cache_dir / f"rootfs-{suite}-{digest}"


def ensure_rootfs(cache_dir: Path = DEFAULT_CACHE_DIR, suite: str = DEFAULT_SUITE,
                  packages: Sequence[str] = BASE_PACKAGES, mirror: str | None = None) -> Path:
    """Returns a ready rootfs for `packages`, building it (about a minute) only if the cache lacks it.

    Concurrent callers wait on a lock file instead of building twice.
    """
    target = rootfs_path(cache_dir, suite, packages)
    wanted = ",".join(sorted(packages))
    if _marker_matches(target, wanted):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker_matches(target, wanted):
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
        try:
            root = scratch / "root"
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root),
                 mirror or host_mirror()],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200,
            )
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
                raise ContainerError(f"debootstrap {suite} failed (exit {result.returncode}):\n{tail}")
            # Without /etc/hostname a container takes its hostname from --machine, so each one differs.
            (root / "etc" / "hostname").unlink(missing_ok=True)
            (root / MARKER).write_text(wanted + "\n")
            if target.exists():
                stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex[:8]}")
                target.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            root.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def _marker_matches(root: Path, wanted: str) -> bool:
    try:
        return (root / MARKER).read_text().strip() == wanted
    except OSError:
        return False


@dataclass
class Container:
    """A booted container: run commands in it, copy files into it. Create with `boot()`."""

    name: str
    nspawn_pid: int
    init_pid: int
    scratch: Path
    root: Path
    log_path: Path
    _overlay_mounted: bool = field(default=False, repr=False)

    def run(self, *argv: str, check: bool = True, timeout: float = 300, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Runs argv inside the container (all its namespaces) and returns the completed process."""
        env_args = [f"{k}={v}" for k, v in (env or {}).items()]
        command = ["nsenter", "-t", str(self.init_pid), "-a", "--", "/usr/bin/env", "-i",
                   "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
                   "HOME=/root", *env_args, *argv]
        result = subprocess.run(command, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ContainerError(f"in container {self.name}: {' '.join(argv)} exited {result.returncode}\n"
                                 f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}")
        return result

    def sh(self, script: str, **kwargs) -> subprocess.CompletedProcess[str]:
        """Runs a shell script inside the container (`sh -ec script`)."""
        return self.run("/bin/sh", "-ec", script, **kwargs)

    def path(self, inside: str) -> Path:
        """The host path through which `inside` (an absolute path in the container) can be read or written."""
        return Path(f"/proc/{self.init_pid}/root") / inside.lstrip("/")

    def copy_in(self, source: Path, dest: str, mode: int | None = None) -> None:
        """Copies a host file to `dest` (absolute, in the container), creating parent directories."""
        target = self.path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        if mode is not None:
            os.chmod(target, mode)

    def write_file(self, dest: str, text: str) -> None:
        target = self.path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def read_file(self, inside: str) -> str:
        return self.path(inside).read_text()

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def wait_until_booted(self, timeout: float = 120) -> str:
        """Waits for the container's systemd to finish booting; returns "running" or "degraded".

        Until systemd answers, `is-system-running` says "offline" (or nothing); under load, with several
        containers booting at once, that can last seconds, so it is waited out like "starting". Only a state
        that booting cannot leave (maintenance, stopping) or the deadline fails."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run("systemctl", "is-system-running", "--wait", check=False,
                              timeout=max(1.0, deadline - time.monotonic()))
            state = result.stdout.strip()
            if state in BOOTED:
                return state
            if state not in STILL_BOOTING or time.monotonic() > deadline:
                raise ContainerError(f"container {self.name} did not boot: state {state!r} "
                                     f"{result.stderr.strip()}\n{_tail(self.log_path)}")
            time.sleep(0.2)

    def halt(self, timeout: float = 60) -> None:
        """Stops the container cleanly (SIGTERM to nspawn), SIGKILL after `timeout`, then removes its files."""
        try:
            _terminate(self.nspawn_pid, timeout)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._overlay_mounted:
            subprocess.run(["umount", str(self.root)], capture_output=True)
            if _is_mountpoint(self.root):
                subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
            self._overlay_mounted = False
        shutil.rmtree(self.scratch, ignore_errors=True)

    def to_state(self) -> dict[str, object]:
        return {"name": self.name, "nspawn_pid": self.nspawn_pid, "init_pid": self.init_pid,
                "scratch": str(self.scratch), "root": str(self.root), "log_path": str(self.log_path),
                "overlay_mounted": self._overlay_mounted}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Container:
        return cls(name=str(state["name"]), nspawn_pid=int(state["nspawn_pid"]),  # type: ignore[arg-type]
                   init_pid=int(state["init_pid"]), scratch=Path(str(state["scratch"])),  # type: ignore[arg-type]
                   root=Path(str(state["root"])), log_path=Path(str(state["log_path"])),
                   _overlay_mounted=bool(state["overlay_mounted"]))


def boot(rootfs: Path, *, name: str | None = None, nspawn_args: Sequence[str] = (),
         scratch_parent: Path | None = None, boot_timeout: float = 120) -> Container:
    """Boots a throwaway container from `rootfs` (left unmodified) and waits until its systemd is up.

    `nspawn_args` are extra systemd-nspawn options, e.g. ("--capability=CAP_BPF,CAP_PERFMON",
    "--system-call-filter=bpf perf_event_open") to allow eBPF inside. The caller must call `halt()`;
    `booted()` does that for you.
    """
    name = name or f"fodc-test-{uuid.uuid4().hex[:8]}"
    scratch = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=scratch_parent or rootfs.parent))
    root = scratch / "merged"
    log_path = scratch / "console.log"
    container = Container(name=name, nspawn_pid=0, init_pid=0, scratch=scratch, root=root, log_path=log_path)
    try:
        container._overlay_mounted = _mount_overlay(rootfs, scratch)
        if not container._overlay_mounted:
            subprocess.run(["cp", "-a", "--reflink=auto", f"{rootfs}/.", str(root)], check=True)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["systemd-nspawn", "-D", str(root), "-b", "--register=no", "--keep-unit", f"--machine={name}",
                 "--console=passive", *nspawn_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        container.nspawn_pid = process.pid
        container.init_pid = _wait_for_init(process, log_path, deadline=time.monotonic() + 60)
        container.wait_until_booted(boot_timeout)
        return container
    except BaseException:
        if container.nspawn_pid:
            _terminate(container.nspawn_pid, 30)
        container._cleanup()
        raise


@contextlib.contextmanager
def booted(rootfs: Path, **kwargs) -> Iterator[Container]:
    """`with booted(rootfs) as c:` — a container that is halted and removed whatever happens inside."""
    container = boot(rootfs, **kwargs)
    try:
        yield container
    finally:
        container.halt()


def _mount_overlay(lower: Path, scratch: Path) -> bool:
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for directory in (upper, work, merged):
        directory.mkdir()
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}",
         str(merged)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(upper, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        return False
    return True


def _wait_for_init(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited {process.returncode}: {_tail(log_path)}")
        found = subprocess.run(["pgrep", "-P", str(process.pid), "-x", "systemd"], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.split():
            return int(found.stdout.split()[0])
        time.sleep(0.1)
    raise ContainerError(f"no systemd child of systemd-nspawn ({process.pid}) appeared: {_tail(log_path)}")


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM (nspawn halts the container), then SIGKILL to the whole nspawn session after `timeout`."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """True while `pid` runs; reaps it when it is our child (a zombie counts as gone)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _is_mountpoint(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Booted Debian 12 test containers (systemd-nspawn). `boot` leaves the container running "
        "and writes a JSON state file (name, init_pid, ...) for `run` and `halt`.")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    commands = parser.add_subparsers(dest="command", required=True)
    rootfs_cmd = commands.add_parser("rootfs", help="build the cached rootfs if needed; print its path")
    rootfs_cmd.add_argument("--package", action="append", default=[], help="extra package to include")
    boot_cmd = commands.add_parser("boot", help="boot a container; write its state file")
    boot_cmd.add_argument("--state", type=Path, required=True)
    boot_cmd.add_argument("--name")
    boot_cmd.add_argument("--package", action="append", default=[], help="extra package in the rootfs")
    boot_cmd.add_argument("--nspawn-arg", action="append", default=[], help="extra systemd-nspawn option")
    run_cmd = commands.add_parser("run", help="run a command in a booted container")
    run_cmd.add_argument("--state", type=Path, required=True)
    run_cmd.add_argument("argv", nargs=argparse.REMAINDER)
    halt_cmd = commands.add_parser("halt", help="halt a booted container and remove its files")
    halt_cmd.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)

    reason = missing_requirements()
    if reason:
        print(f"nspawn: {reason}", file=sys.stderr)
        return 2
    if args.command == "rootfs":
        print(ensure_rootfs(args.cache_dir, packages=BASE_PACKAGES + tuple(args.package)))
    elif args.command == "boot":
        rootfs = ensure_rootfs(args.cache_dir, packages=BASE_PACKAGES + tuple(args.package))
        container = boot(rootfs, name=args.name, nspawn_args=args.nspawn_arg)
        args.state.write_text(json.dumps(container.to_state(), indent=2) + "\n")
        print(json.dumps(container.to_state()))
    elif args.command == "run":
        container = Container.from_state(json.loads(args.state.read_text()))
        result = container.run(*[a for a in args.argv if a != "--"], check=False)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
    elif args.command == "halt":
        # Halting a container that is already gone (no state file) is not an error: destroy steps rerun.
        try:
            state = json.loads(args.state.read_text())
        except FileNotFoundError:
            return 0
        Container.from_state(state).halt()
        args.state.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
