"""Strict JSON in every request body (issue #11 items 8, 10, 11), on the
wire against each service that takes one: valid JSON followed by garbage,
an object holding a key twice, and a number no integer can hold are 400,
never stored and never undefined behaviour (the daemons run under the
sanitizer build in CI)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "py"))
from swclient import Daemon, Key, auth_request, request  # noqa: E402

BAD = [
    b'{"port":1,"local_addresses":[]}xyz',
    b'{"port":1,"port":2,"local_addresses":[]}',
    b'{"port":1e300,"local_addresses":[]}',
    b'{"port":-1e300,"local_addresses":[]}',
    b'{"port":1.5,"local_addresses":[]}',
]


class TestStrictBodies(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.ar = Daemon("address-resolver", "--udp-listen", "127.0.0.1:0")
        cls.td = Daemon("transport-discovery")
        cls.sd = Daemon("service-discovery")
        cls.dd = Daemon("dmsg-discovery")
        cls.rf = Daemon("route-finder")

    @classmethod
    def tearDownClass(cls):
        for d in (cls.ar, cls.td, cls.sd, cls.dd, cls.rf):
            assert d.stop() == 0

    def test_address_resolver_bind(self):
        k = Key()
        for body in BAD:
            r = auth_request(self.ar.base, "POST", "/bind/stcpr", k, body)
            self.assertEqual(r.status, 400, body)
            self.assertIn("error", r.json())
        ok = auth_request(self.ar.base, "POST", "/bind/stcpr", k,
                          b'{"port":7000,"local_addresses":[]}')
        self.assertEqual(ok.status, 200, ok.body)

    def test_transport_discovery_post(self):
        k = Key()
        for body in (b'[]xyz', b'[{"t_id":"a","t_id":"b"}]', b'[] []'):
            r = auth_request(self.td.base, "POST", "/transports/", k, body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(r.json()["error"].startswith("malformed JSON"), r.json())

    def test_service_discovery_post(self):
        k = Key()
        for body in (b'{}xyz', b'{"address":"a","address":"b"}'):
            r = auth_request(self.sd.base, "POST", "/api/services", k, body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(r.json()["error"].startswith("malformed JSON"), r.json())

    def test_dmsg_discovery_post(self):
        for body in (b'{}xyz', b'{"static":"a","static":"b"}'):
            r = request("POST", self.dd.base + "/dmsg-discovery/entry/", body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(r.json()["error"].startswith("malformed JSON"), r.json())

    def test_route_finder_post(self):
        for body in (b'{}xyz', b'{"edges":[],"edges":[]}'):
            r = request("POST", self.rf.base + "/routes", body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(r.json()["error"].startswith("malformed JSON"), r.json())


if __name__ == "__main__":
    unittest.main()
