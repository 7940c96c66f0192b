"""--trust and --crl (SPEC section 2).

Second CAs made with `sfmtls-ca init` are trusted by bundle; CRLs are signed
with `openssl ca` (a test tool, not part of sfmtls):
  - "partner": trusted root; a client of it is verified.
  - "revoked-int": trusted root whose own CRL revokes its intermediate, so
    every client under it is CERTIFICATE_REVOKED.
  - "stranger": only its intermediate is given to --trust, which is no
    anchor, so its clients are CERTIFICATE_UNTRUSTED.
  - LeafCrlTests: the usual CRL, signed by an intermediate and revoking one
    leaf (the intermediate is no anchor: the server must still use the CRL).
"""

import hashlib
import os
import re
import ssl
import tempfile
import unittest

from sfmtls_e2e import (STALE_CRL, Cert, E2EAsserts, PkiServerTestCase, ServerTestCase, admin, issue_client,
                        make_crl, new_ca, pem_blocks, read_text, run, write_text)


class TrustCases:
    mode = None

    @classmethod
    def build_pki(cls, pki):
        partner, revoked_int, stranger = (new_ca(pki, n) for n in ("partner", "revoked-int", "stranger"))
        cls.partner = issue_client(partner, pki, "partner-client")
        cls.under_revoked = issue_client(revoked_int, pki, "under-revoked-intermediate")
        cls.stranger = issue_client(stranger, pki, "stranger-client")
        crl = make_crl(os.path.join(pki, "crl-root"), os.path.join(revoked_int, "ca.pem"),
                       os.path.join(revoked_int, "ca.key"), [os.path.join(revoked_int, "intermediate.pem")])
        # One bundle with a root and another CA's intermediate: the root becomes
        # an anchor, the intermediate is ignored with a warning.
        bundle = os.path.join(pki, "bundle.pem")
        write_text(bundle, read_text(os.path.join(revoked_int, "ca.pem"))
                   + read_text(os.path.join(stranger, "intermediate.pem")))
        return ("--cert-failure", cls.mode,
                "--trust", os.path.join(partner, "ca.pem"),
                "--trust", bundle,
                "--crl", crl)

    def test_client_of_trusted_bundle_ca_is_verified(self):
        res = self.curl("mtls", "/__admin/tls-info", "/services/data/", cert=self.partner)
        info = self.json_of(res, 0)
        self.assert_cert_facts(info["clientCertificate"], self.partner, res, chain_length=2, reason=None)
        self.assertEqual(self.response(res, 1).status, 200, self.explain(res))

    def test_dev_ca_client_still_verified(self):
        """--trust adds to the dev CA; a CRL of another issuer does not touch it."""
        cert = self.server.issue("alice")
        res = self.curl("mtls", "/__admin/tls-info", cert=cert)
        self.assert_cert_facts(self.json_of(res)["clientCertificate"], cert, res, chain_length=2, reason=None)

    def test_revoked_intermediate(self):
        self.check_failure(self.under_revoked, "CERTIFICATE_REVOKED")

    def test_intermediate_in_trust_bundle_is_no_anchor(self):
        self.check_failure(self.stranger, "CERTIFICATE_UNTRUSTED")
        self.assertIn("trust_skipped", self.server.stderr_text())


class PageModeTrustTests(TrustCases, PkiServerTestCase):
    mode = "page"

    def check_failure(self, cert, reason):
        self.check_page(cert, reason)


class AlertModeTrustTests(TrustCases, PkiServerTestCase):
    mode = "alert"

    def check_failure(self, cert, reason):
        self.check_alert(cert, reason)


class LeafCrlTests(PkiServerTestCase):
    """A CRL signed by the partner's intermediate revoking one of its leaves."""

    @classmethod
    def build_pki(cls, pki):
        partner = new_ca(pki, "partner")
        cls.ok = issue_client(partner, pki, "partner-ok")
        cls.revoked = issue_client(partner, pki, "partner-revoked")
        crl = make_crl(os.path.join(pki, "crl-int"), os.path.join(partner, "intermediate.pem"),
                       os.path.join(partner, "intermediate.key"), [cls.revoked.crt])
        return ("--trust", os.path.join(partner, "ca.pem"), "--crl", crl)

    def test_revoked_leaf(self):
        self.check_page(self.revoked, "CERTIFICATE_REVOKED")

    def test_unrevoked_sibling_is_verified(self):
        res = self.curl("mtls", "/__admin/tls-info", cert=self.ok)
        self.assert_cert_facts(self.json_of(res)["clientCertificate"], self.ok, res, chain_length=2, reason=None)


class DerCrlTests(LeafCrlTests):
    """The same CRL given in DER, as CAs often publish it."""

    @classmethod
    def build_pki(cls, pki):
        args = list(LeafCrlTests.build_pki.__func__(cls, pki))
        der = os.path.join(pki, "crl.der")
        run(["openssl", "crl", "-in", args[-1], "-outform", "DER", "-out", der])
        args[-1] = der
        return tuple(args)


class StaleCrlTests(E2EAsserts, unittest.TestCase):
    """A CRL past its nextUpdate would be ignored by wolfSSL as if absent: the
    server refuses it at start instead, and says why."""

    def test_stale_crl_stops_the_server(self):
        with tempfile.TemporaryDirectory(prefix="sfmtls-e2e-pki-") as pki:
            partner = new_ca(pki, "partner")
            crl = make_crl(os.path.join(pki, "crl"), os.path.join(partner, "intermediate.pem"),
                           os.path.join(partner, "intermediate.key"), [], *STALE_CRL)
            needle = "--crl " + crl + ": its nextUpdate has passed"
            p = self.assert_start_fails(["--trust", os.path.join(partner, "ca.pem"), "--crl", crl], needle,
                                        timeout=30)
            self.assertIn(needle, p.stderr)


