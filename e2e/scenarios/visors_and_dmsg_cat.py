#!/usr/bin/python3
"""The deployment's two visors hold dmsg sessions with its server and are
listed in discovery (skywire-cli visor info); then two dmsg-cat endpoints
exchange data through the same server and each side gets exactly the other's
bytes."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "py"))
from swclient import request, wait_until  # noqa: E402

DD = os.environ.get("E2E_DD", "http://127.0.0.1:9090")
VISORS = os.environ.get("E2E_VISORS", "http://127.0.0.1:8000,http://127.0.0.1:8001").split(",")
BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


def cli(api, *args):
    return subprocess.run([os.path.join(BIN, "skywire-cli"), "--api", api] + list(args),
                          capture_output=True, text=True, timeout=15)


for api in VISORS:
    pk = cli(api, "visor", "pk").stdout.strip()
    check(len(pk) == 64, "skywire-cli visor pk answers for " + api)
    check(wait_until(lambda: "dmsg servers   1" in cli(api, "visor", "info").stdout, 20),
          "visor %s holds a dmsg session" % pk[:8])
    check(wait_until(lambda: request("GET", DD + "/dmsg-discovery/entry/" + pk).status == 200
                     and request("GET", DD + "/dmsg-discovery/entry/" + pk).json()
                     ["client"]["delegated_servers"], 20),
          "visor %s is in discovery with its server" % pk[:8])

payload_a = os.urandom(256 * 1024)
payload_b = os.urandom(64 * 1024 + 7)
with tempfile.TemporaryFile() as a_in, tempfile.TemporaryFile() as a_out, \
        tempfile.TemporaryFile() as b_in, tempfile.TemporaryFile() as b_out, \
        tempfile.TemporaryFile() as l_err:
    a_in.write(payload_a)
    a_in.seek(0)
    b_in.write(payload_b)
    b_in.seek(0)
    lst = subprocess.Popen([os.path.join(BIN, "dmsg-cat"), "-d", DD, "-l", "9"], stdin=b_in,
                           stdout=b_out, stderr=l_err)
    try:
        def listening():
            l_err.seek(0)
            return b"listening on port 9" in l_err.read()
        check(wait_until(lambda: lst.poll() is not None or listening(), 20),
              "dmsg-cat listens on port 9")
        l_err.seek(0)
        pk = [x for x in l_err.read().decode().splitlines() if x.startswith("dmsg-cat: pk ")]
        check(pk, "dmsg-cat prints its key")
        pk = pk[0].split()[-1]
        dialer = subprocess.run([os.path.join(BIN, "dmsg-cat"), "-d", DD, pk, "9"], stdin=a_in,
                                stdout=a_out, stderr=subprocess.PIPE, timeout=60)
        check(dialer.returncode == 0, "dmsg-cat dial ends cleanly: " +
              dialer.stderr.decode()[-300:])
        check(lst.wait(30) == 0, "dmsg-cat listener ends cleanly")
    finally:
        if lst.poll() is None:
            lst.kill()
    a_out.seek(0)
    b_out.seek(0)
    check(b_out.read() == payload_a, "the listener got exactly the dialer's bytes")
    check(a_out.read() == payload_b, "the dialer got exactly the listener's bytes")
