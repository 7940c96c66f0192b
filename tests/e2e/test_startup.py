"""Starting and stopping (SPEC section 8): the ready line, SIGTERM, bad flags."""

import json
import os
import signal
import socket
import tempfile
import time
import unittest

from sfmtls_e2e import CA_BIN, E2EAsserts, Server, ServerTestCase, curl, poll_until, run, tls_socket


class StartupTests(E2EAsserts, unittest.TestCase):

    def test_ready_line_state_dir_and_sigterm(self):
        srv = Server()
        try:
            for name in ("ca.pem", "ca.key", "intermediate.pem", "intermediate.key"):
                self.assertTrue(os.path.exists(os.path.join(srv.state, name)), f"state dir lacks {name}")
            self.assertNotEqual(srv.mtls_port, srv.std_port)
            rc = srv.stop()
            self.assertEqual(rc, 0, "SIGTERM must exit 0\n" + srv.describe())
        finally:
            srv.cleanup()

    def check_bad_args(self, args, needle):
        return self.assert_start_fails(args, needle)

    def test_port_held_by_another_server_is_an_error(self):
        # Workers share ports with SO_REUSEPORT; a second server must not join that group.
        first = Server()
        try:
            p = self.check_bad_args(["--mtls-port", str(first.mtls_port)], "Address already in use")
            self.assertIn(f"port {first.mtls_port} (--mtls-port): Address already in use", p.stderr)
            p = self.check_bad_args(["--port", str(first.std_port)], "--port")
            self.assertIn(f"port {first.std_port} (--port): Address already in use", p.stderr)
            self.assertTrue(first.alive())
        finally:
            first.cleanup()

    def test_trust_file_without_a_root_is_an_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            ca = os.path.join(tmp, "ca")
            run([CA_BIN, "init", "--dir", ca])
            self.check_bad_args(["--trust", os.path.join(ca, "intermediate.pem")], "no self-signed CA certificate")
            bad = os.path.join(tmp, "bad.pem")
            with open(bad, "w") as f:
                f.write("-----BEGIN CERTIFICATE-----\nMIIBad==\n-----END CERTIFICATE-----\n")
            self.check_bad_args(["--trust", bad], "--trust " + bad)
            self.check_bad_args(["--trust", os.path.join(tmp, "missing.pem")], "missing.pem")
            self.check_bad_args(["--crl", bad], "--crl " + bad)

    def test_unknown_flag_is_named(self):
        self.check_bad_args(["--no-such-flag"], "--no-such-flag")

    def test_bad_flag_value_is_named(self):
        for args, needle in ((["--cert-failure", "bogus"], "cert-failure"),
                             (["--client-cert", "sometimes"], "client-cert"),
                             (["--handshake-timeout", "soon"], "handshake-timeout")):
            with self.subTest(args=args):
                self.check_bad_args(args, needle)


def read_all(sock):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class DrainTests(unittest.TestCase):
    """SIGTERM: stop accepting, finish the request in flight, close the idle, exit 0."""

    def test_sigterm_finishes_the_request_in_flight(self):
        srv = Server()
        try:
            cert = srv.issue("drain")
            idle = tls_socket(srv, cert)
            idle.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertIn(b" 200 ", idle.recv(65536))
            busy = tls_socket(srv, cert)
            busy.sendall(b"GET /services/data/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.1)  # the first half of the body is with the server
            srv.proc.send_signal(signal.SIGTERM)

            def refused():
                try:
                    socket.create_connection(("127.0.0.1", srv.mtls_port), timeout=2).close()
                    return False
                except OSError:
                    return True
            # It stops accepting at once, while the request is still in flight.
            self.assertTrue(poll_until(refused, 5, 0.01), "still accepting 5 s after SIGTERM\n" + srv.describe())
            self.assertTrue(srv.alive(), "exited with a request in flight\n" + srv.describe())
            busy.sendall(b"67890")
            answer = read_all(busy).decode(errors="replace")
            self.assertIn("HTTP/1.1 200 OK", answer, srv.describe())
            self.assertIn("Connection: close", answer)
            self.assertIn('"version":"67.0"', answer)
            self.assertEqual(idle.recv(100), b"", "the idle connection is closed")
            self.assertEqual(srv.proc.wait(10), 0, srv.describe())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.mtls_port), timeout=2).close()
            idle.close()
            busy.close()
        finally:
            srv.cleanup()


