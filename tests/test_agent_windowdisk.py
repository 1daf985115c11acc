"""The agent's on-disk window wiring: recovery at construction, recovered points are history for latest(), the
self-metrics, and memory-only when --window-dir is off."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fodc.agent.settings import parse_settings
from fodc.agent.windowdisk import WindowDisk
from fodc.window import FlightRecorder

T0 = 1_787_300_000_000


def settings_for(*args: str):
    return parse_settings(["--config", "/dev/null", "--node-role", "liaison", "--window-block-scrapes", "2",
                           "--window-interim-scrapes", "1", *args])


def test_a_restarted_agent_has_its_history_but_no_stale_latest_values(tmp_path):
    settings = settings_for("--window-dir", str(tmp_path / "w"))
    recorder = FlightRecorder(block_scrapes=2)
    before = WindowDisk(settings.window, recorder, CollectorRegistry())
    for i in range(5):
        recorder.ingest("http://node/metrics", T0 + i * 1000, [("up", (), 1.0), ("c", (), float(i))])
    assert recorder.stats().on_disk_bytes > 0  # sealed blocks on disk are read from there, not held
    before.close()

    restarted = FlightRecorder(block_scrapes=2)
    registry = CollectorRegistry()
    disk = WindowDisk(settings.window, restarted, registry)
    assert [w.values for w in restarted.query() if w.name == "c"] == [[0.0, 1.0, 2.0, 3.0, 4.0]]
    assert restarted.stats().on_disk_bytes > 0 and restarted.stats().unreadable_blocks == 0
    assert restarted.latest() == []  # the node has not been scraped since the start
    restarted.ingest("http://node/metrics", restarted.latest_from_ms + 1, [("c", (), 9.0)])
    assert [(w.name, w.values) for w in restarted.latest()] == [("c", [9.0])]
    text = generate_latest(registry).decode()
    assert "fodc_agent_window_recovered_samples 8.0" in text  # two sealed blocks: 2 scrapes x 2 series...
    assert "fodc_agent_window_recovered_scrapes 1.0" in text  # ...and the fifth scrape from the interim file
    assert 'fodc_agent_window_disk_errors_total{operation="archive"} 0.0' in text
    assert disk.summary()["window_store"] == "disk"
    disk.close()


def test_window_dir_off_keeps_everything_in_memory(tmp_path):
    for off in ("", "off", "OFF"):
        settings = settings_for("--window-dir", off)
        assert settings.window_dir is None
        registry = CollectorRegistry()
        recorder = FlightRecorder(block_scrapes=2)
        disk = WindowDisk(settings.window, recorder, registry)
        for i in range(5):
            recorder.ingest("http://node/metrics", T0 + i * 1000, [("c", (), float(i))])
        assert recorder.stats().sealed_blocks == 2 and recorder.stats().on_disk_bytes == 0
        assert disk.summary() == {"window_store": "memory"}
        assert "window_disk" not in generate_latest(registry).decode()
        disk.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--window-dir", "var/lib/window"], "--window-dir: 'var/lib/window' must be an absolute path, or '' or off"),
    (["--window-file-bytes", "10MiB", "--window-dir-bytes", "15MiB"], "must be at least twice --window-file-bytes"),
    (["--window-interim-scrapes", "0"], "--window-interim-scrapes"),
])
def test_window_options_that_cannot_work_are_refused_with_the_option_named(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        settings_for(*args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
