"""The pure core of configuration capture: argv parsing, redaction, snapshot history, drift."""

from __future__ import annotations

import pytest

from fodc.nodeconf.argv import parse_argv
from fodc.nodeconf.drift import (
    DEFAULT_IGNORE,
    ignored_drift,
    last_change_pair,
    node_changes,
    role_drift,
    role_file_diffs,
)
from fodc.nodeconf.redact import (
    REDACTED,
    SecretNames,
    filter_environment,
    redact_argv,
    redact_config_text,
    redact_value,
    secret_value,
)
from fodc.nodeconf.snapshot import ConfigHistory, content_hash, stamp


def test_argv_forms_are_all_understood():
    parsed = parse_argv(["/usr/bin/banyand", "data", "--grpc-port=17912", "--http-port", "17913",
                         "--enable-tls", "--etcd-endpoints", "a:2379", "--etcd-endpoints=b:2379",
                         "-v", "--offset", "-5", "--", "--not-a-flag"])
    assert parsed.program == "/usr/bin/banyand"
    assert parsed.flags == {
        "grpc-port": "17912", "http-port": "17913", "enable-tls": "true",
        "etcd-endpoints": ["a:2379", "b:2379"], "v": "true", "offset": "-5",
    }
    assert parsed.positional == ("data", "--not-a-flag")


def test_boolean_flag_before_another_flag_and_at_the_end():
    parsed = parse_argv(["banyand", "--a", "--b=1", "--c"])
    assert parsed.flags == {"a": "true", "b": "1", "c": "true"}


def test_empty_argv_parses_to_nothing():
    assert parse_argv([]).flags == {}


@pytest.mark.parametrize("name", ["DB_PASSWORD", "etcd-password", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN",
                                  "API_KEY", "tls-key", "MY_APIKEY", "GOOGLE_APPLICATION_CREDENTIALS",
                                  "private_key_pem", "BASIC_AUTH", "PGPASSWORD", "SMTP_PASS"])
def test_secret_looking_names_are_secret(name):
    assert SecretNames()(name)


@pytest.mark.parametrize("name", ["GOMAXPROCS", "MONKEY", "KEYSPACE_NAME", "tls-key-file", "HOME", "PATH",
                                  "grpc-port", "password-file", "COMPASS_HOME"])
def test_ordinary_names_and_paths_are_not_secret(name):
    assert not SecretNames()(name)


def test_a_flag_naming_a_secret_file_guards_the_file_but_not_its_path():
    names = SecretNames()
    assert names.guards_file("tls-key-file") and names.guards_file("password-file")
    assert not names.guards_file("config-file") and not names.guards_file("tls-key")


def test_environment_is_filtered_and_secrets_redacted():
    env = {"GOMAXPROCS": "4", "DB_PASSWORD": "hunter2", "SSH_AUTH_SOCK": "/tmp/x", "LANG": "C",
           "CUSTOM_THING": "v"}
    kept, left_out = filter_environment(env, allow=("*",), deny=("SSH_*",),
                                        is_secret=SecretNames(extra_patterns=("CUSTOM_*",)))
    assert kept == {"DB_PASSWORD": REDACTED, "CUSTOM_THING": REDACTED, "GOMAXPROCS": "4", "LANG": "C"}
    assert left_out == 1
    assert "hunter2" not in repr(kept)


def test_environment_allow_list_keeps_only_what_is_named():
    kept, left_out = filter_environment({"GOMAXPROCS": "4", "LANG": "C", "GOGC": "50"}, allow=("GO*",))
    assert kept == {"GOGC": "50", "GOMAXPROCS": "4"} and left_out == 1


def test_argv_secret_values_are_redacted_in_both_forms():
    argv = ["banyand", "--etcd-password=hunter2", "--auth-token", "abc", "--grpc-port", "1", "--tls-key-file",
            "/etc/k.pem"]
    assert redact_argv(argv, SecretNames()) == [
        "banyand", f"--etcd-password={REDACTED}", "--auth-token", REDACTED, "--grpc-port", "1",
        "--tls-key-file", "/etc/k.pem"]


