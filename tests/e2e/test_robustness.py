"""Hostile and slow peers on the mTLS listener (SPEC section 2, last point).

A flood of 1,000 bad connections must leave the server serving at once and
holding no more descriptors than before; silent peers are cut off after
--handshake-timeout; one stalled peer never stalls the others.
"""

import concurrent.futures
import os
import re
import socket
import ssl
import time
import unittest

from sfmtls_e2e import (ServerTestCase, client_hello, poll_until, reset_close, tls_context, tls_socket,
                        wait_for_eof)

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


def memory_tls(server, cert):
    """(socket, SSLObject, incoming BIO, outgoing BIO) after a TLS 1.3 handshake whose client
    Finished is still held in the outgoing BIO: the caller decides what travels with it."""
    sock = socket.create_connection(("127.0.0.1", server.port("mtls")), timeout=10)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context(server.ca, cert).wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            return sock, obj, incoming, outgoing
        except ssl.SSLWantReadError:
            data = outgoing.read()
            if data:
                sock.sendall(data)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            incoming.write(chunk)


def read_answers(sock, obj, incoming, count):
    """Reads until `count` complete HTTP answers (Content-Length framed) arrived; returns their status lines."""
    data, statuses = b"", []
    deadline = time.monotonic() + 10
    while len(statuses) < count and time.monotonic() < deadline:
        try:
            data += obj.read(65536)
        except ssl.SSLWantReadError:
            chunk = sock.recv(65536)
            if not chunk:
                break
            incoming.write(chunk)
            continue
        while b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            if len(rest) < length:
                break
            statuses.append(head.split(b"\r\n", 1)[0].decode())
            data = rest[length:]
    return statuses


class ReadAheadTests(ServerTestCase):
    """The server reads ahead of wolfSSL and only reads a socket again when epoll says it has bytes:
    whatever arrives together must still be answered, at once."""

    REQUEST = b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n"

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("ahead")

    def test_request_sent_with_the_client_finished(self):
        sock, obj, incoming, outgoing = memory_tls(self.server, self.good)
        try:
            obj.write(self.REQUEST)
            sock.sendall(outgoing.read())  # Finished and the request record in one write
            self.assertEqual(read_answers(sock, obj, incoming, 1), ["HTTP/1.1 200 OK"])
        finally:
            sock.close()

    def test_records_arriving_together_are_all_answered(self):
        sock, obj, incoming, outgoing = memory_tls(self.server, self.good)
        try:
            sock.sendall(outgoing.read())
            for _ in range(3):
                obj.write(self.REQUEST)  # three records, sent in one write
            sock.sendall(outgoing.read())
            self.assertEqual(read_answers(sock, obj, incoming, 3), ["HTTP/1.1 200 OK"] * 3)
            # and the connection still serves the next request sent alone
            obj.write(self.REQUEST)
            sock.sendall(outgoing.read())
            self.assertEqual(read_answers(sock, obj, incoming, 1), ["HTTP/1.1 200 OK"])
        finally:
            sock.close()

    def test_pipelined_requests_in_one_record(self):
        sock, obj, incoming, outgoing = memory_tls(self.server, self.good)
        try:
            obj.write(self.REQUEST * 4)
            sock.sendall(outgoing.read())
            self.assertEqual(read_answers(sock, obj, incoming, 4), ["HTTP/1.1 200 OK"] * 4)
        finally:
            sock.close()

    def test_large_body_across_many_records(self):
        sock, obj, incoming, outgoing = memory_tls(self.server, self.good)
        try:
            body = b"token=" + b"a" * (200 * 1024)
            obj.write(b"POST /services/oauth2/revoke HTTP/1.1\r\nHost: localhost\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            sock.sendall(outgoing.read())
            self.assertEqual(read_answers(sock, obj, incoming, 1), ["HTTP/1.1 400 Bad Request"])
        finally:
            sock.close()


if __name__ == "__main__":
    unittest.main()
