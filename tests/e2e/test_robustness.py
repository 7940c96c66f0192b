"""Hostile and slow peers on the mTLS listener (SPEC section 2, last point).

A flood of 1,000 bad connections must leave the server serving at once and
holding no more descriptors than before; silent peers are cut off after
--handshake-timeout; one stalled peer never stalls the others.
"""

import concurrent.futures
import os
import socket
import time
import unittest

from sfmtls_e2e import ServerTestCase, client_hello, poll_until, reset_close, tls_socket, wait_for_eof

FLOOD = 1000
KINDS = ("garbage_close", "garbage_wait", "half_hello_close", "half_hello_wait",
         "silent_close", "silent_wait", "abort_mid_handshake", "rst_at_once")


def bad_peer(port, kind):
    """One hostile connection; returns a problem description or None."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as e:
        return f"{kind}: connect failed: {e}"
    try:
        if kind.startswith("garbage"):
            s.sendall(os.urandom(300))
        elif kind.startswith("half_hello"):
            hello = client_hello()
            s.sendall(hello[:len(hello) // 2])
        elif kind == "abort_mid_handshake":
            s.sendall(client_hello())
            s.recv(100)  # the server's first flight has started
            reset_close(s)
            return None
        elif kind == "rst_at_once":
            reset_close(s)
            return None
        if kind.endswith("_wait") and wait_for_eof(s, 6) is None:
            return f"{kind}: the server did not close the connection within 6 s"
    except OSError:
        pass  # the server closed on us first: fine
    finally:
        s.close()
    return None


class FloodTests(ServerTestCase):
    server_args = ("--handshake-timeout", "1")

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("alice")

    def good_request(self):
        """A full mTLS handshake with a certificate, and a request that layer 1 never blocks."""
        start = time.monotonic()
        res = self.curl("mtls", "/__admin/health", cert=self.good, extra=("--max-time", "5"))
        return res, time.monotonic() - start

    def settled_fd_count(self):
        """The server's descriptor count once it stops changing (polled, with a deadline)."""
        last = [self.server.fd_count(), time.monotonic()]

        def stable():
            n, now = self.server.fd_count(), time.monotonic()
            if n != last[0]:
                last[:] = [n, now]
            return now - last[1] >= 0.3

        poll_until(stable, 5)
        return last[0]

    def test_silent_peer_is_cut_off(self):
        s = socket.create_connection(("127.0.0.1", self.server.mtls_port), timeout=5)
        try:
            elapsed = wait_for_eof(s, 6)
        finally:
            s.close()
        self.assertIsNotNone(elapsed, "a silent peer was not disconnected within 6 s (--handshake-timeout 1)"
                             + "\n" + self.server.describe())
        self.assertGreaterEqual(elapsed, 0.5, "disconnected before the handshake timeout")
        self.assertLessEqual(elapsed, 3.5, "--handshake-timeout 1 took too long")

    def test_flood_of_bad_connections(self):
        res, _ = self.good_request()
        self.assertEqual(self.response(res).status, 200, self.explain(res))
        before = self.settled_fd_count()

        with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
            problems = [p for p in pool.map(lambda i: bad_peer(self.server.mtls_port, KINDS[i % len(KINDS)]),
                                            range(FLOOD)) if p]

        self.assertTrue(self.server.alive(), self.server.describe())
        res, took = self.good_request()
        self.assertEqual(self.response(res).status, 200, "good client after the flood" + self.explain(res))
        self.assertLess(took, 2.0, f"good client after the flood took {took:.2f} s" + self.explain(res))
        self.assertEqual(problems, [], f"{len(problems)} of {FLOOD} bad peers misbehaved")

        after = poll_until(lambda: self.server.fd_count() <= before and self.server.fd_count(), 15)
        self.assertTrue(after, f"server holds {self.server.fd_count()} descriptors 15 s after the flood, "
                               f"{before} before:\n{self.server.fd_listing()}")


class StallTests(ServerTestCase):
    """One worker and the default 10 s handshake timeout: stalled peers hold their connections."""
    server_args = ("--workers", "1")

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("alice")

    def test_stalled_peers_do_not_block_others(self):
        hello = client_hello()
        stalled = []
        try:
            for i in range(20):
                s = socket.create_connection(("127.0.0.1", self.server.mtls_port), timeout=5)
                if i % 2:
                    s.sendall(hello[:len(hello) // 2])
                stalled.append(s)
            for tls in ("1.2", "1.3"):
                with self.subTest(tls=tls):
                    start = time.monotonic()
                    res = self.curl("mtls", "/__admin/health", cert=self.good, tls=tls, extra=("--max-time", "5"))
                    took = time.monotonic() - start
                    self.assertEqual(self.response(res).status, 200, self.explain(res))
                    self.assertLess(took, 2.0, f"served after {took:.2f} s while 20 peers stall")
        finally:
            for s in stalled:
                s.close()


class SlowClientTests(ServerTestCase):
    """--idle-timeout 1: a peer that completes the handshake, then trickles a
    request or never reads its answers, is cut off; others are served."""
    server_args = ("--idle-timeout", "1")

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("slow")

    def tls_connect(self):
        return tls_socket(self.server, self.good)

    def test_trickled_request_is_cut_off(self):
        s = self.tls_connect()
        start = time.monotonic()
        request = b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 200
        closed = False
        try:
            for byte in request:
                s.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - start > 6:
                    break
        except OSError:
            closed = True
        took = time.monotonic() - start
        if not closed:
            s.settimeout(3)
            try:
                closed = s.recv(100) == b""
            except OSError:
                closed = True
        s.close()
        self.assertTrue(closed, "a trickling peer kept its connection")
        self.assertLess(took, 4.0, f"cut off only after {took:.1f} s with --idle-timeout 1")
        self.assertGreaterEqual(took, 0.5, f"cut off after {took:.1f} s, before --idle-timeout 1 ran out")
        res = self.curl("mtls", "/__admin/health", cert=self.good)
        self.assertEqual(self.response(res).status, 200, self.explain(res))

    def test_keep_alive_client_is_served_until_idle(self):
        s = self.tls_connect()
        try:
            for _ in range(3):
                s.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                self.assertIn(b" 200 ", s.recv(65536))
                time.sleep(0.5)
            s.settimeout(5)
            start = time.monotonic()
            self.assertEqual(s.recv(100), b"", "an idle keep-alive connection is closed")
            self.assertLess(time.monotonic() - start, 3.0)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
