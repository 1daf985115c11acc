"""dev/make-apt-repo: a signed repository that apt accepts, and refusals that change nothing.

Runs the real script on small packages built here with dpkg-deb, and checks the result with the real
gpgv and apt (apt-get update against a scratch state directory, so this machine's apt is untouched).
The full install/upgrade flow in a booted container is tests/system/test_apt_repo.py.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "dev" / "make-apt-repo"
KEYRING = "fodc-archive-keyring.gpg"

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("apt-ftparchive", "gpg", "gpgv", "dpkg-deb", "apt-get")),
    reason="needs apt-ftparchive (apt-utils), gpg, gpgv, dpkg-deb and apt-get (Debian packages)")


@pytest.fixture(autouse=True)
def no_agent_left(tmp_path: Path) -> Iterator[None]:
    """The script stops the agent of a lab home itself; an operator's home (--key) keeps it: stop those here."""
    yield
    for home in tmp_path.glob("gnupg*"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def make_deb(directory: Path, package: str, version: str, payload: str = "one") -> Path:
    """A minimal binary package whose content differs with `payload`."""
    root = directory / f"{package}-{version}-{payload}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: FODC tests <tests@example.invalid>\nDescription: test package\n")
    (root / "usr" / "share" / package).mkdir(parents=True)
    (root / "usr" / "share" / package / "payload").write_text(payload + "\n")
    deb = directory / f"{package}_{version}_amd64-{payload}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


