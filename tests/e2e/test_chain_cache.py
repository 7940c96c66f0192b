"""An intermediate sent in one handshake never completes another client's chain.

wolfSSL caches verified intermediates in its context by default; SPEC section
2 says the chain is built only from what this handshake sent. Client A sends
leaf + intermediate, then client B (same intermediate) sends its bare leaf:
B must be CERTIFICATE_UNTRUSTED, every time, in both modes.
"""

import unittest

from sfmtls_e2e import ServerTestCase

ROUNDS = 4


class ChainCacheCases:

    @classmethod
    def prepare(cls):
        cls.a = cls.server.issue("client-a")
        cls.b = cls.server.issue("client-b")

    def test_bare_leaf_after_full_chain(self):
        for i in range(ROUNDS):
            tls = ("1.2", "1.3")[i % 2]
            with self.subTest(round=i, tls=tls):
                res = self.curl("mtls", "/__admin/tls-info", cert=self.a, tls=tls)
                cc = self.json_of(res)["clientCertificate"]
                self.assertIs((cc or {}).get("chainVerified"), True, f"A: {cc}" + self.explain(res))
                self.check_bare_leaf(self.b, tls)
                # And with s_client, which sends exactly what it is given.
                res = self.s_client("mtls", cert=self.a, tls=tls)
                cc = self.json_of(res)["clientCertificate"]
                self.assertIs((cc or {}).get("chainVerified"), True, f"A: {cc}" + self.explain(res))
                self.check_bare_leaf(self.b, tls, s_client=True)

    def test_bare_leaf_of_a_client_that_sent_its_chain_before(self):
        """The very leaf that was verified with its intermediate fails without it."""
        for tls in ("1.3", "1.2"):
            with self.subTest(tls=tls):
                res = self.curl("mtls", "/__admin/tls-info", cert=self.a, tls=tls)
                self.assertIs((self.json_of(res)["clientCertificate"] or {}).get("chainVerified"), True,
                              self.explain(res))
                self.check_bare_leaf(self.a, tls)


class PageModeChainCacheTests(ChainCacheCases, ServerTestCase):
    server_args = ("--cert-failure", "page")

    def check_bare_leaf(self, cert, tls, s_client=False):
        if s_client:
            res = self.s_client("mtls", cert=cert, chain=False, tls=tls)
            info = self.json_of(res)
        else:
            res = self.curl("mtls", "/__admin/tls-info", "/services/data/", cert=cert, chain=False, tls=tls)
            info = self.json_of(res, 0)
            self.assert_cert_page(self.response(res, 1), "CERTIFICATE_UNTRUSTED", res)
        cc = info["clientCertificate"]
        msg = f"B (bare leaf): {cc}" + self.explain(res)
        self.assertIsInstance(cc, dict, msg)
        self.assertEqual(cc.get("chainLength"), 1, msg)
        self.assertIs(cc.get("chainVerified"), False, msg)
        self.assertEqual(cc.get("reason"), "CERTIFICATE_UNTRUSTED", msg)


class AlertModeChainCacheTests(ChainCacheCases, ServerTestCase):
    server_args = ("--cert-failure", "alert")

    def check_bare_leaf(self, cert, tls, s_client=False):
        if s_client:
            self.assert_s_client_alert(self.s_client("mtls", "/services/data/", cert=cert, chain=False, tls=tls,
                                                     msg=True), "unknown_ca")
        else:
            self.assert_curl_alert(self.curl("mtls", "/services/data/", cert=cert, chain=False, tls=tls),
                                   "unknown_ca")


if __name__ == "__main__":
    unittest.main()
