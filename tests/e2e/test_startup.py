"""Starting and stopping (SPEC section 8): the ready line, SIGTERM, bad flags."""

import os
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from sfmtls_e2e import CA_BIN, FIXTURES, SERVER_BIN, Server, clean_env, curl


class StartupTests(unittest.TestCase):

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
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [SERVER_BIN, "--fixtures", FIXTURES, "--state-dir", os.path.join(tmp, "state"),
                   "--bind", "127.0.0.1", "--mtls-port", "0", "--port", "0", *args]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=15, env=clean_env())
            except subprocess.TimeoutExpired as e:
                self.fail(f"{' '.join(cmd)} still running after 15 s (stdout: {e.stdout!r})")
        msg = f"$ {' '.join(cmd)}\nrc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        self.assertNotEqual(p.returncode, 0, msg)
        self.assertNotIn("sfmtls ready", p.stdout, msg)
        self.assertIn(needle, p.stdout + p.stderr, msg)

    def test_port_held_by_another_server_is_an_error(self):
        # Workers share ports with SO_REUSEPORT; a second server must not join that group.
        first = Server()
        try:
            self.check_bad_args(["--mtls-port", str(first.mtls_port)], "Address already in use")
            self.check_bad_args(["--port", str(first.std_port)], "--port")
            self.assertTrue(first.alive())
        finally:
            first.cleanup()

    def test_trust_file_without_a_root_is_an_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            ca = os.path.join(tmp, "ca")
            subprocess.run([CA_BIN, "init", "--dir", ca], check=True, capture_output=True, timeout=30)
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


def tls_client(srv, cert):
    ctx = ssl.create_default_context(cafile=srv.ca)
    ctx.load_cert_chain(cert.chain, cert.key)
    sock = socket.create_connection(("127.0.0.1", srv.mtls_port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="localhost")


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
            idle = tls_client(srv, cert)
            idle.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertIn(b" 200 ", idle.recv(65536))
            busy = tls_client(srv, cert)
            busy.sendall(b"GET /services/data/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.1)  # the first half of the body is with the server
            srv.proc.send_signal(15)
            time.sleep(0.1)
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
            curl(srv.mtls_port, "/services/data/", "/nope", ca=srv.ca, cert=expired.chain, key=expired.key)
            curl(srv.mtls_port, "/services/data/", ca=srv.ca, cert=good.chain, key=good.key)
            with socket.create_connection(("127.0.0.1", srv.mtls_port)) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # plaintext HTTP to a TLS port
                s.recv(100)
            srv.stop()
            lines = srv.stderr_text().splitlines()
            denied = [l for l in lines if "request_denied" in l]
            self.assertEqual(len(denied), 2, "\n".join(lines))
            self.assertTrue(all("CERTIFICATE_EXPIRED" in l for l in denied), "\n".join(denied))
            self.assertTrue(any("/services/data/" in l for l in denied) and any("/nope" in l for l in denied))
            self.assertEqual(len([l for l in lines if "handshake_failed" in l]), 1, "\n".join(lines))
        finally:
            srv.cleanup()

    def test_json_log_lines_parse(self):
        import json
        srv = Server("--log-format", "json")
        try:
            srv.stop()
            lines = [l for l in srv.stderr_text().splitlines() if l.strip()]
            self.assertTrue(lines)
            for l in lines:
                entry = json.loads(l)
                self.assertEqual(set(entry), {"time", "level", "event", "message"}, l)
        finally:
            srv.cleanup()


class EnvironmentTests(unittest.TestCase):
    """Every flag reads SFMTLS_<NAME>; flags win (SPEC section 8)."""

    def test_variables_set_flags_and_flags_win(self):
        srv = Server("--client-cert", "optional",
                     env={"SFMTLS_CERT_FAILURE": "alert", "SFMTLS_CLIENT_CERT": "required"})
        try:
            bad = srv.issue("env-expired", "--expired")
            res = curl(srv.mtls_port, "/services/data/", ca=srv.ca, cert=bad.chain, key=bad.key)
            self.assertTrue(res.has_alert("certificate_expired") or res.rc == 60, str(res))
            res = curl(srv.mtls_port, "/__admin/tls-info", ca=srv.ca)
            self.assertEqual(res.rc, 0, "--client-cert optional beats SFMTLS_CLIENT_CERT\n" + str(res))
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