def make_repo(repo: Path, gnupg: Path, *debs: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    signing = ["--key", key] if key else ["--lab-key"]
    return subprocess.run([str(SCRIPT), "--repo", str(repo), *signing, "--gnupg-home", str(gnupg),
                           *map(str, debs)], capture_output=True, text=True, timeout=120)


def apt_policy(tmp_path: Path, repo: Path, keyring: Path) -> subprocess.CompletedProcess[str]:
    """`apt-get update` then `apt-cache policy` with only this repository as a source, in scratch dirs."""
    state = tmp_path / "apt-state"
    for sub in ("lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    (state / "etc" / "fodc.sources").write_text(
        f"Types: deb\nURIs: file://{repo}\nSuites: stable\nComponents: main\nSigned-By: {keyring}\n")
    options = [f"-oDir::State::Lists={state / 'lists'}", f"-oDir::Cache={state / 'cache'}",
               f"-oDir::Etc::SourceList={state / 'etc' / 'fodc.sources'}", "-oDir::Etc::SourceParts=/nonexistent",
               f"-oDir::Etc::Preferences={state / 'etc' / 'none'}",
               f"-oDir::Etc::PreferencesParts={state / 'etc' / 'preferences.d'}",
               "-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1"]
    update = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, timeout=120)
    if update.returncode != 0 or "W: " in update.stderr or "E: " in update.stderr:
        return update
    return subprocess.run(["apt-cache", *options, "policy", "fodc-proxy"], capture_output=True, text=True,
                          timeout=60)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_release_is_signed_by_the_exported_key(tmp_path: Path) -> None:
    result = make_repo(tmp_path / "repo", tmp_path / "gnupg", make_deb(tmp_path, "fodc-proxy", "0.1.0"))
    assert result.returncode == 0, result.stderr
    suite = tmp_path / "repo" / "dists" / "stable"
    for args in (["InRelease"], ["Release.gpg", "Release"]):
        check = subprocess.run(["gpgv", "--homedir", str(tmp_path), "--keyring", str(tmp_path / "repo" / KEYRING),
                                *args], cwd=suite, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_release_lists_the_packages_index_with_its_hash(tmp_path: Path) -> None:
    result = make_repo(tmp_path / "repo", tmp_path / "gnupg", make_deb(tmp_path, "fodc-proxy", "0.1.0"))
    assert result.returncode == 0, result.stderr
    suite = tmp_path / "repo" / "dists" / "stable"
    packages = suite / "main" / "binary-amd64" / "Packages"
    assert f"{file_sha256(packages)} {packages.stat().st_size} main/binary-amd64/Packages" in \
        " ".join((suite / "Release").read_text().split())
    assert "Filename: pool/main/fodc-proxy_0.1.0_amd64.deb" in packages.read_text()


def test_apt_accepts_the_repository_and_offers_every_version_in_the_pool(tmp_path: Path) -> None:
    repo, gnupg = tmp_path / "repo", tmp_path / "gnupg"
    assert make_repo(repo, gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0")).returncode == 0
    assert make_repo(repo, gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0+lab2")).returncode == 0
    policy = apt_policy(tmp_path, repo, repo / KEYRING)
    assert policy.returncode == 0, policy.stdout + policy.stderr
    assert "Candidate: 0.1.0+lab2" in policy.stdout
    assert "0.1.0 500" in " ".join(policy.stdout.split())


def test_apt_refuses_the_repository_with_another_key(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert make_repo(repo, tmp_path / "gnupg", make_deb(tmp_path, "fodc-proxy", "0.1.0")).returncode == 0
    other = tmp_path / "other"
    assert make_repo(other, tmp_path / "gnupg-other", make_deb(tmp_path, "fodc-agent", "0.1.0")).returncode == 0
    update = apt_policy(tmp_path, repo, other / KEYRING)
    assert "NO_PUBKEY" in update.stderr or "not signed" in update.stderr, update.stderr


def test_a_rebuilt_package_with_the_same_version_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    repo, gnupg = tmp_path / "repo", tmp_path / "gnupg"
    assert make_repo(repo, gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0", "one")).returncode == 0
    before = {path: path.read_bytes() for path in repo.rglob("*") if path.is_file()}
    result = make_repo(repo, gnupg, make_deb(tmp_path, "fodc-agent", "0.2.0"),
                       make_deb(tmp_path, "fodc-proxy", "0.1.0", "two"))
    assert result.returncode == 1
    assert "already holds fodc-proxy_0.1.0_amd64.deb with different content" in result.stderr
    assert {path: path.read_bytes() for path in repo.rglob("*") if path.is_file()} == before


def test_adding_the_same_package_again_changes_nothing_in_the_pool(tmp_path: Path) -> None:
    repo, gnupg = tmp_path / "repo", tmp_path / "gnupg"
    deb = make_deb(tmp_path, "fodc-proxy", "0.1.0")
    assert make_repo(repo, gnupg, deb).returncode == 0
    assert make_repo(repo, gnupg, deb).returncode == 0
    assert [path.name for path in (repo / "pool" / "main").iterdir()] == ["fodc-proxy_0.1.0_amd64.deb"]


def test_a_file_that_is_not_a_package_is_refused_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "fodc-proxy_9.9.9_amd64.deb"
    junk.write_text("not an archive\n")
    result = make_repo(tmp_path / "repo", tmp_path / "gnupg", junk)
    assert result.returncode == 1
    assert f"{junk}: not a Debian package" in result.stderr
    assert not (tmp_path / "repo" / "dists").exists()


def test_an_unknown_signing_key_is_refused(tmp_path: Path) -> None:
    result = make_repo(tmp_path / "repo", tmp_path / "gnupg", make_deb(tmp_path, "fodc-proxy", "0.1.0"),
                       key="nobody@example.invalid")
    assert result.returncode == 1
    assert "no secret key 'nobody@example.invalid'" in result.stderr


def test_the_lab_key_is_made_once_and_reused(tmp_path: Path) -> None:
    repo, gnupg = tmp_path / "repo", tmp_path / "gnupg"
    assert make_repo(repo, gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0")).returncode == 0
    first = (repo / KEYRING).read_bytes()
    again = make_repo(repo, gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0+lab2"))
    assert again.returncode == 0
    assert ((repo / KEYRING).read_bytes(), "WARNING" in again.stderr) == (first, False)


def test_no_gpg_agent_outlives_a_lab_run_even_a_refused_one(tmp_path: Path) -> None:
    gnupg = tmp_path / "gnupg"
    assert make_repo(tmp_path / "repo", gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0", "one")).returncode == 0
    assert make_repo(tmp_path / "repo", gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0", "two")).returncode == 1
    agents = subprocess.run(["pgrep", "-f", f"gpg-agent.*{gnupg}"], capture_output=True, text=True)
    assert agents.stdout == ""


def test_an_operator_key_is_chosen_by_its_user_id(tmp_path: Path) -> None:
    gnupg = tmp_path / "gnupg"
    assert make_repo(tmp_path / "lab", gnupg, make_deb(tmp_path, "fodc-proxy", "0.1.0")).returncode == 0
    # The lab home used as if it were the operator's own: --key finds the key by (part of) its user id.
    result = make_repo(tmp_path / "prod", gnupg, make_deb(tmp_path, "fodc-agent", "0.1.0"), key="FODC lab apt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "prod" / KEYRING).read_bytes() == (tmp_path / "lab" / KEYRING).read_bytes()
