"""Layer 1 on the mTLS listener: the chain a client presents (SPEC section 2).

Each case runs under TLS 1.2 and TLS 1.3, in page mode (the handshake
completes, requests get the Certificate Error page) and in alert mode (the
handshake is aborted with the table's alert).
"""

import unittest

from sfmtls_e2e import REASONS, ServerTestCase

TLS_VERSIONS = ("1.2", "1.3")


class Layer1Cases:
    """Test methods shared by the page and alert classes."""

    mode = None

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.good_ec = s.issue("alice-ec")
        cls.good_rsa = s.issue("bob-rsa", key="rsa2048")
        cls.bare = s.issue("carol-bare")
        cls.self_signed = s.issue("dave-selfsigned", "--self-signed")
        cls.expired = s.issue("erin-expired", "--expired")
        cls.not_yet = s.issue("frank-notyet", "--not-yet-valid")
        cls.untrusted = s.issue("grace-untrusted", "--untrusted")
        cls.eku_server = s.issue("heidi-ekuserver", "--eku", "server")

    # -- certificates that pass, and no certificate

    def check_verified(self, cert):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.curl("mtls", "/__admin/tls-info", "/services/data/", cert=cert, tls=tls)
                self.assertEqual(res.rc, 0, self.explain(res))
                info = self.json_of(res, 0)
                self.assert_tls_info(info, res, "mtls", tls)
                self.assertIs(info["resumed"], False, self.explain(res))
                self.assert_cert_facts(info["clientCertificate"], cert, res, chain_length=2, reason=None)
                self.assert_versions_response(res, 1)

    def assert_versions_response(self, res, index):
        r = self.response(res, index)
        self.assertEqual(r.status, 200, self.explain(res))
        self.assertTrue(any(v.get("version") == "64.0" for v in r.json()), self.explain(res))

    def test_verified_ecdsa_client_through_intermediate(self):
        self.check_verified(self.good_ec)

    def test_verified_rsa2048_client_through_intermediate(self):
        self.check_verified(self.good_rsa)

    def test_no_certificate_is_served(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.curl("mtls", "/__admin/tls-info", "/services/data/", tls=tls)
                self.assertEqual(res.rc, 0, self.explain(res))
                info = self.json_of(res, 0)
                self.assert_tls_info(info, res, "mtls", tls)
                self.assertIsNone(info["clientCertificate"], self.explain(res))
                self.assert_versions_response(res, 1)

    # -- failures: one test per reason

    def test_self_signed(self):
        self.check_failure(self.self_signed, True, "CERTIFICATE_SELF_SIGNED")

    def test_expired(self):
        self.check_failure(self.expired, True, "CERTIFICATE_EXPIRED")

    def test_not_yet_valid(self):
        self.check_failure(self.not_yet, True, "CERTIFICATE_NOT_YET_VALID")

    def test_untrusted_ca(self):
        self.check_failure(self.untrusted, True, "CERTIFICATE_UNTRUSTED")

    def test_leaf_without_intermediate(self):
        self.check_failure(self.bare, False, "CERTIFICATE_UNTRUSTED")

    def test_server_eku_leaf_is_invalid(self):
        self.check_failure(self.eku_server, True, "CERTIFICATE_INVALID")


class PageModeTests(Layer1Cases, ServerTestCase):
    server_args = ("--cert-failure", "page")

    def check_failure(self, cert, chain, reason):
        """Handshake completes; API gets the page; health and tls-info still answer."""
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.curl("mtls", "/services/data/", "/__admin/tls-info", "/__admin/health",
                                cert=cert, chain=chain, tls=tls)
                self.assertEqual(res.rc, 0, self.explain(res))
                self.assert_cert_page(self.response(res, 0, count=3), reason, res)
                info = self.json_of(res, 1)
                self.assert_tls_info(info, res, "mtls", tls)
                cc = info["clientCertificate"]
                msg = f"clientCertificate: {cc}" + self.explain(res)
                self.assertIsInstance(cc, dict, msg)
                self.assertIs(cc.get("chainVerified"), False, msg)
                self.assertEqual(cc.get("reason"), reason, msg)
                self.assertEqual(cc.get("fingerprintSha256"), cert.fingerprint, msg)
                self.assertEqual(cc.get("chainLength"), cert.chain_count if chain else 1, msg)
                self.assertEqual(self.json_of(res, 2), {"status": "ok", "historyDropped": 0}, self.explain(res))

    def test_unknown_path_gets_page_not_404(self):
        """The page is for every request, not only known ones."""
        res = self.curl("mtls", "/no/such/path", cert=self.expired)
        self.assert_cert_page(self.response(res, 0), "CERTIFICATE_EXPIRED", res)


class AlertModeTests(Layer1Cases, ServerTestCase):
    server_args = ("--cert-failure", "alert")

    def check_failure(self, cert, chain, reason):
        """The handshake (or, under TLS 1.3, the first read) fails with the table's alert."""
        alert = REASONS[reason][0]
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls, client="curl"):
                res = self.curl("mtls", "/services/data/", cert=cert, chain=chain, tls=tls)
                self.assert_curl_alert(res, alert)
            with self.subTest(tls=tls, client="s_client"):
                res = self.s_client("mtls", "/services/data/", cert=cert, chain=chain, tls=tls, msg=True)
                self.assert_s_client_alert(res, alert)


if __name__ == "__main__":
    unittest.main()
