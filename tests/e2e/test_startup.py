"""Starting and stopping (SPEC section 8): the ready line, SIGTERM, bad flags."""

import os
import subprocess
import tempfile
import unittest

from sfmtls_e2e import FIXTURES, SERVER_BIN, Server, clean_env


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

    def test_unknown_flag_is_named(self):
        self.check_bad_args(["--no-such-flag"], "--no-such-flag")

    def test_bad_flag_value_is_named(self):
        for args, needle in ((["--cert-failure", "bogus"], "cert-failure"),
                             (["--client-cert", "sometimes"], "client-cert"),
                             (["--handshake-timeout", "soon"], "handshake-timeout")):
            with self.subTest(args=args):
                self.check_bad_args(args, needle)


if __name__ == "__main__":
    unittest.main()
