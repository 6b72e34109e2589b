"""Three things an operator met when running the deployment by hand (issue
#12): --redis and SKYWIRE_REDIS beat store.redis in every config form (a
single-instance file as compose uses, a deployment with --name); /health is
200 only when every check is ok (a visor without a dmsg session, and the
shared /health with it, are 503 "degraded"); skywire-svc gen-config gives
address-resolver a key of its own and the visors the deployment's
stun-server, and the whole generated deployment becomes fully healthy."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

import nacl.signing

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Redis, free_port, http_up, request, wait_until  # noqa: E402

BIN = os.path.join(os.environ.get("SW_BUILD", "build"), "bin")


def write(obj):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(obj, f)
    f.close()
    return f.name


def gen_config(*args):
    r = subprocess.run([os.path.join(BIN, "skywire-svc"), "gen-config"] + list(args),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# Defaults some services leave out of gen-config's output: written in, so the
# port move below reaches them too.
URL_DEFAULTS = {"dmsg_discovery": "http://127.0.0.1:9090",
                "transport_discovery": "http://127.0.0.1:9091"}
URL_KEYS = {"setup-node": ("dmsg_discovery", "transport_discovery")}


def on_free_ports(d):
    """The generated deployment with every fixed loopback port moved to a free one."""
    for inst in d["services"]:
        for k in URL_KEYS.get(inst["type"], ()):
            inst.setdefault(k, URL_DEFAULTS[k])
    text = json.dumps(d)
    ports = {p for p in re.findall(r"127\.0\.0\.1:(\d+)", text) if p != "0"}
    for p in ports:
        text = text.replace("127.0.0.1:%s\"" % p, "127.0.0.1:%d\"" % free_port())
    return json.loads(text)


class Proc:
    def __init__(self, argv, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(argv, env=e, stderr=subprocess.PIPE, text=True)

    def stop(self):
        if getattr(self, "ended", None) is None:  # once: a failing test stops it first
            self.p.send_signal(signal.SIGTERM)
            _, err = self.p.communicate(timeout=15)
            self.ended = (self.p.returncode, err)
        return self.ended


def health(base):
    r = request("GET", base + "/health")
    return r.status, r.json()


class TestRedisOverride(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.dead = "redis://127.0.0.1:%d/0" % free_port()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def store_of(self, argv, env=None):
        """Start dmsg-discovery, return its /health store check once it answers."""
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        p = Proc([os.path.join(BIN, "dmsg-discovery")] + argv + ["--listen",
                  "127.0.0.1:%d" % port], env)
        try:
            self.assertTrue(wait_until(lambda: p.p.poll() is not None or http_up(base + "/health"),
                                       10))
            self.assertIsNone(p.p.poll())
            st, h = health(base)
            self.assertEqual(st, 200 if h["checks"]["store"] == "ok" else 503)
            return h["checks"]["store"]
        finally:
            rc, err = p.stop()
            self.assertEqual(rc, 0, err)

    def test_single_instance_file(self):
        f = write({"store": {"redis": self.dead}, "log": {"level": "warn"}})
        self.assertEqual(self.store_of(["-c", f]), "down")  # the file alone
        self.assertEqual(self.store_of(["-c", f], {"SKYWIRE_REDIS": self.redis.url}), "ok")
        self.assertEqual(self.store_of(["-c", f, "--redis", self.redis.url]), "ok")
        self.assertEqual(self.store_of(["-c", f, "--redis", self.redis.url],
                                       {"SKYWIRE_REDIS": self.dead}), "ok")
        self.assertEqual(self.store_of(["-c", f, "--redis", self.dead],
                                       {"SKYWIRE_REDIS": self.redis.url}), "down")

    def test_deployment_instance_with_its_own_store(self):
        f = write({"store": {"redis": self.dead},
                   "services": [{"type": "dmsg-discovery", "name": "dd",
                                 "store": {"redis": self.dead}}]})
        self.assertEqual(self.store_of(["-c", f, "--name", "dd"]), "down")
        self.assertEqual(self.store_of(["-c", f, "--name", "dd"],
                                       {"SKYWIRE_REDIS": self.redis.url}), "ok")
        self.assertEqual(self.store_of(["-c", f, "--name", "dd", "--redis", self.redis.url]),
                         "ok")

    def test_skywire_svc_flag_beats_instance_store(self):
        hport, port = free_port(), free_port()
        f = write({"health_addr": "127.0.0.1:%d" % hport,
                   "services": [{"type": "dmsg-discovery", "listen": "127.0.0.1:%d" % port,
                                 "store": {"redis": self.dead}}]})
        p = Proc([os.path.join(BIN, "skywire-svc"), "run", "--config", f, "--redis",
                  self.redis.url])
        try:
            base = "http://127.0.0.1:%d" % port
            self.assertTrue(wait_until(lambda: http_up(base + "/health"), 10))
            self.assertEqual(health(base)[1]["checks"]["store"], "ok")
        finally:
            self.assertEqual(p.stop()[0], 0)


class TestHealthTruth(unittest.TestCase):
    def test_visor_without_dmsg_is_degraded(self):
        d = on_free_ports(gen_config())
        visor = [s for s in d["services"] if s["type"] == "visor"][0]
        dd = [s for s in d["services"] if s["type"] == "dmsg-discovery"][0]
        d["services"] = [dd, visor]
        shared = "http://" + d["health_addr"]
        api = "http://" + visor["api_listen"]
        # No dmsg-server in this process: the visor can never get a session.
        p = Proc([os.path.join(BIN, "skywire-svc"), "run", "--config", write(d), "--only",
                  "dmsg-discovery,visor"])
        try:
            self.assertTrue(wait_until(lambda: http_up(api + "/health"), 10))
            st, h = health(api)
            self.assertEqual((st, h["status"], h["checks"]["dmsg"]), (503, "degraded", "down"))
            st, h = health(shared)
            self.assertEqual((st, h["status"]), (503, "degraded"))
            by = {s["service"]: s for s in h["services"]}
            self.assertEqual(by["dmsg-discovery"]["status"], "ok")
            self.assertEqual(by["visor"]["status"], "degraded")
        finally:
            self.assertEqual(p.stop()[0], 0)


class TestGenConfig(unittest.TestCase):
    def test_keys_stun_and_fully_healthy(self):
        d = gen_config()
        by = {}
        for s in d["services"]:
            by.setdefault(s["type"], []).append(s)
        ar = by["address-resolver"][0]
        sk = nacl.signing.SigningKey(bytes.fromhex(ar["secret_key"]))
        self.assertEqual(sk.verify_key.encode().hex(), ar["public_key"])
        again = [s for s in gen_config()["services"] if s["type"] == "address-resolver"][0]
        self.assertNotEqual(ar["public_key"], again["public_key"])  # fresh keys per run
        stun = by["stun-server"][0]["listen"]
        for v in by["visor"]:
            self.assertEqual(v["stun_servers"], [stun])
        # Consumers name the deployment's own publishers and peers by key.
        pk = {t: by[t][0]["public_key"] for t in ("setup-node", "transport-setup",
                                                   "dmsg-discovery", "transport-discovery",
                                                   "service-discovery", "address-resolver",
                                                   "route-finder")}
        for v in by["visor"]:
            self.assertEqual(v["setup_nodes"], [pk["setup-node"]])
            self.assertEqual(v["transport_setup_pks"], [pk["transport-setup"]])
            for t in ("dmsg-discovery", "transport-discovery", "service-discovery",
                      "address-resolver", "route-finder"):
                self.assertEqual(v[t.replace("-", "_") + "_pk"], pk[t])
        self.assertEqual(by["setup-node"][0]["transport_discovery_pk"],
                         pk["transport-discovery"])
        for t in ("dmsg-discovery", "transport-discovery", "service-discovery"):
            self.assertEqual(by["tpviz"][0][t.replace("-", "_") + "_pk"], pk[t])
        # The generated deployment runs and every check of every service turns
        # ok, tpviz's feeds (over the publishers' dmsg sides) included.
        d = on_free_ports(d)
        shared = "http://" + d["health_addr"]
        p = Proc([os.path.join(BIN, "skywire-svc"), "run", "--config", write(d)])
        try:
            def all_ok():
                if not http_up(shared + "/health"):
                    return False
                return all(s["status"] == "ok" for s in health(shared)[1]["services"])
            if not wait_until(all_ok, 15):
                why = health(shared)[1] if http_up(shared + "/health") else "no mux"
                code, err = p.stop()
                self.fail("%s; exit %s; its log ends: %s" % (why, code, err[-3000:]))
            for s in health(shared)[1]["services"]:
                self.assertEqual(s["status"], "ok", s)
                self.assertEqual(set(s["checks"].values()) - {"ok"}, set(), s)
        finally:
            self.assertEqual(p.stop()[0], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
