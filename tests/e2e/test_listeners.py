"""The two listeners, TLS versions, --client-cert=required, and the unauthenticated API answers."""

import json
import socket
import subprocess
import tempfile
import unittest

from sfmtls_e2e import ServerTestCase, clean_env

TLS_VERSIONS = ("1.2", "1.3")
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


class ListenerTests(ServerTestCase):

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("alice")

    def test_health_on_both_listeners(self):
        for listener in ("mtls", "standard"):
            with self.subTest(listener=listener):
                res = self.curl(listener, "/__admin/health")
                self.assertEqual(self.json_of(res), {"status": "ok", "historyDropped": 0}, self.explain(res))

    def test_mtls_requests_certificate_with_empty_ca_list(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.s_client("mtls", tls=tls, msg=True)
                self.assertIn("CertificateRequest", res.out, self.explain(res))
                self.assertIn("No client certificate CA names sent", res.out, self.explain(res))
                self.assertNotIn("Acceptable client certificate CA names", res.out, self.explain(res))
                info = self.json_of(res)
                self.assert_tls_info(info, res, "mtls", tls)
                self.assertIsNone(info["clientCertificate"], self.explain(res))

    def test_standard_never_requests_certificate(self):
        """Even a client that has a certificate to offer is never asked for it."""
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.s_client("standard", cert=self.good, tls=tls, msg=True)
                self.assertNotIn("CertificateRequest", res.out, self.explain(res))
                self.assertNotIn("Acceptable client certificate CA names", res.out, self.explain(res))
                info = self.json_of(res)
                self.assert_tls_info(info, res, "standard", tls)
                self.assertIs(info["resumed"], False, self.explain(res))
                self.assertIsNone(info["clientCertificate"], self.explain(res))

    def test_tls_info_on_standard_listener_with_curl(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.curl("standard", "/__admin/tls-info", cert=self.good, tls=tls)
                info = self.json_of(res)
                self.assert_tls_info(info, res, "standard", tls)
                self.assertIsNone(info["clientCertificate"], self.explain(res))

    def test_tls11_refused(self):
        for listener in ("mtls", "standard"):
            with self.subTest(listener=listener):
                res = self.s_client(listener, "/__admin/health", extra=("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"))
                # The client did offer TLS 1.1 (no local refusal), the server never finished a handshake.
                self.assertNotIn("no protocols available", res.text, self.explain(res))
                self.assertNotEqual(res.rc, 0, self.explain(res))
                self.assertNotIn("BEGIN CERTIFICATE", res.out, self.explain(res))
                self.assertEqual(res.responses, [], self.explain(res))

    def test_only_salesforce_suites_are_negotiated(self):
        # No static RSA key exchange, no CBC-SHA1, no suites outside Salesforce's list.
        for suite in ("AES256-GCM-SHA384", "AES128-SHA", "ECDHE-RSA-AES256-SHA", "DHE-RSA-AES256-GCM-SHA384"):
            for listener in ("mtls", "standard"):
                with self.subTest(suite=suite, listener=listener):
                    res = self.s_client(listener, "/__admin/health", tls="1.2", msg=True, extra=("-cipher", suite))
                    self.assertNotEqual(res.rc, 0, self.explain(res))
                    self.assertEqual(res.responses, [], self.explain(res))
                    # The server refused it (the client did offer the suite).
                    self.assert_s_client_alert(res, "handshake_failure")
        for suite in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256"):
            with self.subTest(suite=suite):
                res = self.s_client("mtls", "/__admin/tls-info", tls="1.2", extra=("-cipher", suite))
                self.assertEqual(self.json_of(res)["cipher"],
                                 {"ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                  "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"}[suite],
                                 self.explain(res))
        for suite in ("TLS_AES_128_CCM_8_SHA256", "TLS_CHACHA20_POLY1305_SHA256"):
            with self.subTest(suite=suite):
                res = self.s_client("mtls", "/__admin/tls-info", tls="1.3", extra=("-ciphersuites", suite))
                self.assertEqual(self.json_of(res)["cipher"], suite, self.explain(res))

    def test_api_version_list(self):
        for listener in ("mtls", "standard"):
            with self.subTest(listener=listener):
                self.assert_versions(self.curl(listener, "/services/data/"))

    def test_unknown_path_is_404(self):
        for listener in ("mtls", "standard"):
            for path in ("/no/such/path", "/services/nosuch", "/services/data/v20.0/"):
                with self.subTest(listener=listener, path=path):
                    res = self.curl(listener, path)
                    self.assertEqual(self.json_of(res, status=404), NOT_FOUND, self.explain(res))
                    r = self.response(res)
                    self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                                    self.explain(res))

    def test_other_methods_and_oversized_bodies(self):
        res = self.curl("standard", "/services/data/", extra=("-X", "DELETE"))
        body = self.json_of(res, status=405)
        self.assertEqual(body[0]["errorCode"], "METHOD_NOT_ALLOWED", self.explain(res))
        self.assert_rest_error(res, "METHOD_NOT_ALLOWED")
        allow = {m.strip() for m in self.response(res).headers.get("allow", "").split(",")}
        self.assertIn("GET", allow, self.explain(res))
        self.assertNotIn("DELETE", allow, self.explain(res))
        with tempfile.NamedTemporaryFile() as big:
            big.write(b"x" * (2 * 1024 * 1024 + 1))
            big.flush()
            res = self.curl("standard", "/services/data/", extra=("-H", "Expect:", "--data-binary", "@" + big.name))
            body = self.json_of(res, status=413)
            self.assertEqual(body[0]["errorCode"], "REQUEST_TOO_LARGE", self.explain(res))
            self.assert_rest_error(res, "REQUEST_TOO_LARGE")
        res = self.curl("standard", "/__admin/health")
        self.assertEqual(self.json_of(res)["status"], "ok", self.explain(res))

    def assert_rest_error(self, res, code):
        """The one response is JSON [{"message": "...", "errorCode": code}]."""
        r = self.response(res, 0, count=1)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), self.explain(res))
        body = r.json()
        self.assertEqual(len(body), 1, self.explain(res))
        self.assertEqual(set(body[0]), {"message", "errorCode"}, self.explain(res))
        self.assertEqual(body[0]["errorCode"], code, self.explain(res))
        self.assertTrue(body[0]["message"], self.explain(res))

    def test_header_block_limit(self):
        res = self.curl("mtls", "/services/data/", extra=("-H", "X-Pad: " + "a" * 6000))
        self.assert_versions(res)
        res = self.curl("mtls", "/services/data/", extra=("-H", "X-Pad: " + "a" * 12000))
        self.assertEqual(self.response(res).status, 431, self.explain(res))


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback on this host")
class TwoAddressTests(ServerTestCase):
    """--bind with two addresses: both listeners answer on each, on the same port."""
    server_args = ("--bind", "::1")

    def test_both_addresses_serve_both_listeners(self):
        for listener in ("mtls", "standard"):
            port = self.server.port(listener)
            for host in ("127.0.0.1", "[::1]"):
                with self.subTest(listener=listener, host=host):
                    p = subprocess.run(["curl", "-sS", "-g", "--max-time", "10", "--cacert", self.server.ca,
                                        f"https://{host}:{port}/__admin/tls-info"],
                                       capture_output=True, text=True, timeout=20, env=clean_env())
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertEqual(json.loads(p.stdout)["listener"], listener)


