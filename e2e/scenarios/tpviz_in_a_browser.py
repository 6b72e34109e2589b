#!/usr/bin/python3
"""An operator opens tpviz in a real browser (headless Chromium): the page
shows the deployment's three visors and their transports, the JSON API says
its answers come from the feeds, and a transport opened meanwhile appears
on the page without a reload within 2 s.  A screenshot is kept in the e2e
directory (tpviz.png) as an artefact.  Without chromium installed (make
deps installs it) the scenario says so loudly and counts as skipped."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import request, wait_until  # noqa: E402
from browser import Browser, chromium_path  # noqa: E402

CONFIG = os.environ.get("E2E_CONFIG", "compose/deployment.json")
E2E_DIR = os.environ.get("E2E_DIR", ".e2e")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


if chromium_path() is None:
    print("SKIPPED: tpviz_in_a_browser needs Debian's chromium (make deps) ***********")
    sys.exit(0)

services = json.load(open(CONFIG))["services"]
tv = [s for s in services if s["type"] == "tpviz"][0]
TV = "http://" + tv["listen"]
TPD = "http://" + [s for s in services if s["type"] == "transport-discovery"][0]["listen"]
visors = [s for s in services if s["type"] == "visor"]
pks = [v["public_key"] for v in visors]
api = ["http://" + v["api_listen"] for v in visors]


def add(i, j):
    r = request("POST", api[i] + "/api/transports", {"remote_pk": pks[j], "type": "dmsg"},
                timeout=30)
    check(r.status in (200, 201), "visor-%d opens a dmsg transport to visor-%d" % (i + 1, j + 1))
    return r.json()["t_id"]


def tpviz_has(t_id):
    j = request("GET", TV + "/api/transports").json()
    return j["source"] == "cxo" and t_id in {t["t_id"] for t in j["transports"]}


opened = [(0, add(0, 1)), (1, add(1, 2))]
for _, t in opened:
    check(wait_until(lambda: tpviz_has(t), 10), "tpviz's API lists transport %s from the feed" % t)

b = Browser(os.path.join(E2E_DIR, "chromium.log"))
try:
    b.navigate(TV + "/")
    check(b.wait("document.body.dataset.ready === '1'", 20), "the page renders")
    shown = b.eval("[...document.querySelectorAll('g.visor')].map(e => e.dataset.pk)")
    check(set(pks) <= set(shown), "the graph shows the three visors")
    tids = set(b.eval("[...document.querySelectorAll('line.tp')].map(e => e.dataset.tid)"))
    check({t for _, t in opened} <= tids, "and their transports")
    check(b.eval("document.querySelector('line.tp.dmsg') !== null"),
          "dmsg transports are drawn in the dmsg colour")
    check(b.eval("document.querySelectorAll('li.server').length") >= 1,
          "the dmsg servers are listed with their clients")
    check(b.eval("[...document.querySelectorAll('#feeds tr')].some(r => "
                 "r.cells[1] && r.cells[1].textContent === 'cxo')"),
          "the feeds table says the views come from the feeds")
    b.eval("window.__same_page = 1")
    t_new = add(0, 2)
    t0 = time.monotonic()
    got = b.wait("document.querySelector('line.tp[data-tid=\"%s\"]') !== null" % t_new, 5, 0.02)
    took = time.monotonic() - t0
    check(got and took <= 2.0, "a new transport appears within 2 s (%.2f s)" % took)
    check(b.eval("window.__same_page") == 1, "without a reload")
    opened.append((0, t_new))
    b.screenshot(os.path.join(E2E_DIR, "tpviz.png"))
    check(os.path.getsize(os.path.join(E2E_DIR, "tpviz.png")) > 1000, "a screenshot is kept")
finally:
    b.close()
    for i, t in opened:
        request("DELETE", api[i] + "/api/transports/" + t, timeout=30)
