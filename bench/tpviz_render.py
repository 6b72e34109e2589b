"""Driver of bench/tpviz.sh: tpviz's page in headless Chromium.

  render URL     load the page, wait for its first render; prints the
                 render time the page reports (ms since navigation start)
                 and the visors and transports it drew
  ready URL N    wait (up to 300 s) until tpviz's /api/transports comes from
                 the feed with N transports
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from browser import Browser  # noqa: E402


def ready(url, n):
    end = time.time() + 300
    while time.time() < end:
        try:
            with urllib.request.urlopen(url + "/api/transports", timeout=30) as r:
                j = json.load(r)
            if j["source"] == "cxo" and j["count"] == n:
                return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("tpviz did not show %d transports from the feed" % n)


def render(url):
    b = Browser()
    try:
        b.navigate(url + "/")
        if not b.wait("document.body.dataset.ready === '1'", 60, 0.05):
            sys.exit("the page did not render")
        ms = b.eval("+document.body.dataset.renderMs")
        nv = b.eval("+document.getElementById('n-visors').textContent")
        nt = b.eval("+document.getElementById('n-transports').textContent")
        print(ms, nv, nt)
    finally:
        b.close()


if __name__ == "__main__":
    if sys.argv[1] == "ready":
        ready(sys.argv[2], int(sys.argv[3]))
    else:
        render(sys.argv[2])