class RequiredModeTests(ServerTestCase):
    server_args = ("--client-cert", "required")

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("alice")
        cls.expired = cls.server.issue("erin-expired", "--expired")

    def test_no_certificate_aborts_handshake(self):
        for tls, alert in (("1.3", "certificate_required"), ("1.2", "handshake_failure")):
            with self.subTest(tls=tls, client="curl"):
                self.assert_curl_alert(self.curl("mtls", "/services/data/", tls=tls), alert)
            with self.subTest(tls=tls, client="s_client"):
                self.assert_s_client_alert(self.s_client("mtls", "/services/data/", tls=tls, msg=True), alert)

    def test_verified_certificate_is_served(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                res = self.curl("mtls", "/__admin/tls-info", "/services/data/", cert=self.good, tls=tls)
                info = self.json_of(res, 0)
                self.assert_tls_info(info, res, "mtls", tls)
                self.assert_cert_facts(info["clientCertificate"], self.good, res, chain_length=2, reason=None)
                self.assertEqual(self.response(res, 1).status, 200, self.explain(res))

    def test_failed_certificate_gets_page(self):
        """Required is about sending a certificate; a bad one still gets the page (default mode)."""
        res = self.curl("mtls", "/services/data/", cert=self.expired)
        self.assert_cert_page(self.response(res), "CERTIFICATE_EXPIRED", res)

    def test_standard_listener_needs_no_certificate(self):
        res = self.curl("standard", "/services/data/")
        self.assertEqual(self.response(res).status, 200, self.explain(res))


if __name__ == "__main__":
    unittest.main()
