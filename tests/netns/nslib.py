"""Network namespaces for the transport tests: each test builds its own
(ip netns, veth pairs, iptables on a router namespace) and tears them all
down, even on failure.  Nothing leaves the machine: every address is in
namespaces the test made.

Without root (or without ip/iptables) the tests cannot run: require_root()
prints one loud line and the test class is skipped, never passed."""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("SW_BUILD", "build")
BIN = os.path.join(BUILD, "bin")
TMP = os.environ.get("SW_TMP", "/tmp")


def can_run():
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return "no %s" % tool
    return None


def require_root(cls):
    why = can_run()
    if why is not None:
        sys.stderr.write("\n*** SKIPPED %s: network namespace tests need root and "
                         "ip/iptables (%s) ***\n\n" % (cls.__name__, why))
        return unittest.skip("netns: %s" % why)(cls)
    return cls


def sh(*args, check=True, ns=None, timeout=20):
    cmd = list(args)
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def _on_term(signum, frame):
    # SIGTERM (a test timeout) must still run the finally blocks and atexit.
    raise SystemExit("terminated by signal %d" % signum)


def _reap_stale():
    """Namespaces of earlier runs whose test process is gone (killed) and that hold
    no process any more: delete them."""
    r = sh("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"^swt(\d+)-", name)
        if m is None or os.path.exists("/proc/" + m.group(1)):
            continue
        if sh("ip", "netns", "pids", name, check=False).stdout.strip() == "":
            sh("ip", "netns", "del", name, check=False)


class Net:
    """Namespaces named swt<pid>-<role>; procs started in them."""

    def __init__(self):
        self.tag = "swt%d" % os.getpid()
        self.names = []
        self.procs = []
        self.files = []
        signal.signal(signal.SIGTERM, _on_term)
        _reap_stale()
        atexit.register(self.close)

    def ns(self, role):
        name = "%s-%s" % (self.tag, role)
        sh("ip", "netns", "del", name, check=False)
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        return name

    def link(self, a, a_addr, b, b_addr):
        """A veth pair between namespaces a and b, with CIDR addresses."""
        n = len([x for x in self.names]) + len(self.procs) + int(time.time() * 1000) % 1000
        ia, ib = "va%d" % n, "vb%d" % n
        while sh("ip", "link", "show", ia, check=False).returncode == 0:
            n += 1
            ia, ib = "va%d" % n, "vb%d" % n
        sh("ip", "link", "add", ia, "type", "veth", "peer", "name", ib)
        sh("ip", "link", "set", ia, "netns", a)
        sh("ip", "link", "set", ib, "netns", b)
        sh("ip", "addr", "add", a_addr, "dev", ia, ns=a)
        sh("ip", "addr", "add", b_addr, "dev", ib, ns=b)
        sh("ip", "link", "set", ia, "up", ns=a)
        sh("ip", "link", "set", ib, "up", ns=b)
        return ia, ib

    def start(self, ns, args, name):
        log = open(os.path.join(TMP, "%s-%s.log" % (self.tag, name)), "w")
        p = subprocess.Popen(["ip", "netns", "exec", ns] + args, stdout=log, stderr=log)
        self.procs.append((p, log))
        return p

    def config(self, obj):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=TMP)
        json.dump(obj, f)
        f.close()
        self.files.append(f.name)
        return f.name

    def http(self, ns, method, url, body=None, timeout=10):
        """(status, parsed JSON or text) of a request made inside ns."""
        code = ("import json,sys,urllib.request as u\n"
                "b=sys.argv[3].encode() if sys.argv[3] else None\n"
                "r=u.Request(sys.argv[2],data=b,method=sys.argv[1],"
                "headers={'Content-Type':'application/json'})\n"
                "try:\n"
                " x=u.urlopen(r,timeout=%d);print(x.status);print(x.read().decode())\n"
                "except u.HTTPError as e:\n"
                " print(e.code);print(e.read().decode())\n"
                "except Exception as e:\n"
                " print(0);print(str(e))\n" % timeout)
        r = sh(sys.executable, "-c", code, method, url,
               json.dumps(body) if body is not None else "", ns=ns, timeout=timeout + 10)
        status, _, text = r.stdout.partition("\n")
        try:
            return int(status), json.loads(text)
        except ValueError:
            return int(status or 0), text

    def http_many(self, ns, reqs, timeout=30):
        """[(status, body)] of [(method, url, body)] made in order inside ns, in one process."""
        code = ("import json,sys,urllib.request as u\n"
                "out=[]\n"
                "for m,url,b in json.loads(sys.stdin.read()):\n"
                " r=u.Request(url,data=json.dumps(b).encode() if b is not None else None,"
                "method=m,headers={'Content-Type':'application/json'})\n"
                " try:\n"
                "  x=u.urlopen(r,timeout=%d);out.append([x.status,x.read().decode()])\n"
                " except u.HTTPError as e:\n"
                "  out.append([e.code,e.read().decode()])\n"
                " except Exception as e:\n"
                "  out.append([0,str(e)])\n"
                "print(json.dumps(out))\n" % timeout)
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                           input=json.dumps(reqs), capture_output=True, text=True,
                           timeout=timeout * len(reqs) + 10)
        return [(st, body) for st, body in json.loads(r.stdout)]

    def close(self):
        for p, log in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            log.close()
        self.procs = []
        for n in reversed(self.names):
            sh("ip", "netns", "del", n, check=False)
        self.names = []
        for f in self.files:
            try:
                os.unlink(f)
            except OSError:
                pass
        self.files = []


def wait_until(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def gen_visor_config():
    r = subprocess.run([os.path.join(BIN, "visor"), "gen-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
