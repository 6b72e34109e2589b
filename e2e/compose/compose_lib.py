"""Host side of the compose-only scenarios: docker-compose on the running
deployment (through e2e/compose.sh, which knows the engine and project),
container facts from docker inspect, and e2e/compose/probe.py run inside
the network by the e2e runner."""
import json
import os
import subprocess
import sys
import time

SERVER_PK = "52a935e8d3eac83ea96ee12d46a6c13caec100f0fdcbe40261a18eefea80b245"
PKS = {"dd": "d220ff0c35450c6c2902f912bce369082bcef7afcd96bde2458c808e767795bc",
       "tpd": "99ea74c91629016179a74d700df2df009dbf2fff948c47e28361622a1c30e55e",
       "sd": "cbf807e6b873e6ace78681e41338a8cd627f065cd222c720142431425a20abd5"}
SERVICES = {"dd": ("dmsg-discovery", 9090, 9190), "tpd": ("transport-discovery", 9091, 9191),
            "sd": ("service-discovery", 9098, 9198)}

# The engine and images e2e/compose.sh up chose.
_env = os.path.join(os.environ.get("E2E_DIR", ".e2e"), "compose.env")
if os.path.exists(_env):
    for line in open(_env):
        k, _, v = line.strip().partition("=")
        if k:
            os.environ[k] = v


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what, flush=True)


def sh(*args, timeout=180):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit("FAIL: %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout


def dc(*args, timeout=180):
    return sh("sh", "e2e/compose.sh", "dc", *args, timeout=timeout)


def ids(service):
    return dc("ps", "-q", service).split()


def inspect(cid, fmt):
    return sh("docker", "inspect", "-f", fmt, cid).strip()


def ip(cid):
    return inspect(cid, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


def wait_healthy(timeout=60):
    sh("sh", "e2e/compose.sh", "wait", str(timeout), timeout=timeout + 10)


def wait_until(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def probe(cmd, spec):
    out = sh("sh", "e2e/compose.sh", "scenario", "e2e/compose/probe.py", cmd, json.dumps(spec))
    return json.loads(out.strip().splitlines()[-1])


def by_name(seed, n):
    """A probe spec that goes through the service names (compose DNS)."""
    spec = {"seed": seed, "n": n, "server_pk": SERVER_PK}
    for k, (name, port, _) in SERVICES.items():
        spec[k] = ["http://%s:%d" % (name, port)]
    return spec


def visors_ok():
    """Every visor's /health is 200 (every check ok: it holds its dmsg session)."""
    out = sh("sh", "e2e/compose.sh", "scenario", "-c",
             "import sys; sys.path.insert(0, 'tests/py'); from swclient import request; "
             "print([request('GET', 'http://127.0.0.1:%d/health' % p).status "
             "for p in (8000, 8001, 8002)])")
    return out.strip().splitlines()[-1] == "[200, 200, 200]"
