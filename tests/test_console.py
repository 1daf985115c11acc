"""The web console in a real browser (headless Chromium through selenium) against a real proxy with
`--auth all`, agents, simulated nodes and Debian's Prometheus as a real Go pprof target.

Each test reads what the page drew and compares it with what the API answers for the same question.
Screenshots of every page go to the test's directory (and to $FODC_CONSOLE_SCREENSHOTS when set)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import subprocess
import tarfile
import threading
import urllib.parse
from pathlib import Path

import pytest
from browser import console_errors, missing_browser, start_chromium
from procs import (
    free_port,
    http_get,
    http_json,
    keep_busy,
    start_agent,
    start_https_proxy,
    start_prometheus,
    start_proxy,
    wait_for,
)
from selenium.webdriver.support.ui import Select

from fodc.sim.launcher import start_sim_node

pytestmark = pytest.mark.skipif(bool(missing_browser()), reason=missing_browser() or "browser ready")

VIEWER = secrets.token_hex(16)
OPERATOR = secrets.token_hex(16)
AGENT_ARGS = ["--scrape-interval", "0.5s", "--scrape-timeout", "0.5s", "--incident-check-interval", "0.3s",
              "--incident-before", "30s", "--incident-after", "1s", "--config-check-interval", "0.3s"]
RULE = 'cpu-user: banyandb_system_cpu_state{kind="user"} > 1 for 3s'


def write_tokens(path: Path) -> Path:
    lines = [f"{name} {role} sha256:{hashlib.sha256(token.encode()).hexdigest()}"
             for name, role, token in (("vera", "viewer", VIEWER), ("otto", "operator", OPERATOR))]
    path.write_text("\n".join(lines) + "\n")
    return path


def api(proxy, path: str, token: str = VIEWER, method: str = "GET", body=None):
    return http_json(f"{proxy.url}{path}", method=method, body=body, headers={"Authorization": f"Bearer {token}"},
                     timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A proxy (--auth all), a hot node whose pprof is a real Prometheus, a liaison, and an incident."""
    tmp = tmp_path_factory.mktemp("console")
    daemons, nodes = [], []
    stop_busy = threading.Event()
    try:
        prometheus, prom_url = start_prometheus(tmp, "global: {scrape_interval: 1s}\nscrape_configs: []\n")
        daemons.append(prometheus)
        threading.Thread(target=keep_busy, args=(prom_url, stop_busy), daemon=True).start()
        proxy = start_proxy(tmp, "--auth", "all", "--auth-tokens-file", str(write_tokens(tmp / "tokens")),
                            "--command-timeout", "10s", "--incident-copy-interval", "0.5s")
        daemons.append(proxy)
        config_file = tmp / "banyand-hot.yaml"
        config_file.write_text("max-memory: 4G\nshards: 2\n")
        for node_id, role, extra in (("hot-1", "datanode-hot", ["--node-pprof-url", prom_url, "--incident-rule", RULE,
                                                                "--node-config-file", str(config_file),
                                                                "--profile-every", "5s", "--profile-cpu-seconds", "0"]),
                                     ("hot-2", "datanode-hot", ["--node-pprof-url", ""]),
                                     ("liaison-1", "liaison", ["--node-pprof-url", ""])):
            pid_file = tmp / f"{node_id}.pid"  # the agent reads the node's argv: --seed differs between the hot nodes
            node = start_sim_node(role, free_port(), series=300, seed=len(nodes),
                                  extra_args=["--pid-file", str(pid_file)])
            nodes.append(node)
            wait_for(pid_file.exists, what=f"{node_id}'s pid file")
            extra = [*extra, "--node-pid-file", str(pid_file)]
            node.fault("ok")  # one line in the node's log, for the incident's log tail
            daemons.append(start_agent(tmp, proxy.grpc_addr, role, node_id, "--node-metrics-url", node.metrics_url,
                                       "--node-log-file", str(node.stderr_file), *AGENT_ARGS, *extra))
        wait_for(lambda: len(api(proxy, "/cluster?status=online")[1]["nodes"]) == 3, 30, what="three agents online")

        def incident():
            found = [i for i in api(proxy, "/incidents?node_id=hot-1")[1]["incidents"] if i["state"] == "complete"]
            return found[0] if found else None
        yield {"proxy": proxy, "incident": wait_for(incident, 60, interval=0.5, what="a complete incident"),
               "tmp": tmp, "config_file": config_file}
    finally:
        stop_busy.set()
        for daemon in reversed(daemons):
            daemon.stop()
        for node in nodes:
            node.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def shot(driver, tmp_path: Path, name: str) -> None:
    """The whole page (up to 2,400 px tall) as a PNG."""
    height = min(2400, driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1400, max(1000, height))
    try:
        driver.save_screenshot(str(tmp_path / f"{name}.png"))
        if os.environ.get("FODC_CONSOLE_SCREENSHOTS"):
            driver.save_screenshot(str(Path(os.environ["FODC_CONSOLE_SCREENSHOTS"]) / f"{name}.png"))
    finally:
        driver.set_window_size(1400, 1000)


