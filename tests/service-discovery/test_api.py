"""service-discovery over real HTTP, on the embedded store and on redis,
driven by the independent client (tests/py/swclient.py): registration with
httpauth, the proxy alias, filters and random quantity, deletes, input
checks, expiry on both stores, restart on redis, and two replicas sharing
one redis (same answers, a nonce accepted once)."""

import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import (Daemon, Key, OnRedis, Redis, auth_request, metric,  # noqa: E402
                      request, wait_until)

S = "/api/services"


def svc(key, typ="vpn", port=44, **extra):
    o = {"address": "%s:%d" % (key.pk, port), "type": typ, "version": "1.0.0",
         "geo": {"country": "DE", "region": "Berlin"}, "local_ips": ["192.168.0.2"],
         "display_node_ip": False}
    o.update(extra)
    return o


def signed_headers(method, path, key, nonce, body=b""):
    msg = method.encode() + b" " + path.encode() + b"\n" + str(nonce).encode() + b"\n" + body
    return {"SW-Public": key.pk, "SW-Nonce": str(nonce), "SW-Sig": key.sign(msg)}


def uniq():
    return "t" + os.urandom(4).hex()


def hits(base):
    """List reads served from the list cache (common/svc_api_cache)."""
    return metric(base, "sw_list_cache_reads_total", 'result="hit"')