class LoggingTests(unittest.TestCase):
    """One stderr line per failed handshake and per denied request, with its reason."""

    def test_failures_are_logged_with_their_reason(self):
        srv = Server("--cert-failure", "page")
        try:
            good, expired = srv.issue("logged"), srv.issue("logged-expired", "--expired")
            res = curl(srv.mtls_port, "/services/data/", "/nope", ca=srv.ca, cert=expired.chain, key=expired.key)
            self.assertEqual([(r.status, r.headers.get("x-sfmtls-reason")) for r in res.responses],
                             [(400, "CERTIFICATE_EXPIRED")] * 2, str(res))
            res = curl(srv.mtls_port, "/services/data/", ca=srv.ca, cert=good.chain, key=good.key)
            self.assertEqual([r.status for r in res.responses], [200], str(res))
            with socket.create_connection(("127.0.0.1", srv.mtls_port)) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plaintext HTTP to a TLS port
                s.recv(100)
            self.assertEqual(srv.stop(), 0, srv.describe())
            lines = srv.stderr_text().splitlines()
            denied = [l for l in lines if "request_denied" in l]
            self.assertEqual(len(denied), 2, "\n".join(lines))
            self.assertTrue(all("CERTIFICATE_EXPIRED" in l for l in denied), "\n".join(denied))
            self.assertTrue(any("/services/data/" in l for l in denied) and any("/nope" in l for l in denied))
            self.assertEqual(len([l for l in lines if "handshake_failed" in l]), 1, "\n".join(lines))
        finally:
            srv.cleanup()

    def test_json_log_lines_parse(self):
        srv = Server("--log-format", "json")
        try:
            res = curl(srv.std_port, "/nope", ca=srv.ca)  # a denied request: one more line
            self.assertEqual([r.status for r in res.responses], [404], str(res))
            self.assertEqual(srv.stop(), 0, srv.describe())
            lines = [l for l in srv.stderr_text().splitlines() if l.strip()]
            self.assertTrue(lines)
            entries = []
            for l in lines:
                entry = json.loads(l)
                self.assertEqual(set(entry), {"time", "level", "event", "message"}, l)
                entries.append(entry)
            denied = [e for e in entries if e["event"] == "request_denied"]
            self.assertEqual(len(denied), 1, lines)
            self.assertIn("NOT_FOUND", denied[0]["message"])
            self.assertIn("/nope", denied[0]["message"])
        finally:
            srv.cleanup()


class EnvironmentTests(ServerTestCase):
    """Every flag reads SFMTLS_<NAME>; flags win (SPEC section 8)."""
    server_args = ("--client-cert", "optional")
    server_env = {"SFMTLS_CERT_FAILURE": "alert", "SFMTLS_CLIENT_CERT": "required"}

    def test_variables_set_flags_and_flags_win(self):
        srv = self.server
        bad = srv.issue("env-expired", "--expired")
        res = curl(srv.mtls_port, "/services/data/", ca=srv.ca, cert=bad.chain, key=bad.key)
        self.assertTrue(res.has_alert("certificate_expired") or res.rc == 60, str(res))
        self.assert_curl_alert(res, "certificate_expired")
        # SFMTLS_CERT_FAILURE=alert: the handshake is aborted with the alert itself.
        self.assert_s_client_alert(self.s_client("mtls", "/services/data/", cert=bad, msg=True),
                                   "certificate_expired")
        res = curl(srv.mtls_port, "/__admin/tls-info", ca=srv.ca)
        self.assertEqual(res.rc, 0, "--client-cert optional beats SFMTLS_CLIENT_CERT\n" + str(res))
        info = self.json_of(res)
        self.assertEqual((info["listener"], info["clientCertificate"]), ("mtls", None), self.explain(res))


if __name__ == "__main__":
    unittest.main()