def open_page(driver, proxy, path: str, token: str | None = VIEWER, ready: str = "rendered"):
    """Opens a console page as a tab holding `token` (answering the page's token prompt), waits until drawn."""
    if token is not None:  # the tab holds the token before the page's scripts run (a data-free URL of the origin)
        driver.get(f"{proxy.url}/console/static/css/console.css")
        driver.execute_script("sessionStorage.setItem('fodc-console-token', arguments[0])", token)
    driver.get(f"{proxy.url}{path}")
    if ready:
        try:
            wait_for(lambda: driver.execute_script(f"return document.body.dataset.{ready}"), 60,
                     what=f"{path} {ready}")
        except AssertionError as exc:
            shown = driver.execute_script("return document.getElementById('error').textContent")
            raise AssertionError(f"{exc}; page error: {shown!r}; console: {console_errors(driver)}") from None


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def test_the_page_asks_for_a_token_once_and_keeps_it_for_the_tab(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    browser.get(f"{proxy.url}/")
    js(browser, "sessionStorage.clear()")
    browser.get(f"{proxy.url}/")
    dialog = wait_for(lambda: browser.find_element("id", "token-dialog").is_displayed() and
                      browser.find_element("id", "token-dialog"), what="the token prompt")
    assert "needs a token" in dialog.text
    shot(browser, tmp_path, "token-prompt")
    browser.find_element("id", "token-input").send_keys(VIEWER)
    browser.find_element("id", "token-submit").click()
    wait_for(lambda: js(browser, "return document.body.dataset.rendered"), 30, what="cluster drawn")
    browser.get(f"{proxy.url}/console/incidents")  # another page of the same tab: no prompt
    wait_for(lambda: js(browser, "return document.body.dataset.rendered"), 30, what="incidents drawn")
    assert not browser.find_element("id", "token-dialog").is_displayed()
    assert "vera (viewer)" in browser.find_element("id", "who").text


def test_a_wrong_token_is_asked_for_again(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/", token="not-a-token", ready="")
    wait_for(lambda: browser.find_element("id", "token-dialog").is_displayed(), what="the prompt again")
    assert "refused" in browser.find_element("id", "token-reason").text
    browser.find_element("id", "token-input").send_keys(VIEWER)
    browser.find_element("id", "token-submit").click()
    wait_for(lambda: js(browser, "return document.body.dataset.rendered"), 30, what="cluster drawn")


def test_cluster_page_shows_each_node_by_role_with_sparklines_from_the_window(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    console_errors(browser)
    wait_for(lambda: api(proxy, "/cluster?node_id=hot-1")[1]["nodes"][0]["incidents_total"], 30,
             what="the incident count in hot-1's heartbeat")
    open_page(browser, proxy, "/")
    wait_for(lambda: js(browser, "return document.querySelectorAll('svg.spark[data-points]').length") >= 4, 30,
             what="sparklines with points")
    nodes = {n["node_id"]: n for n in api(proxy, "/cluster")[1]["nodes"]}
    rows = js(browser, """return [...document.querySelectorAll('tr[data-node]')].map(r => ({
        node: r.dataset.node, role: r.closest('table').dataset.role, cells: [...r.cells].map(c => c.textContent)}))""")
    assert {r["node"]: r["role"] for r in rows} == {n: v["role"] for n, v in nodes.items()}
    for row in rows:
        assert row["cells"][1] == "online"
        assert row["cells"][4].startswith(nodes[row["node"]]["capabilities"]["ktm_mode"])
    hot = next(r for r in rows if r["node"] == "hot-1")
    assert "incidents rule:cpu-user=" in hot["cells"][3]  # the rule incident is noted, as /cluster says
    assert hot["cells"][3] == "".join(nodes["hot-1"]["notes"])
    assert console_errors(browser) == []
    shot(browser, tmp_path, "cluster")


def test_cluster_page_refreshes_by_itself(cluster, browser):
    open_page(browser, cluster["proxy"], "/?refresh=2")
    first = js(browser, "return document.body.dataset.rendered")
    wait_for(lambda: js(browser, "return document.body.dataset.rendered") != first, 20, what="a second render")
    assert browser.find_element("id", "refresh-s").text == "2"


def _rates(points):
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        out.append([t1, (v1 - v0 if v1 >= v0 else v1) / ((t1 - t0) / 1000)])
    return out


def _own_label(series, drop=""):
    own = ",".join(f'{k}="{v}"' for k, v in sorted(series["labels"].items())
                   if k not in ("node_id", "node_role", drop) and not k.startswith("node_"))
    return f"{{{own}}}" if own else series["name"]


def _quantile(buckets, q):
    """histogram_quantile over each pair of consecutive scrapes, written out here from its definition."""
    bounds = sorted((float(s["labels"]["le"]), dict(map(tuple, s["points"]))) for s in buckets)
    times = sorted(bounds[-1][1])
    out = []
    for t0, t1 in zip(times, times[1:], strict=False):
        counts = [b[t1] - b[t0] if b[t1] >= b[t0] else b[t1] for _, b in bounds]
        if counts[-1] <= 0:
            out.append([t1, None])
            continue
        rank = q * counts[-1]
        j = next(i for i, c in enumerate(counts) if c >= rank)
        if math.isinf(bounds[j][0]):
            out.append([t1, bounds[max(0, j - 1)][0]])
            continue
        lower, below = (bounds[j - 1][0], counts[j - 1]) if j else (0.0, 0.0)
        inside = counts[j] - below
        out.append([t1, lower + (bounds[j][0] - lower) * (rank - below) / inside if inside > 0 else bounds[j][0]])
    return out


def test_node_page_plots_hold_the_points_the_api_returned(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    families = "banyandb_system_cpu_state,banyandb_measure_total_written,banyandb_measure_flush_latency"
    console_errors(browser)
    open_page(browser, proxy, f"/console/node?node_id=hot-1&families={families}&range=15m", ready="drawn")
    plots = js(browser, "return FODC.plots.map(p => ({title: p.title, kind: p.kind, source: p.source, "
                        "lines: p.lines.map(l => ({label: l.label, points: l.points}))}))")
    assert len(plots) == 3
    status, body = api(proxy, plots[0]["source"])  # the very question the page asked, step included
    assert status == 200 and "step=" in plots[0]["source"]
    by_label = {}
    for series in body["series"]:
        own = ",".join(f'{k}="{v}"' for k, v in sorted(series["labels"].items())
                       if k not in ("node_id", "node_role") and not k.startswith("node_"))
        by_label[(series["name"], f"{{{own}}}" if own else series["name"])] = series["points"]
    gauge = next(p for p in plots if p["title"].startswith("banyandb_system_cpu_state"))
    assert len(gauge["lines"]) == 8
    for line in gauge["lines"]:
        assert line["points"] == by_label[("banyandb_system_cpu_state", line["label"])]
    counter = next(p for p in plots if p["title"].startswith("banyandb_measure_total_written"))
    assert counter["kind"] == "rate /s"
    for line in counter["lines"]:
        expected = _rates(by_label[("banyandb_measure_total_written", line["label"])])
        assert [t for t, _ in line["points"]] == [t for t, _ in expected]
        assert [v for _, v in line["points"]] == pytest.approx([v for _, v in expected])
    histogram = next(p for p in plots if p["title"].startswith("banyandb_measure_flush_latency"))
    assert histogram["kind"] == "p50/p99 from buckets"
    p50, p99 = histogram["lines"][0], histogram["lines"][1]
    assert p50["label"].startswith("p50") and p99["label"].startswith("p99")
    drawn = [(a[1], b[1]) for a, b in zip(p50["points"], p99["points"], strict=True) if a[1] is not None]
    assert drawn and all(0 < a <= b <= 10 for a, b in drawn)  # within the buckets (.005 … 10 s)
    group = p50["label"].removeprefix("p50 ")
    buckets = [s for s in body["series"] if s["name"] == "banyandb_measure_flush_latency_bucket"
               and _own_label(s, drop="le") == group]
    for q, line in ((0.5, p50), (0.99, p99)):
        expected = _quantile(buckets, q)
        assert [t for t, _ in line["points"]] == [t for t, _ in expected]
        assert [v for _, v in line["points"]] == pytest.approx([v for _, v in expected])
    assert console_errors(browser) == []
    shot(browser, tmp_path, "node")


def test_incident_page_shows_the_trigger_marker_and_the_ranked_series(cluster, browser, tmp_path):
    proxy, incident = cluster["proxy"], cluster["incident"]
    console_errors(browser)
    path = f"/console/incident?node_id=hot-1&id={urllib.parse.quote(incident['id'])}"
    open_page(browser, proxy, path)
    status, view = api(proxy, f"/incidents/hot-1/{urllib.parse.quote(incident['id'])}/view?top=15")
    assert status == 200 and view["changes"]
    ranked = js(browser, "return [...document.querySelectorAll('#ranking tr[data-series]')].map(r => r.dataset.series)")
    assert ranked == [c["series"] for c in view["changes"]]
    plots = js(browser, "return FODC.plots.map(p => ({source: p.source, markers: p.markers, "
                        "n: p.lines[0].points.length}))")
    assert [p["source"] for p in plots] == [c["series"] for c in view["changes"][:len(plots)]]
    assert view["split"]["by"] == "onset" and view["split"]["at_ms"] < incident["at_ms"]  # the rule's first breach
    assert view["changes"][0]["series"].startswith("banyandb_system_cpu_state{") and view["changes"][0]["focus"]
    for plot in plots:
        assert {"ms": incident["at_ms"], "label": f"trigger: {incident['trigger']}"} in plot["markers"]
        assert {"ms": view["split"]["at_ms"], "label": "onset", "color": "#9a6700"} in plot["markers"]
    facts = browser.find_element("id", "incident-facts").text
    assert incident["trigger"] in facts and "download" in facts
    assert view["log_tail"] and any("fault now" in line for line in view["log_tail"])
    assert browser.find_element("id", "log-tail").text.splitlines() == [line.strip() for line in view["log_tail"]]
    assert console_errors(browser) == []
    shot(browser, tmp_path, "incident")


def test_the_bundle_downloads_with_the_tabs_token(cluster, browser, tmp_path):
    proxy, incident = cluster["proxy"], cluster["incident"]
    open_page(browser, proxy, f"/console/incident?node_id=hot-1&id={urllib.parse.quote(incident['id'])}")
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    browser.find_element("css selector", "#incident-facts a.download").click()
    bundle = wait_for(lambda: [p for p in tmp_path.glob("*.tar.gz") if p.stat().st_size], 30, what="the download")[0]
    with tarfile.open(bundle) as tar:
        manifest = json.load(tar.extractfile(next(m for m in tar if m.name.endswith("/manifest.json"))))
    assert manifest["id"] == incident["id"] and manifest["node_id"] == "hot-1"


def test_node_page_around_an_incident_marks_it_on_every_plot(cluster, browser):
    proxy, incident = cluster["proxy"], cluster["incident"]
    open_page(browser, proxy, f"/console/node?node_id=hot-1&families=banyandb_system_cpu_state"
              f"&incident={urllib.parse.quote(incident['id'])}", ready="drawn")
    assert browser.find_element("id", "range").get_attribute("value") == "incident"
    plots = js(browser, "return FODC.plots.map(p => ({source: p.source, markers: p.markers}))")
    assert plots
    for plot in plots:
        assert {"ms": incident["at_ms"], "label": incident["trigger"]} in plot["markers"]
        query = urllib.parse.parse_qs(urllib.parse.urlparse(plot["source"]).query)
        assert float(query["start"][0]) * 1000 < incident["at_ms"] < float(query["end"][0]) * 1000


def test_node_page_opens_the_config_snapshot_and_its_history_in_one_click(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/node?node_id=hot-1&families=banyandb_system_cpu_state", ready="drawn")
    snapshot = api(proxy, "/cluster/config?node_id=hot-1")[1]["nodes"][0]["snapshot"]
    history = api(proxy, "/cluster/config/history?node_id=hot-1")[1]["nodes"][0]["snapshots"]
    browser.find_element("css selector", "#config-snapshot summary").click()
    wait_for(lambda: snapshot["hash"] in browser.find_element("id", "config-snapshot").text, 30, what="the snapshot")
    assert "/banyand-hot.yaml" in browser.find_element("id", "config-snapshot").text  # its config file
    browser.find_element("css selector", "#config-history summary").click()
    rows = wait_for(lambda: browser.find_elements("css selector", "#config-history tbody tr"), 30, what="history")
    assert [r.find_elements("tag name", "td")[2].text for r in rows][:len(history)] == [h["hash"] for h in history]


def test_hostile_text_from_a_user_is_shown_as_text(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/node?node_id=hot-1&families=banyandb_system_cpu_state", ready="drawn")
    hostile = '<img src=x onerror="window.pwned=1">'
    browser.find_element("id", "family-search").send_keys(hostile)
    browser.find_element("id", "family-add").click()
    wait_for(lambda: hostile in browser.find_element("id", "error").text, what="the refusal, verbatim")
    assert js(browser, "return window.pwned") is None
    assert js(browser, "return document.querySelectorAll('#error img').length") == 0


def test_node_page_custom_range_asks_for_exactly_that_range(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/node?node_id=hot-1&families=banyandb_system_cpu_state", ready="drawn")
    Select(browser.find_element("id", "range")).select_by_value("custom")
    js(browser, """const now = new Date(), from = new Date(now - 120000);
        const local = (d) => new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
        document.getElementById('range-from').value = local(from);
        document.getElementById('range-to').value = local(now);
        document.body.dataset.drawn = '';""")
    browser.find_element("id", "draw").click()
    wait_for(lambda: js(browser, "return document.body.dataset.drawn"), 30, what="drawn for the custom range")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(js(browser, "return FODC.plots[0].source")).query)
    assert 119 <= float(query["end"][0]) - float(query["start"][0]) <= 121


def test_incidents_page_filters_as_the_api_does(cluster, browser):
    proxy, incident = cluster["proxy"], cluster["incident"]
    console_errors(browser)
    open_page(browser, proxy, f"/console/incidents?trigger={urllib.parse.quote(incident['trigger'])}")
    assert console_errors(browser) == []
    shown = js(browser, "return [...document.querySelectorAll('tr[data-incident]')].map(r => r.dataset.incident)")
    listed = api(proxy, f"/incidents?trigger={urllib.parse.quote(incident['trigger'])}")[1]["incidents"]
    assert shown == [i["id"] for i in listed] and incident["id"] in shown
    browser.find_element("id", "f-node").send_keys("liaison-1")
    js(browser, "document.body.dataset.rendered = ''")
    browser.find_element("css selector", "#filters button").click()
    wait_for(lambda: js(browser, "return document.body.dataset.rendered"), 30, what="filtered list")
    assert js(browser, "return document.querySelectorAll('tr[data-incident]').length") == 0
    assert "No incident matches" in browser.find_element("id", "incidents").text


def test_an_operator_captures_configuration_from_the_page(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/config", token=OPERATOR)
    capture = browser.find_element("id", "capture")
    wait_for(lambda: capture.get_attribute("disabled") is None, what="capture enabled for an operator")
    capture.click()
    wait_for(lambda: "captured 3 nodes" in browser.find_element("id", "capture-state").text, 30,
             what="the capture's answer")


def test_configuration_page_shows_drift_per_role(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    console_errors(browser)
    open_page(browser, proxy, "/console/config")
    status, drift = api(proxy, "/cluster/config/drift")
    assert status == 200
    shown = js(browser, "return [...document.querySelectorAll('[data-role]')].map(e => e.dataset.role)")
    assert sorted(shown) == sorted(drift["roles"])
    seeds = drift["roles"]["datanode-hot"]["differences"]["flag.seed"]
    assert seeds["hot-1"] != seeds["hot-2"]
    row = browser.find_element("css selector", "table[data-role='datanode-hot'] tr[data-setting='flag.seed']")
    header = browser.find_elements("css selector", "table[data-role='datanode-hot'] thead th")
    cells = dict(zip([h.text for h in header], [c.text for c in row.find_elements("tag name", "td")], strict=True))
    assert cells == {"setting": "flag.seed", "hot-1": seeds["hot-1"], "hot-2": seeds["hot-2"]}
    assert not any(k.startswith("flag.listen") for k in drift["roles"]["datanode-hot"]["differences"])
    assert browser.find_element("id", "capture").get_attribute("disabled") is not None  # a viewer
    assert console_errors(browser) == []
    shot(browser, tmp_path, "config-roles")


def test_a_changed_config_file_shows_as_a_unified_diff(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    cluster["config_file"].write_text("max-memory: 8G\nshards: 2\n")
    status, body = api(proxy, "/cluster/config/capture", OPERATOR, "POST", {"scope": "node", "node_id": "hot-1"})
    assert status == 200 and body["captured"], body
    open_page(browser, proxy, "/console/config")
    diff = browser.find_element("css selector", "table[data-node='hot-1'] pre.diff")
    lines = diff.text.splitlines()
    assert "-max-memory: 4G" in lines and "+max-memory: 8G" in lines and " shards: 2" in lines
    assert "add" in diff.find_element("xpath", ".//span[text()='+max-memory: 8G']").get_attribute("class")
    shot(browser, tmp_path, "config")


def test_unknown_node_and_incident_ids_show_a_clear_message(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/node?node_id=no-such-node", ready="")
    wait_for(lambda: browser.find_element("id", "error").is_displayed(), what="an error message")
    assert 'No node named "no-such-node"' in browser.find_element("id", "error").text
    open_page(browser, proxy, "/console/incident?node_id=hot-1&id=20990101T000000Z-nothing", ready="")
    wait_for(lambda: browser.find_element("id", "error").is_displayed(), what="an error message")
    assert 'No incident "20990101T000000Z-nothing"' in browser.find_element("id", "error").text


def test_a_viewer_cannot_start_a_profile(cluster, browser):
    proxy = cluster["proxy"]
    open_page(browser, proxy, "/console/profiles")
    wait_for(lambda: js(browser, "return document.getElementById('who').textContent"), what="whoami")
    assert browser.find_element("id", "p-start").get_attribute("disabled") is not None
    status = js(browser, """return fetch('/diagnostics', {method: 'POST', headers: {'Content-Type': 'application/json',
        Authorization: 'Bearer ' + sessionStorage.getItem('fodc-console-token')},
        body: JSON.stringify({action: 'heap', target: {node_ids: ['hot-1']}})}).then(r => r.status)""")
    assert status == 403


def test_an_operator_profiles_a_node_and_sees_its_go_functions_in_a_flamegraph(cluster, browser, tmp_path):
    proxy = cluster["proxy"]
    console_errors(browser)
    open_page(browser, proxy, "/console/profiles?node_id=hot-1", token=OPERATOR)
    start = browser.find_element("id", "p-start")
    wait_for(lambda: start.get_attribute("disabled") is None, what="start enabled for an operator")
    browser.find_element("id", "p-seconds").clear()
    browser.find_element("id", "p-seconds").send_keys("2")
    start.click()
    wait_for(lambda: "done" in browser.find_element("id", "progress").text, 60, interval=0.5, what="profile done")
    view = wait_for(lambda: browser.find_elements("css selector", "#jobs button.view"), 30, what="a view button")
    view[0].click()
    wait_for(lambda: js(browser, "return document.body.dataset.viewed"), 30, what="profile drawn")
    names = js(browser, "return [...document.querySelectorAll('#flame .frame')].map(f => f.dataset.name)")
    top = js(browser, "return [...document.querySelectorAll('#top tr[data-function]')].map(r => r.dataset.function)")
    go = [n for n in names if n.startswith(("runtime.", "net/http.", "main.", "github.com/prometheus/"))]
    assert go, names[:20]
    assert any(f.startswith(("runtime.", "net/http.", "github.com/prometheus/", "syscall.")) for f in top), top
    assert console_errors(browser) == []
    shot(browser, tmp_path, "profiles")
    frames = browser.find_elements("css selector", "#flame .frame")
    target = max((f for f in frames[1:] if f.get_attribute("data-name") in go),
                 key=lambda f: float(f.value_of_css_property("width").removesuffix("px")))  # wide enough to click
    name = target.get_attribute("data-name")
    target.click()  # zoom: the clicked frame becomes the full width at the top
    wait_for(lambda: js(browser, "return document.querySelector('#flame .frame').dataset.name") == name,
             what="the zoomed flamegraph")
    widths = js(browser, "return [...document.querySelectorAll('#flame .frame')].map(f => parseFloat(f.style.width))")
    assert widths[0] == max(widths)  # the zoomed frame spans the graph
    js(browser, "document.querySelector('#flame .frame').click()")  # the zoomed root zooms out again
    wait_for(lambda: js(browser, "return document.querySelector('#flame .frame').dataset.name") == "root",
             what="zoomed out")
    Select(browser.find_element("id", "compare-with")).select_by_index(1)  # the same result: nothing moved
    wait_for(lambda: "share in" in browser.find_element("css selector", "#top thead").text, what="the comparison")
    changes = js(browser, "return [...document.querySelectorAll('#top tr[data-function]')]"
                          ".map(r => r.cells[3].textContent)")
    assert changes and set(changes) == {"+0.00 pts"}


def test_a_periodic_profile_from_the_ring_opens_as_a_flamegraph(cluster, browser):
    proxy = cluster["proxy"]
    wait_for(lambda: api(proxy, "/profiles?node_id=hot-1")[1]["profiles"], 30, what="a ring profile on hot-1")
    open_page(browser, proxy, "/console/profiles")
    rows = wait_for(lambda: browser.find_elements("css selector", "#ring tr[data-ring]"), 30, what="the ring listed")
    listed = {p["name"] for p in api(proxy, "/profiles")[1]["profiles"]}  # asked after the page: may hold more
    shown = [r.get_attribute("data-ring") for r in rows]
    assert shown and set(shown) <= listed and shown == sorted(shown, reverse=True)  # newest first
    rows[0].find_element("css selector", "button.view-ring").click()
    wait_for(lambda: js(browser, "return document.body.dataset.viewed"), 30, what="the ring profile drawn")
    names = js(browser, "return [...document.querySelectorAll('#flame .frame')].map(f => f.dataset.name)")
    assert any(n.startswith(("runtime.", "github.com/prometheus/")) for n in names), names[:20]
    assert "heap" in browser.find_element("id", "viewer-title").text


def test_an_incident_profile_opens_as_a_flamegraph(cluster, browser):
    proxy, incident = cluster["proxy"], cluster["incident"]
    open_page(browser, proxy, f"/console/incident?node_id=hot-1&id={urllib.parse.quote(incident['id'])}")
    links = {a.text: a for a in browser.find_elements("css selector", "#profiles a")}
    assert "heap.pb.gz" in links, list(links)
    links["heap.pb.gz"].click()
    wait_for(lambda: js(browser, "return document.body.dataset.viewed"), 30, what="the incident's heap profile")
    names = js(browser, "return [...document.querySelectorAll('#flame .frame')].map(f => f.dataset.name)")
    assert any(n.startswith(("runtime.", "github.com/prometheus/")) for n in names), names[:20]


@pytest.fixture
def lonely_proxy(tmp_path, daemons):
    proxy = start_proxy(tmp_path)
    daemons.append(proxy)
    return proxy


def test_a_stopped_proxy_shows_a_banner(lonely_proxy, browser):
    open_page(browser, lonely_proxy, "/", token=None)
    assert not browser.find_element("id", "banner").is_displayed()
    lonely_proxy.stop()
    wait_for(lambda: browser.find_element("id", "banner").is_displayed(), 30, what="the banner")
    assert "not reachable" in browser.find_element("id", "banner").text
    console_errors(browser)  # the failed fetches are expected here


@pytest.mark.skipif(shutil.which("certutil") is None, reason="Debian package libnss3-tools is not installed")
def test_the_console_works_over_https_with_the_test_ca(tmp_path, daemons):
    proxy, ca = start_https_proxy(tmp_path, ca_name="console")
    daemons.append(proxy)
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "fodc-test-ca", "-t", "C,,",
                    "-i", str(ca.path)], check=True)
    driver = start_chromium(tmp_path / "chromium", env={"HOME": str(home)})
    try:
        url = f"https://localhost:{proxy.ports['http']}/"

        def loaded():
            driver.get(url)
            return driver.execute_script("return document.body.dataset.rendered")
        wait_for(loaded, 30, interval=0.5, what="the cluster page over HTTPS")
        assert driver.execute_script("return location.protocol") == "https:"
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_every_page_shell_is_served_without_a_token_and_carries_no_data(cluster):
    proxy = cluster["proxy"]
    for path in ("/", "/console/node?node_id=hot-1", "/console/incidents", "/console/incident", "/console/config",
                 "/console/profiles", "/console/static/js/console.js", "/console/static/vendor/uplot/LICENSE"):
        status, _, body = http_get(f"{proxy.url}{path}")
        assert status == 200, path
        assert b"datanode-hot" not in body  # the data comes through the API, with the tab's token
    status, body = http_json(f"{proxy.url}/whoami")
    assert status == 401 and body["error"] == "unauthorized"
    status, _, _ = http_get(f"{proxy.url}/console/static/../../api.py")
    assert status == 404