class Base:
    """The cases, run once per store (subclasses set up the daemon)."""

    extra = []

    @classmethod
    def setUpClass(cls):
        cls.sd = Daemon("service-discovery", "--entry-timeout-s", "60", *cls.extra)
        cls.base = cls.sd.base

    @classmethod
    def tearDownClass(cls):
        rc = cls.sd.stop()
        assert rc == 0, "graceful stop must exit 0, got %r" % rc

    def post(self, key, body, **kw):
        return auth_request(self.base, "POST", S, key, body, **kw)

    def get(self, path):
        return request("GET", self.base + path)

    def query(self, q):
        r = self.get(S + "?" + q)
        self.assertEqual(r.status, 200, r.body)
        return r.json()

    def test_register_get_update(self):
        k = Key()
        r = self.post(k, svc(k))
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertIsInstance(body.pop("registered"), int)
        self.assertEqual(body, svc(k))
        self.assertEqual(r.headers.get("Content-Type"), "application/json")
        got = self.get(S + "/%s:44?type=vpn" % k.pk)
        self.assertEqual(got.status, 200)
        self.assertEqual(got.json()["address"], k.pk + ":44")
        # Another port of the same key is not this service; the type is required.
        self.assertEqual(self.get(S + "/%s:45?type=vpn" % k.pk).status, 404)
        self.assertEqual(self.get(S + "/%s:44?type=visor" % k.pk).status, 404)
        self.assertEqual(self.get(S + "/%s:44" % k.pk).status, 400)
        self.assertEqual(self.get(S + "/%s:44?type=vpn" % k.pk.upper()).status, 400)
        self.assertEqual(self.get(S + "/nonsense?type=vpn").status, 400)
        # Re-posting replaces (key is (type, pk)); a new port moves the service.
        r = self.post(k, svc(k, port=45, version="1.1.0"))
        self.assertEqual(r.status, 200)
        self.assertEqual(self.get(S + "/%s:44?type=vpn" % k.pk).status, 404)
        self.assertEqual(self.get(S + "/%s:45?type=vpn" % k.pk).json()["version"], "1.1.0")

    def test_proxy_alias(self):
        k = Key()
        r = self.post(k, svc(k, typ="proxy", port=3))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["type"], "skysocks")
        for t in ("proxy", "skysocks"):
            self.assertEqual(self.get(S + "/%s:3?type=%s" % (k.pk, t)).json()["type"],
                             "skysocks")
            self.assertIn(k.pk + ":3", [s["address"] for s in self.query("type=" + t)])
        # One record: posting as skysocks updates the one posted as proxy.
        self.assertEqual(self.post(k, svc(k, typ="skysocks", port=3, version="2")).status, 200)
        mine = [s for s in self.query("type=proxy") if s["address"].startswith(k.pk)]
        self.assertEqual([s["version"] for s in mine], ["2"])

    def test_httpauth_errors(self):
        k, other = Key(), Key()
        body = json.dumps(svc(k)).encode()
        self.assertEqual(request("POST", self.base + S, body).status, 401)
        r = self.post(k, body, nonce=0, tamper=lambda h: h.update({"SW-Sig": "11" * 64}))
        self.assertEqual(r.status, 401)
        self.assertIn("error", r.json())
        # Signed by a key that is not the address's: refused.
        r = self.post(other, body)
        self.assertEqual(r.status, 403)
        self.assertIn("error", r.json())
        self.assertEqual(self.get(S + "/%s:44?type=vpn" % k.pk).status, 404)
        # A signature over another path does not carry over.
        r = self.post(k, body, nonce=0, tamper=lambda h: h.update(
            {"SW-Sig": k.sign(b"POST /elsewhere\n0\n" + body)}))
        self.assertEqual(r.status, 401)
        self.assertEqual(self.post(k, body, nonce=0).status, 200)
        r = self.post(k, body, nonce=0)  # replayed
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["next_nonce"], 1)
        self.assertEqual(self.get("/security/nonces/" + k.pk).json(),
                         {"edge": k.pk, "next_nonce": 1})

    def test_malformed_and_invalid(self):
        k = Key()
        for raw in (b"{", b"not json", b"[1,2", b"", b"[]", b"12"):
            r = self.post(k, raw)
            self.assertEqual(r.status, 400, raw)
            self.assertIn("error", r.json())
        cases = [
            ({"address": k.pk}, 400),
            ({"address": k.pk + ":x"}, 400),
            ({"address": k.pk + ":03"}, 400),
            ({"address": k.pk.upper() + ":3"}, 400),
            ({"address": "00" * 32 + ":3"}, 400),
            ({"address": 5}, 400),
            ({"address": k.pk + ":70000"}, 422),
            ({"type": "ftp"}, 422),
            ({"type": 1}, 400),
            ({"version": "x" * 33}, 422),
            ({"version": "1 0"}, 422),
            ({"version": 1}, 400),
            ({"geo": "DE"}, 400),
            ({"geo": {"country": "DEU"}}, 422),
            ({"geo": {"country": 49}}, 400),
            ({"geo": {"country": "DE", "region": "r" * 65}}, 422),
            ({"local_ips": "10.0.0.1"}, 400),
            ({"local_ips": [1]}, 400),
            ({"local_ips": ["10.0.0.300"]}, 422),
            ({"local_ips": ["10.0.0.%d" % i for i in range(17)]}, 422),
            ({"display_node_ip": "yes"}, 400),
        ]
        for change, status in cases:
            r = self.post(k, {**svc(k), **change})
            self.assertEqual(r.status, status, change)
            self.assertIn("error", r.json())
        self.assertEqual(self.get(S + "/%s:44?type=vpn" % k.pk).status, 404)
        # Optional members may be absent; unknown ones are dropped.
        r = self.post(k, {"address": k.pk + ":0", "type": "visor", "extra": 1})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["local_ips"], [])
        self.assertNotIn("extra", r.json())
        self.assertNotIn("geo", r.json())
        r = self.post(k, svc(k, local_ips=["::1", "fe80::1"], geo={"country": "nl"}))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["geo"]["country"], "NL")

    def test_body_too_large(self):
        k = Key()
        r = self.post(k, {**svc(k), "pad": "x" * (64 * 1024)})
        self.assertEqual(r.status, 413)
        self.assertIn("error", r.json())
        self.assertEqual(self.get(S + "/%s:44?type=vpn" % k.pk).status, 404)

    def test_filters_and_quantity(self):
        v1, v2 = uniq(), uniq()
        keys = {}
        for cc in ("AQ", "BV"):
            for v in (v1, v2):
                for _ in range(3):
                    k = Key()
                    keys[k.pk] = (cc, v)
                    r = self.post(k, svc(k, typ="skysocks", version=v,
                                         geo={"country": cc, "region": ""}))
                    self.assertEqual(r.status, 200)

        def pks(q):
            return {s["address"][:64] for s in self.query(q)}
        mine = set(keys)
        self.assertTrue(mine <= pks("type=skysocks"))
        self.assertEqual(pks("type=skysocks&version=" + v1),
                         {p for p in mine if keys[p][1] == v1})
        aq = pks("type=proxy&country=aq")
        self.assertTrue({p for p in mine if keys[p][0] == "AQ"} <= aq)
        self.assertFalse({p for p in mine if keys[p][0] == "BV"} & aq)
        both = pks("type=skysocks&country=BV&version=" + v2)
        self.assertEqual(both, {p for p in mine if keys[p] == ("BV", v2)})
        self.assertEqual(self.query("type=vpn&version=" + v1), [])
        self.assertEqual(self.query("type=skysocks&country=AQ&version=" + uniq()), [])
        # quantity: at most N, drawn from the matching set, at random.
        seen = set()
        for _ in range(20):
            got = pks("type=skysocks&version=%s&quantity=2" % v1)
            self.assertEqual(len(got), 2)
            self.assertTrue(got <= {p for p in mine if keys[p][1] == v1})
            seen |= got
        self.assertGreater(len(seen), 2, "quantity must pick at random")
        self.assertEqual(len(pks("type=skysocks&version=%s&quantity=100" % v1)), 6)
        for bad in ("", "type=", "type=ftp", "type=vpn&quantity=0", "type=vpn&quantity=-1",
                    "type=vpn&quantity=abc", "type=vpn&country=D", "type=vpn&country=12",
                    "type=vpn&version=" + "x" * 40):
            r = self.get(S + "?" + bad)
            self.assertEqual(r.status, 400, bad)
            self.assertIn("error", r.json())

    def test_update_moves_indexes(self):
        k = Key()
        v1, v2 = uniq(), uniq()
        self.assertEqual(self.post(k, svc(k, version=v1, geo={"country": "AQ"})).status, 200)
        self.assertEqual(len(self.query("type=vpn&country=AQ&version=" + v1)), 1)
        self.assertEqual(self.post(k, svc(k, version=v2, geo={"country": "BV"})).status, 200)
        self.assertEqual(self.query("type=vpn&version=" + v1), [])
        self.assertNotIn(k.pk + ":44", [s["address"] for s in self.query("type=vpn&country=AQ")])
        self.assertEqual([s["address"] for s in self.query("type=vpn&country=BV&version=" + v2)],
                         [k.pk + ":44"])

    def test_delete(self):
        k, other = Key(), Key()
        v = uniq()
        self.assertEqual(self.post(k, svc(k, version=v)).status, 200)
        path = S + "/%s:44?type=vpn" % k.pk
        self.assertEqual(auth_request(self.base, "DELETE", path, other).status, 403)
        self.assertEqual(request("DELETE", self.base + path).status, 401)
        self.assertEqual(auth_request(self.base, "DELETE", S + "/%s:44" % k.pk, k).status, 400)
        self.assertEqual(auth_request(self.base, "DELETE", S + "/%s:45?type=vpn" % k.pk,
                                      k).status, 404)
        r = auth_request(self.base, "DELETE", path, k)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.get(path).status, 404)
        self.assertEqual(self.query("type=vpn&version=" + v), [])
        self.assertEqual(auth_request(self.base, "DELETE", path, k).status, 404)
        # proxy works in deletes too.
        self.assertEqual(self.post(k, svc(k, typ="skysocks", port=3)).status, 200)
        r = auth_request(self.base, "DELETE", S + "/%s:3?type=proxy" % k.pk, k)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.get(S + "/%s:3?type=skysocks" % k.pk).status, 404)

    def test_routes_health_metrics(self):
        self.assertEqual(self.get("/nope").status, 404)
        self.assertEqual(request("PUT", self.base + S).status, 405)
        h = self.get("/health")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.json()["service"], "service-discovery")
        self.assertEqual(h.json()["checks"]["store"], "ok")
        m = self.get("/metrics").body.decode()
        self.assertIn('service="service-discovery"', m)
        self.assertIn("sw_http_requests_total{", m)


