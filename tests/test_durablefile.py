"""Files written whole or not at all: the one atomic write every on-disk record goes through."""

from __future__ import annotations

import os
import stat
import tarfile
import threading

import pytest

from fodc.durablefile import TEMP_PREFIX, TEMP_SUFFIX, atomic_file, commit, write_atomically


def test_a_write_replaces_the_file_and_leaves_no_temporary_behind(tmp_path):
    target = tmp_path / "job.json"
    target.write_bytes(b"old")
    write_atomically(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["job.json"]


def test_a_failure_inside_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "bundle.tar.gz"
    target.write_bytes(b"the complete old bundle")
    with pytest.raises(RuntimeError), atomic_file(target) as sink:
        sink.write(b"half a bund")
        raise RuntimeError("collector died")
    assert target.read_bytes() == b"the complete old bundle"
    assert os.listdir(tmp_path) == ["bundle.tar.gz"]


def test_a_streamed_archive_is_only_seen_complete(tmp_path):
    target = tmp_path / "evidence.tar"
    with atomic_file(target) as sink, tarfile.open(fileobj=sink, mode="w:gz") as tar:
        tar.add(__file__, arcname="test.py")
        assert not target.exists()  # readers see nothing until the block ends
        temps = [name for name in os.listdir(tmp_path) if name != "evidence.tar"]
        assert len(temps) == 1 and temps[0].startswith(TEMP_PREFIX) and temps[0].endswith(TEMP_SUFFIX)
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["test.py"]


def test_concurrent_writers_of_one_file_never_mix_their_bytes(tmp_path):
    target = tmp_path / "record.json"
    payloads = [bytes([65 + n]) * 200_000 for n in range(8)]
    threads = [threading.Thread(target=write_atomically, args=(target, data)) for data in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in payloads
    assert os.listdir(tmp_path) == ["record.json"]


def test_an_unwritable_directory_raises_and_changes_nothing(tmp_path):
    with pytest.raises(OSError):
        write_atomically(tmp_path / "missing" / "x.json", b"{}")
    assert os.listdir(tmp_path) == []


def test_a_file_filled_elsewhere_is_committed_under_its_final_name(tmp_path):
    fetched = tmp_path / f"{TEMP_PREFIX}cpu-fetch{TEMP_SUFFIX}"
    fetched.write_bytes(b"profile bytes")
    commit(fetched, tmp_path / "1764883200000-cpu-10s.pb.gz")
    assert os.listdir(tmp_path) == ["1764883200000-cpu-10s.pb.gz"]
    assert (tmp_path / "1764883200000-cpu-10s.pb.gz").read_bytes() == b"profile bytes"
