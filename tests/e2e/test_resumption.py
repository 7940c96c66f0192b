"""Resumed TLS sessions carry the full handshake's layer-1 outcome (SPEC section 2).

openssl s_client -sess_out keeps the session (ticket) of a full handshake,
-sess_in offers it again; "Reused" in its output means the server resumed.
"""

import os
import unittest

from sfmtls_e2e import ServerTestCase

TLS_VERSIONS = ("1.3", "1.2")


class ResumptionTests(ServerTestCase):
    server_args = ("--cert-failure", "page")

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("alice")
        cls.expired = cls.server.issue("erin-expired", "--expired")

    def sess_file(self, name):
        return os.path.join(self.server.tmp, f"{self.id().rsplit('.', 1)[-1]}-{name}.sess")

    def full_handshake(self, listener, cert, tls, sess):
        res = self.s_client(listener, cert=cert, tls=tls, sess_out=sess)
        self.assertIn("New, TLSv" + tls, res.out, self.explain(res))
        info = self.json_of(res)
        self.assertIs(info["resumed"], False, self.explain(res))
        self.assertTrue(os.path.exists(sess) and os.path.getsize(sess) > 0,
                        "s_client saved no session" + self.explain(res))
        return info

    def resume(self, listener, cert, tls, sess, path="/__admin/tls-info"):
        res = self.s_client(listener, path, cert=cert, tls=tls, sess_in=sess)
        self.assertIn("Reused, TLSv" + tls, res.out, "session was not resumed" + self.explain(res))
        return res

    def test_resume_after_verified_full_handshake(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                sess = self.sess_file(tls)
                full = self.full_handshake("mtls", self.good, tls, sess)
                self.assertIs(full["clientCertificate"]["chainVerified"], True, str(full))
                res = self.resume("mtls", self.good, tls, sess)
                info = self.json_of(res)
                self.assert_tls_info(info, res, "mtls", tls)
                self.assertIs(info["resumed"], True, self.explain(res))
                cc = info["clientCertificate"]
                msg = f"clientCertificate: {cc}" + self.explain(res)
                self.assertIsInstance(cc, dict, msg)
                self.assertIs(cc.get("chainVerified"), True, msg)
                self.assertIsNone(cc.get("reason"), msg)
                self.assertEqual(cc.get("fingerprintSha256"), self.good.fingerprint, msg)
                res = self.resume("mtls", self.good, tls, sess, "/services/data/")
                self.assertEqual(self.response(res).status, 200, self.explain(res))

    def test_resume_after_failed_full_handshake(self):
        for tls in TLS_VERSIONS:
            with self.subTest(tls=tls):
                sess = self.sess_file(tls)
                full = self.full_handshake("mtls", self.expired, tls, sess)
                self.assertEqual(full["clientCertificate"]["reason"], "CERTIFICATE_EXPIRED", str(full))
                res = self.resume("mtls", self.expired, tls, sess)
                info = self.json_of(res)
                self.assertIs(info["resumed"], True, self.explain(res))
                cc = info["clientCertificate"]
                msg = f"clientCertificate: {cc}" + self.explain(res)
                self.assertIsInstance(cc, dict, msg)
                self.assertIs(cc.get("chainVerified"), False, msg)
                self.assertEqual(cc.get("reason"), "CERTIFICATE_EXPIRED", msg)
                self.assertEqual(cc.get("fingerprintSha256"), self.expired.fingerprint, msg)
                res = self.resume("mtls", self.expired, tls, sess, "/services/data/")
                self.assert_cert_page(self.response(res), "CERTIFICATE_EXPIRED", res)

    def test_never_resumes_on_other_listener(self):
        for tls in TLS_VERSIONS:
            for src, dst in (("mtls", "standard"), ("standard", "mtls")):
                with self.subTest(tls=tls, session_from=src, offered_to=dst):
                    sess = self.sess_file(f"{tls}-{src}")
                    self.full_handshake(src, self.good if src == "mtls" else None, tls, sess)
                    res = self.s_client(dst, tls=tls, sess_in=sess)
                    self.assertNotIn("Reused,", res.out, self.explain(res))
                    self.assertIn("New, TLSv" + tls, res.out, self.explain(res))
                    info = self.json_of(res)
                    self.assertEqual(info["listener"], dst, self.explain(res))
                    self.assertIs(info["resumed"], False, self.explain(res))
                    self.assertIsNone(info["clientCertificate"], self.explain(res))


if __name__ == "__main__":
    unittest.main()
