"""`fodc pprof flame` output opened in a real browser (Debian's chromium, headless) from a file, offline: every
frame is drawn at its share of the width, it fetches nothing, and a click zooms into a frame."""

from __future__ import annotations

import subprocess

import pytest
from browser import console_errors, missing_browser, start_chromium
from pprof_build import Builder
from procs import BIN

pytestmark = pytest.mark.skipif(bool(missing_browser()), reason=missing_browser() or "browser present")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def flame_files(tmp_path):
    """main→serve→handle→{encode 50, parse 30}, main→gc 20 (a cpu profile in ns), drawn as .html and .svg."""
    b = Builder(("samples", "count"), ("cpu", "nanoseconds"))
    b.sample(["encode", "handle", "serve", "main"], 5, 50_000_000)
    b.sample(["parse", "handle", "serve", "main"], 3, 30_000_000)
    b.sample(["gc<&>", "main"], 2, 20_000_000)  # a name that must be escaped
    profile = tmp_path / "cpu.pb.gz"
    profile.write_bytes(b.gz())
    out = {}
    for suffix in (".html", ".svg"):
        out[suffix] = tmp_path / f"flame{suffix}"
        run = subprocess.run([str(BIN / "fodc"), "pprof", "flame", str(profile), "-o", str(out[suffix])],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    return out


def frames(driver):
    """{name: (x, width, shown)} of every drawn frame, from the live DOM."""
    return driver.execute_script("""
        var out = {};
        document.querySelectorAll('g.f').forEach(function (g) {
          var r = g.querySelector('rect');
          out[g.querySelector('title').textContent.split(':')[0]] =
            [parseFloat(r.getAttribute('x')), parseFloat(r.getAttribute('width')), g.style.display !== 'none'];
        });
        return out;""")


def test_the_html_flame_graph_draws_every_frame_offline_and_zooms_on_click(browser, tmp_path):
    html = flame_files(tmp_path)[".html"]
    browser.get(html.as_uri())
    drawn = frames(browser)
    assert set(drawn) == {"root", "main", "serve", "handle", "encode", "parse", "gc<&>"}
    assert drawn["root"][1] == pytest.approx(1200) and drawn["main"][1] == pytest.approx(1200)
    assert drawn["serve"][1] == pytest.approx(960) and drawn["gc<&>"][1] == pytest.approx(240)
    assert drawn["encode"][1] == pytest.approx(600) and drawn["parse"][1] == pytest.approx(360)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert console_errors(browser) == []

    browser.execute_script("document.querySelectorAll('g.f').forEach(function (g) {"
                           " if (g.dataset.name === 'parse') g.dispatchEvent(new MouseEvent('click')); })")
    zoomed = frames(browser)
    assert zoomed["parse"] == [pytest.approx(0), pytest.approx(1200), True]
    assert zoomed["handle"][2] and zoomed["main"][2]  # its callers stay, full width
    assert not zoomed["encode"][2] and not zoomed["gc<&>"][2]
    browser.execute_script("document.querySelectorAll('g.f').forEach(function (g) {"
                           " if (g.dataset.name === 'root') g.dispatchEvent(new MouseEvent('click')); })")
    assert frames(browser) == drawn


def test_the_svg_flame_graph_opens_on_its_own(browser, tmp_path):
    svg = flame_files(tmp_path)[".svg"]
    browser.get(svg.as_uri())
    rects = browser.execute_script("return Array.from(document.querySelectorAll('rect'))"
                                   ".map(function (r) { return parseFloat(r.getAttribute('width')); })")
    assert sorted(rects) == pytest.approx(sorted([1200, 1200, 960, 960, 600, 360, 240]))
    assert console_errors(browser) == []
