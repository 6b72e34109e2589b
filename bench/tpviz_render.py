"""Driver of bench/tpviz.sh: tpviz's page in headless Chromium.

  render URL [--cpuprofile] [--trace]
                 load the page in a fresh browser, wait for its first
                 render (drawn and painted); BENCH_TPVIZ_RUNS times (3), and
                 prints the median render time the page reports (ms since
                 navigation start), the visors and transports it drew and
                 the median CPU ms Chromium spent on it (all its
                 processes: unlike the wall time, hardly sensitive to the
                 machine's load); on stderr, the last run's
                 page's marks (fetch, parse, layout, draw...), with
                 --cpuprofile the functions with most self time, with
                 --trace the renderer main thread's time per trace event
                 (parse, script, style, layout, paint, raster...)
  empty N        the same, N times, for an empty page: Chromium's own
                 share (median ms and CPU ms)
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


def tree_cpu_ms(root):
    """CPU time (user + system) of a process and its descendants, in ms: the
    work a render costs, which unlike its wall time hardly depends on what
    else the machine runs."""
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            procs[int(d)] = (int(st[1]), int(st[11]) + int(st[12]))
    want, total, grew = {root}, 0, True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in want and pid not in want:
                want.add(pid)
                grew = True
    for pid in want:
        total += procs.get(pid, (0, 0))[1]
    return total * 1000 // os.sysconf("SC_CLK_TCK")


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


def profile_summary(prof, top=25):
    """Self time per function from a DevTools CPU profile (samples x interval)."""
    nodes = {n["id"]: n for n in prof["nodes"]}
    dt = {}
    deltas = prof.get("timeDeltas", [])
    for sid, d in zip(prof.get("samples", []), deltas[1:] + [0]):
        cf = nodes[sid]["callFrame"]
        k = "%s %s:%d" % (cf["functionName"] or "(anon)", os.path.basename(cf["url"]) or "-",
                          cf["lineNumber"] + 1)
        dt[k] = dt.get(k, 0) + d
    for k, us in sorted(dt.items(), key=lambda kv: -kv[1])[:top]:
        print("  %8.1f ms  %s" % (us / 1000, k), file=sys.stderr)


def trace_summary(b, top=25):
    """Stop tracing; time per event name on the page's main thread (complete
    events, self time: a child's time is not counted in its parent)."""
    b.next_id += 1
    b._send({"id": b.next_id, "method": "Tracing.end", "params": {}})
    events = []
    while True:
        m = b._recv_msg()
        if m.get("method") == "Tracing.dataCollected":
            events += m["params"]["value"]
        elif m.get("method") == "Tracing.tracingComplete":
            break
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    main = [e for e in events if e.get("ph") == "X" and "dur" in e and
            names.get((e["pid"], e["tid"])) == "CrRendererMain"]
    main.sort(key=lambda e: (e["ts"], -e["dur"]))
    self_us, stack = {}, []
    for e in main:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
            stack.pop()
        if stack:
            self_us[stack[-1]["name"]] = self_us.get(stack[-1]["name"], 0) - e["dur"]
        self_us[e["name"]] = self_us.get(e["name"], 0) + e["dur"]
        stack.append(e)
    for k, us in sorted(self_us.items(), key=lambda kv: -kv[1])[:top]:
        print("  %8.1f ms  %s" % (us / 1000, k), file=sys.stderr)


def render_once(url, cpuprofile=False, trace=False, quiet=False):
    """One fresh browser, one navigation: (ms, visors, transports, cpu_ms)."""
    b = Browser()
    try:
        if cpuprofile:
            b.call("Profiler.enable")
            b.call("Profiler.setSamplingInterval", interval=500)
            b.call("Profiler.start")
        if trace:
            b.call("Tracing.start", transferMode="ReportEvents",
                   traceConfig={"includedCategories": [
                       "devtools.timeline", "disabled-by-default-devtools.timeline", "v8",
                       "blink", "cc", "loading", "netlog"]})
        cpu0 = tree_cpu_ms(b.proc.pid)
        b.navigate(url + "/")
        if not b.wait("document.body.dataset.ready === '1'", 60, 0.05):
            sys.exit("the page did not render")
        cpu = tree_cpu_ms(b.proc.pid) - cpu0
        ms = b.eval("+document.body.dataset.renderMs")
        nv = b.eval("+(document.getElementById('n-visors') || {}).textContent || 0")
        nt = b.eval("+(document.getElementById('n-transports') || {}).textContent || 0")
        prof = b.eval("document.body.dataset.prof") or "{}"
        nav = b.eval("JSON.stringify((({requestStart, responseStart, responseEnd, "
                     "domContentLoadedEventEnd}) => ({requestStart, responseStart, responseEnd, "
                     "domContentLoadedEventEnd}))(performance.getEntriesByType('navigation')[0]))")
        # The first render's steps, ms since navigation start: on stderr, the
        # bench's log (stdout is the figure).
        if not quiet:
            marks = dict(json.loads(nav or "{}"), **json.loads(prof))
            for k, v in sorted(marks.items(), key=lambda kv: kv[1]):
                print("  %8.1f ms  %s" % (v, k), file=sys.stderr)
        if cpuprofile:
            profile_summary(b.call("Profiler.stop")["profile"])
        if trace:
            trace_summary(b)
        return ms, nv, nt, cpu
    finally:
        b.close()


# The reference: a page with nothing on it, ready after its first frame as
# tpviz's is: what a fresh headless Chromium costs by itself in this run.
EMPTY_PAGE = (b"<!doctype html><html><body><script>requestAnimationFrame(() => setTimeout(() => {"
              b"document.body.dataset.renderMs = Math.round(performance.now());"
              b"document.body.dataset.ready = '1'}, 0))</script></body></html>")


def empty_server():
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(EMPTY_PAGE)))
            self.end_headers()
            self.wfile.write(EMPTY_PAGE)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def median(xs):
    return sorted(xs)[len(xs) // 2]


def render(url, runs, cpuprofile=False, trace=False):
    """Median of runs fresh browsers (the last run's steps on stderr)."""
    got = [render_once(url, cpuprofile, trace, quiet=i < runs - 1) for i in range(runs)]
    return median([g[0] for g in got]), got[-1][1], got[-1][2], median([g[3] for g in got])


if __name__ == "__main__":
    if sys.argv[1] == "ready":
        ready(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "empty":
        srv = empty_server()
        ms, _, _, cpu = render("http://127.0.0.1:%d" % srv.server_address[1], int(sys.argv[2]))
        print(ms, cpu)
        srv.shutdown()
    else:
        runs = int(os.environ.get("BENCH_TPVIZ_RUNS", "3"))
        print(*render(sys.argv[2], runs, "--cpuprofile" in sys.argv[3:],
                      "--trace" in sys.argv[3:]))