def test_config_file_secret_lines_are_redacted():
    text = "port: 17912\npassword: hunter2\n  api_key = abc\n# token: in a comment stays\nname: x"
    redacted, count = redact_config_text(text, SecretNames())
    assert redacted == (f"port: 17912\npassword: {REDACTED}\n  api_key = {REDACTED}\n"
                        "# token: in a comment stays\nname: x")
    assert count == 2


def _snap(**overrides):
    base = {"node_id": "n1", "role": "liaison", "reason": "agent-start", "process": {"pid": 10, "start_time_ms": 5},
            "argv": ["banyand", "--a=1"], "flags": {"a": "1"}, "positional": [], "env": {"X": "1"}, "files": {},
            "binary": "/usr/bin/banyand", "version": None, "agent": {"scrape_interval": 15.0}, "errors": {}}
    base.update(overrides)
    return base


def test_hash_covers_content_not_capture_time_or_reason():
    a = stamp(_snap(), 1000)
    b = stamp(_snap(reason="periodic"), 2000)
    c = stamp(_snap(flags={"a": "2"}), 1000)
    assert a["hash"] == b["hash"] == content_hash(_snap()) != c["hash"]


def test_history_confirms_unchanged_captures_and_appends_changes_and_restarts():
    history = ConfigHistory(max_entries=3)
    assert history.add(stamp(_snap(), 1000))
    assert not history.add(stamp(_snap(reason="periodic"), 2000))
    latest = history.latest()
    assert (latest["captured_at_ms"], latest["confirmed_at_ms"], latest["captures"]) == (1000, 2000, 2)
    assert history.add(stamp(_snap(process={"pid": 11, "start_time_ms": 9}), 3000))  # restart, same config
    assert history.add(stamp(_snap(flags={"a": "2"}), 4000))
    assert history.add(stamp(_snap(flags={"a": "3"}), 5000))
    assert len(history) == 3
    assert [e["captured_at_ms"] for e in history.entries()] == [3000, 4000, 5000]
    assert [e["captured_at_ms"] for e in history.entries(2)] == [4000, 5000]


def test_history_entries_are_copies():
    history = ConfigHistory()
    history.add(stamp(_snap(), 1))
    history.entries()[0]["flags"]["a"] = "changed"
    assert history.latest()["flags"]["a"] == "1"


def test_role_drift_lists_only_settings_that_differ():
    drift = role_drift({
        "hot-1": _snap(flags={"a": "1", "b": "x"}, env={"GOGC": "100"}, agent={"node_id": "hot-1"}),
        "hot-2": _snap(flags={"a": "2", "b": "x"}, env={"GOGC": "100"}, agent={"node_id": "hot-2"}),
        "hot-3": _snap(flags={"b": "x"}, env={"GOGC": "100"}, agent={"node_id": "hot-3"}),
    })
    assert drift == {"flag.a": {"hot-1": "1", "hot-2": "2", "hot-3": None}}


def test_node_changes_show_added_removed_and_changed_settings():
    before = _snap(flags={"a": "1", "gone": "x"}, files={"/etc/c.yaml": {"sha256": "aa"}})
    after = _snap(flags={"a": "2", "new": "y"}, files={"/etc/c.yaml": {"sha256": "bb"}})
    assert node_changes(before, after) == {
        "file./etc/c.yaml": {"before": "aa", "after": "bb"},
        "flag.a": {"before": "1", "after": "2"},
        "flag.gone": {"before": "x", "after": None},
        "flag.new": {"before": None, "after": "y"},
    }