EXPIRED_INT_CONFIG = """[ca]
default_ca = root
[root]
database = {work}/index.txt
new_certs_dir = {work}
certificate = {cert}
private_key = {key}
serial = {work}/serial
default_md = sha256
policy = any
[any]
commonName = supplied
[int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
"""


class ExpiredIntermediateTests:
    """A valid leaf under an intermediate that expired: the real reason,
    CERTIFICATE_EXPIRED, shows (wolfSSL alone would report the chain untrusted)."""
    mode = None

    @classmethod
    def build_pki(cls, pki):
        root = new_ca(pki, "old-root")
        work = os.path.join(pki, "old")
        os.makedirs(work)
        cfg = os.path.join(work, "ca.cnf")
        write_text(cfg, EXPIRED_INT_CONFIG.format(work=work, cert=os.path.join(root, "ca.pem"),
                                                  key=os.path.join(root, "ca.key")))
        write_text(os.path.join(work, "index.txt"), "")
        write_text(os.path.join(work, "serial"), "1000\n")
        p = lambda name: os.path.join(work, name)
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p("int.key"), "-out", p("int.csr"), "-subj", "/CN=expired intermediate"])
        run(["openssl", "ca", "-batch", "-config", cfg, "-in", p("int.csr"), "-out", p("int.pem"),
             "-startdate", "20240101000000Z", "-enddate", "20250101000000Z", "-extensions", "int", "-notext"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", p("leaf.key"), "-out", p("leaf.csr"), "-subj", "/CN=under expired"])
        run(["openssl", "x509", "-req", "-in", p("leaf.csr"), "-CA", p("int.pem"), "-CAkey", p("int.key"),
             "-CAcreateserial", "-days", "30", "-out", p("leaf.crt"), "-extfile", cfg, "-extensions", "leaf"])
        write_text(p("leaf.chain.pem"), read_text(p("leaf.crt")) + read_text(p("int.pem")))
        cls.leaf = Cert(p("leaf"))
        return ("--cert-failure", cls.mode, "--trust", os.path.join(root, "ca.pem"))


class PageModeExpiredIntermediateTests(ExpiredIntermediateTests, PkiServerTestCase):
    mode = "page"

    def test_expired_intermediate(self):
        self.check_page(self.leaf, "CERTIFICATE_EXPIRED")


class AlertModeExpiredIntermediateTests(ExpiredIntermediateTests, PkiServerTestCase):
    mode = "alert"

    def test_expired_intermediate(self):
        self.check_alert(self.leaf, "CERTIFICATE_EXPIRED")


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@unittest.skipUnless(os.path.exists(SYSTEM_BUNDLE), "no system CA bundle")
class SystemBundleTests(ServerTestCase):
    """The system bundle stands in for Salesforce's /cacerts.jsp list (SPEC
    section 2): a hundred-odd roots load (expired ones are skipped with a
    warning) and chains keep verifying handshake after handshake."""
    server_args = ("--trust", SYSTEM_BUNDLE)

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("bundle-client")

    def test_cacerts_jsp_lists_the_roots_in_force(self):
        # Salesforce's /cacerts.jsp lists the roots client chains may end at:
        # here the dev CA root and the bundle's roots, one table row each.
        st, headers, page = admin(self.server, "GET", "/cacerts.jsp", token=None)
        self.assertEqual(st, 200, page)
        self.assertTrue(headers["content-type"].startswith("text/html"), headers)
        listed = re.findall(r"<td>([0-9a-f]{64})</td></tr>", page)
        with open(SYSTEM_BUNDLE) as f:
            bundle = {hashlib.sha256(ssl.PEM_cert_to_DER_cert(b)).hexdigest() for b in pem_blocks(f.read())}
        with open(self.server.ca) as f:
            dev_root = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        self.assertIn(dev_root, listed)
        self.assertGreater(len(listed), 100, page[:500])
        self.assertEqual(len(listed), len(set(listed)), "a root listed twice")
        self.assertTrue(set(listed) <= bundle | {dev_root}, set(listed) - bundle - {dev_root})

    def test_dev_ca_clients_verify_repeatedly_with_many_anchors(self):
        for i in range(5):
            res = self.curl("mtls", "/__admin/tls-info", cert=self.good)
            cc = self.json_of(res)["clientCertificate"]
            self.assertTrue(cc and cc["chainVerified"], f"round {i}: {cc}" + self.explain(res))
            self.assert_cert_facts(cc, self.good, res, chain_length=2, reason=None)
        res = self.curl("mtls", "/__admin/tls-info", "/services/data/", cert=self.good, chain=False)
        cc = self.json_of(res)["clientCertificate"]
        self.assertEqual(cc["reason"], "CERTIFICATE_UNTRUSTED", self.explain(res))
        self.assert_cert_facts(cc, self.good, res, chain_length=1, reason="CERTIFICATE_UNTRUSTED")
        self.assert_cert_page(self.response(res, 1, count=2), "CERTIFICATE_UNTRUSTED", res)


if __name__ == "__main__":
    unittest.main()