class TestMemory(Base, unittest.TestCase):
    pass


class TestNoListCache(Base, unittest.TestCase):
    """The same answers with the list cache off (every list read from the store)."""
    extra = ["--list-cache-bytes", "0"]


class TestRedis(OnRedis, Base, unittest.TestCase):

    def test_restart_keeps_services(self):
        v = uniq()
        keys = [Key() for _ in range(10)]
        for k in keys:
            self.assertEqual(self.post(k, svc(k, version=v)).status, 200)
        self.assertEqual(self.sd.stop(), 0)
        self.sd.start()
        self.__class__.base = self.sd.base
        self.assertEqual({s["address"][:64] for s in self.query("type=vpn&version=" + v)},
                         {k.pk for k in keys})
        # Nonces survive the restart too: a replay is still refused.
        r = self.post(keys[0], svc(keys[0]), nonce=0)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["next_nonce"], 1)


class TestExpiry(unittest.TestCase):
    """A short TTL: the record and every index forget a service."""

    def run_expiry(self, extra):
        # 2 s: expiry is kept in whole seconds, and the lists are read before it.
        sd = Daemon("service-discovery", "--entry-timeout-s", "2", *extra)
        try:
            k = Key()
            v = uniq()
            r = auth_request(sd.base, "POST", S, k, svc(k, version=v))
            self.assertEqual(r.status, 200)
            path = S + "/%s:44?type=vpn" % k.pk
            self.assertEqual(request("GET", sd.base + path).status, 200)
            # The lists, read (and kept by the list cache) until it serves them: only
            # the expiry may end that.
            h = hits(sd.base)
            for _ in range(2):
                for q in ("type=vpn&country=DE", "type=vpn&country=DE&version=" + v):
                    got = request("GET", sd.base + S + "?" + q).json()
                    self.assertEqual([s["address"] for s in got], [k.pk + ":44"], q)
            self.assertGreater(hits(sd.base), h)
            self.assertTrue(wait_until(lambda: request("GET", sd.base + path).status == 404, 5))
            for q in ("type=vpn", "type=vpn&country=DE", "type=vpn&version=" + v,
                      "type=vpn&country=DE&version=" + v):
                self.assertEqual(request("GET", sd.base + S + "?" + q).json(), [], q)
        finally:
            self.assertEqual(sd.stop(), 0)

    def test_memory(self):
        self.run_expiry([])

    def test_redis(self):
        r = Redis()
        try:
            self.run_expiry(["--redis", r.url])
        finally:
            r.stop()


