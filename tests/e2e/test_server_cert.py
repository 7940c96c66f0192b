"""The server's own certificate (SPEC section 2): issued by the dev CA on first
start (RSA-2048, or ECDSA P-256 with --server-key ec) for localhost, 127.0.0.1,
::1 and --public-host; or the one given with --tls-cert/--tls-key."""

import os
import subprocess
import tempfile
import unittest

from sfmtls_e2e import CA_BIN, SERVER_BIN, E2EAsserts, Server, clean_env, curl, run, write_text


def served_certificate(port, ca, servername="localhost", tls="-tls1_2"):
    """The text of the certificate the server presents, and the negotiated cipher."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", tls, "-CAfile", ca,
                        "-servername", servername, "-showcerts"],
                       input=b"", capture_output=True, timeout=20, env=clean_env())
    out = p.stdout.decode(errors="replace")
    pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem.encode(),
                          capture_output=True, timeout=20).stdout.decode()
    return text, out


class IssuedCertificateTests(unittest.TestCase):

    def test_default_is_rsa_2048_for_the_local_names_and_public_host(self):
        srv = Server("--public-host", "acme.my.localhost")
        try:
            text, out = served_certificate(srv.mtls_port, srv.ca)
            self.assertIn("Public-Key: (2048 bit)", text)
            self.assertIn("rsaEncryption", text)
            for name in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1",
                         "DNS:acme.my.localhost"):
                self.assertIn(name, text)
            self.assertIn("TLS Web Server Authentication", text)
            self.assertIn("ECDHE-RSA-AES256-GCM-SHA384", out)
            self.assertIn("Verify return code: 0 (ok)", out)
            res = curl(srv.std_port, "/__admin/health", ca=srv.ca)
            self.assertEqual(res.rc, 0, str(res))
            self.assertEqual([r.status for r in res.responses], [200], str(res))
            self.assertEqual(res.responses[0].json(), {"status": "ok", "historyDropped": 0}, str(res))
        finally:
            srv.cleanup()

    def test_server_key_ec_and_reissue_on_change(self):
        srv = Server("--server-key", "ec")
        state = srv.state
        try:
            text, out = served_certificate(srv.mtls_port, srv.ca)
            self.assertIn("id-ecPublicKey", text)
            self.assertIn("prime256v1", text)
            self.assertIn("ECDHE-ECDSA-AES256-GCM-SHA384", out)
            self.assertEqual(srv.stop(), 0, srv.describe())
            # Same state dir, RSA again: the certificate is issued anew.
            again = Server(state_dir=state)
            try:
                text, _ = served_certificate(again.mtls_port, again.ca)
                self.assertIn("rsaEncryption", text)
            finally:
                again.cleanup()
        finally:
            srv.cleanup()


class OwnCertificateTests(E2EAsserts, unittest.TestCase):

    def test_tls_cert_and_key_are_served(self):
        with tempfile.TemporaryDirectory() as tmp:
            ca = os.path.join(tmp, "ca")
            run([CA_BIN, "init", "--dir", ca])
            prefix = os.path.join(tmp, "own")
            run([CA_BIN, "issue", "server", "--dir", ca, "--cn", "own.example", "--san", "localhost",
                 "--san", "127.0.0.1", "--out", prefix])
            srv = Server("--tls-cert", prefix + ".chain.pem", "--tls-key", prefix + ".key")
            try:
                text, out = served_certificate(srv.std_port, os.path.join(ca, "ca.pem"))
                self.assertIn("CN = own.example", out)
                self.assertIn("Verify return code: 0 (ok)", out)
            finally:
                srv.cleanup()

    def test_bad_key_stops_the_server_with_a_message(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "bad.pem")
            write_text(bad, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
            state = os.path.join(tmp, "state")
            p = self.assert_start_fails(["--tls-cert", bad, "--tls-key", bad], "server certificate",
                                        state_dir=state, timeout=20)
            self.assertIn("server certificate", p.stderr)
            self.assertIn(f"--tls-cert {bad} / --tls-key {bad}", p.stderr)
            # Refused before the admin token and the database were made.
            self.assertFalse(os.path.exists(os.path.join(state, "admin-token")))
            self.assertFalse(os.path.exists(os.path.join(state, "state.db")))


class InformationTests(unittest.TestCase):

    def test_help_lists_every_flag_and_version_names_the_builds(self):
        out = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True, timeout=10, env=clean_env())
        self.assertEqual(out.returncode, 0)
        for flag in ("--fixtures", "--state-dir", "--ephemeral", "--reset", "--bind", "--mtls-port",
                     "--port", "--public-host", "--public-port", "--tls-cert", "--tls-key", "--server-key",
                     "--trust", "--crl", "--allow-no-eku", "--client-cert", "--cert-failure",
                     "--mutual-auth-failed-status", "--handshake-timeout", "--idle-timeout",
                     "--session-timeout", "--admin-token", "--history-max", "--workers", "--log-format",
                     "--help", "--version"):
            self.assertIn(flag, out.stdout)
        ver = subprocess.run([SERVER_BIN, "--version"], capture_output=True, text=True, timeout=10, env=clean_env())
        self.assertEqual(ver.returncode, 0)
        self.assertRegex(ver.stdout, r"^sfmtls-server \d+\.\d+\.\d+ \(wolfSSL 5\.\d+\.\d+, \w+ build; "
                                     r"libmicrohttpd \d+\.\d+\.\d+\)")


if __name__ == "__main__":
    unittest.main()