def test_change_pair_skips_snapshots_taken_while_the_node_was_gone():
    running_a, gone, running_b = _snap(flags={"a": "1"}), _snap(argv=None, flags={}), _snap(flags={"a": "2"})
    assert last_change_pair([running_a, gone, running_b]) == (running_a, running_b)
    assert last_change_pair([running_a, gone]) is None  # gone: nothing to compare the absence with
    assert last_change_pair([gone, running_b]) is None
    assert last_change_pair([]) is None


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "HOME", "PATH"])
def test_well_known_variables_are_not_secrets_whatever_their_names_contain(name):
    assert not SecretNames()(name)
    kept, _ = filter_environment({name: "/home/banyan"})
    assert kept == {name: "/home/banyan"}


@pytest.mark.parametrize("value", [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ24",
    "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1" * 18, "xoxb-1234567890-abcdef", "Bearer abcdefghijklmnop1234"])
def test_values_shaped_like_credentials_are_secret_under_any_name(value):
    assert secret_value(value)
    kept, _ = filter_environment({"SOME_SETTING": value})
    assert kept == {"SOME_SETTING": REDACTED}
    assert redact_argv(["banyand", f"--header={value}", "--extra", value], SecretNames()) == [
        "banyand", f"--header={REDACTED}", "--extra", REDACTED]


@pytest.mark.parametrize("value", ["/var/lib/banyandb", "17912", "sha256:" + "ab" * 32, "info", "eyJ", "AKIA1"])
def test_ordinary_values_are_kept(value):
    assert not secret_value(value) and redact_value(value) == value


def test_a_url_keeps_everything_but_its_password():
    url = "etcd://banyan:s3cr3t@10.0.0.1:2379/x"
    assert redact_value(url) == f"etcd://banyan:{REDACTED}@10.0.0.1:2379/x"
    text, count = redact_config_text(f"endpoints: [{url}]\nsession_cookie_name: x\nheader: Bearer {'a' * 20}\n",
                                     SecretNames())
    assert "s3cr3t" not in text and "a" * 20 not in text and count == 3


def test_role_drift_ignores_ports_paths_and_node_ids_and_takes_more_globs():
    peers = {node: _snap(flags={"grpc-port": port, "measure-root-path": f"/data/{node}", "max-memory": mem,
                                "gc-percent": "100"},
                         env={"HOSTNAME": node, "GOGC": "100"}, agent={"node_id": node, "window_dir": f"/w/{node}"})
             for node, port, mem in (("hot-1", "17912", "4G"), ("hot-2", "18012", "8G"))}
    assert list(role_drift(peers)) == ["flag.max-memory"]
    assert ignored_drift(peers) == ["agent.node_id", "agent.window_dir", "env.HOSTNAME", "flag.grpc-port",
                                    "flag.measure-root-path"]
    assert role_drift(peers, (*DEFAULT_IGNORE, "flag.max-*")) == {}


def test_a_changed_config_file_is_a_unified_diff_between_snapshots_and_between_peers():
    before = _snap(captured_at="t1", files={"/etc/b.yaml": {"sha256": "aa", "content": "a: 1\nmem: 4G\n"}})
    after = _snap(captured_at="t2", files={"/etc/b.yaml": {"sha256": "bb", "content": "a: 1\nmem: 8G\n"}})
    change = node_changes(before, after)["file./etc/b.yaml"]
    assert change["diff"].splitlines() == ["--- /etc/b.yaml (t1)", "+++ /etc/b.yaml (t2)", "@@ -1,2 +1,2 @@",
                                           " a: 1", "-mem: 4G", "+mem: 8G"]
    peers = {"hot-1": before, "hot-2": after}
    drift = role_drift(peers)
    assert role_file_diffs(peers, drift)["/etc/b.yaml"]["hot-2"].splitlines()[-2:] == ["-mem: 4G", "+mem: 8G"]
    unkept = _snap(files={"/etc/b.yaml": {"sha256": "cc"}})  # contents not kept (a secret file, too big)
    assert "diff" not in node_changes(before, unkept)["file./etc/b.yaml"]