class TestReplicas(unittest.TestCase):
    """Two instances on one redis behave as one service."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.a = Daemon("service-discovery", "--redis", cls.redis.url)
        cls.b = Daemon("service-discovery", "--redis", cls.redis.url)

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.redis.stop()

    def test_concurrent_writes_agree(self):
        v = uniq()
        keys = [Key() for _ in range(16)]
        errors = []

        def writer(i, k):
            base = (self.a if i % 2 else self.b).base
            for n in range(3):
                r = auth_request(base, "POST", S, k, svc(k, version=v, port=n + 1))
                if r.status != 200:
                    errors.append(r.status)
        ts = [threading.Thread(target=writer, args=(i, k)) for i, k in enumerate(keys)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        qa = sorted(s["address"] for s in request(
            "GET", self.a.base + S + "?type=vpn&version=" + v).json())
        qb = sorted(s["address"] for s in request(
            "GET", self.b.base + S + "?type=vpn&version=" + v).json())
        self.assertEqual(qa, qb)
        self.assertEqual(qa, sorted(k.pk + ":3" for k in keys))
        for k in keys:
            p = S + "/%s:3?type=vpn" % k.pk
            self.assertEqual(request("GET", self.a.base + p).body,
                             request("GET", self.b.base + p).body)

    def test_list_cache_exact_across_replicas(self):
        # a keeps its list answers; every write through b (same redis) must show in
        # a's very next read, and a read with no write between is a hit.
        v = uniq()
        k1, k2 = Key(), Key()

        def query(q):
            return sorted(s["address"] for s in request("GET", self.a.base + S + "?" + q).json())

        def read_twice(q, want):
            h = hits(self.a.base)
            self.assertEqual(query(q), want, q)
            self.assertEqual(query(q), want, q)
            self.assertEqual(hits(self.a.base), h + 1)
        cc = "type=skysocks&country=AQ&version=" + v
        read_twice(cc, [])
        r = auth_request(self.b.base, "POST", S, k1, svc(k1, typ="skysocks", version=v,
                                                           geo={"country": "AQ"}))
        self.assertEqual(r.status, 200)
        read_twice(cc, [k1.pk + ":44"])
        read_twice("type=skysocks&version=%s&quantity=1" % v, [k1.pk + ":44"])
        r = auth_request(self.a.base, "POST", S, k2, svc(k2, typ="skysocks", version=v,
                                                           geo={"country": "AQ"}))
        self.assertEqual(r.status, 200)
        read_twice(cc, sorted([k1.pk + ":44", k2.pk + ":44"]))
        # k1 moves away from AQ through b: gone from AQ, there in BV.
        r = auth_request(self.b.base, "POST", S, k1, svc(k1, typ="skysocks", version=v,
                                                           geo={"country": "BV"}))
        self.assertEqual(r.status, 200)
        read_twice(cc, [k2.pk + ":44"])
        read_twice("type=skysocks&country=BV&version=" + v, [k1.pk + ":44"])
        self.assertEqual(auth_request(self.b.base, "DELETE", S + "/%s:44?type=skysocks" % k2.pk,
                                      k2).status, 200)
        read_twice(cc, [])
        read_twice("type=skysocks&version=" + v, [k1.pk + ":44"])

    def test_nonce_accepted_once_across_replicas(self):
        for _ in range(10):
            k = Key()
            body = json.dumps(svc(k)).encode()
            hdrs = signed_headers("POST", S, k, 0, body)
            out = []
            barrier = threading.Barrier(2)

            def fire(base):
                barrier.wait()
                out.append(request("POST", base + S, body, dict(hdrs)).status)
            ts = [threading.Thread(target=fire, args=(d.base,)) for d in (self.a, self.b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            self.assertEqual(sorted(out), [200, 401], out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
