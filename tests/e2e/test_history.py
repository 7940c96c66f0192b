"""The login history (SPEC sections 4 and 6): what GET /__admin/login-history
shows for the front door's decisions.

Every denied request and every refused handshake of the layer-1 cases (the
certificates of test_layer1.py, plus one revoked by a --crl of the dev CA's
intermediate) is one entry with its reason; allowed requests are entries
too; /__admin/ requests and garbage connections are not. Then the query's
filters and limits, --history-max, and a restart.

The dev CA is made with `sfmtls-ca init` before the servers start (setUpModule)
so that a CRL of its intermediate can be given with --crl; each class copies
it into its own state dir.
"""

import datetime
import os
import re
import shutil
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_history.py`

from sfmtls_e2e import (CA_BIN, REASONS, Cert, KeepAlive, PkiServerTestCase, Server, ServerTestCase, admin, curl,
                        get_statuses, issue_client, make_crl, poll_until, run, tls_context, wait_for_eof)

TLS_VERSIONS = ("1.2", "1.3")
ENTRY_KEYS = {"time", "listener", "remoteAddress", "username", "endpoint", "outcome", "reason", "status",
              "certificate"}
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MUTUAL = "Mutual authentication failed"
NOT_FOUND_BODY = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]

PKI = None  # setUpModule: the dev CA, client certificates and the CRL
CERTS = {}


def setUpModule():
    global PKI
    PKI = tempfile.mkdtemp(prefix="sfmtls-e2e-history-")
    ca = os.path.join(PKI, "ca")
    run([CA_BIN, "init", "--dir", ca])
    for name, flags in (("good", ()), ("bare", ()), ("revoked", ()), ("self-signed", ("--self-signed",)),
                        ("expired", ("--expired",)), ("not-yet", ("--not-yet-valid",)),
                        ("untrusted", ("--untrusted",)), ("eku-server", ("--eku", "server"))):
        CERTS[name] = issue_client(ca, PKI, name, *flags)
    CERTS["crl"] = make_crl(os.path.join(PKI, "crl"), os.path.join(ca, "intermediate.pem"),
                            os.path.join(ca, "intermediate.key"), [CERTS["revoked"].crt])


def tearDownModule():
    if PKI:
        shutil.rmtree(PKI, ignore_errors=True)


# (label, certificate, send its chain, reason): the layer-1 cases.
def layer1_cases():
    return (("self-signed", CERTS["self-signed"], True, "CERTIFICATE_SELF_SIGNED"),
            ("untrusted CA", CERTS["untrusted"], True, "CERTIFICATE_UNTRUSTED"),
            ("leaf without intermediate", CERTS["bare"], False, "CERTIFICATE_UNTRUSTED"),
            ("revoked", CERTS["revoked"], True, "CERTIFICATE_REVOKED"),
            ("expired", CERTS["expired"], True, "CERTIFICATE_EXPIRED"),
            ("not yet valid", CERTS["not-yet"], True, "CERTIFICATE_NOT_YET_VALID"),
            ("EKU server", CERTS["eku-server"], True, "CERTIFICATE_INVALID"))


def cert_entry(cert):
    """The `certificate` of an entry for a client certificate."""
    return {"subject": cert.subject, "issuer": cert.issuer, "fingerprintSha256": cert.fingerprint}


class HistoryMixin:
    """Queries and checks of the login history (self.server)."""

    def history(self, query=""):
        status, _, data = admin(self.server, "GET", "/__admin/login-history" + query)
        self.assertEqual(status, 200, f"login-history{query}: {data}\n{self.server.describe()}")
        self.assertIsInstance(data, list, f"login-history{query}: {data}")
        return data

    def count(self):
        return len(self.history("?limit=1000"))

    def assert_entry(self, entry, *, listener="mtls", endpoint, outcome="denied", reason, status=MUTUAL,
                     certificate=None, msg=""):
        """One entry: every key, and a time in the last few seconds."""
        msg = f"entry: {entry}\n{msg}"
        self.assertIsInstance(entry, dict, msg)
        self.assertEqual(set(entry), ENTRY_KEYS, msg)
        self.assertEqual({k: v for k, v in entry.items() if k != "time"},
                         {"listener": listener, "remoteAddress": "127.0.0.1", "username": None,
                          "endpoint": endpoint, "outcome": outcome, "reason": reason, "status": status,
                          "certificate": certificate}, msg)
        self.assertRegex(entry["time"], TIME_RE, msg)
        when = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - when).total_seconds()), 10, msg)

    def assert_newest_first(self, entries):
        times = [e["time"] for e in entries]
        self.assertEqual(times, sorted(times, reverse=True), "entries are not newest first")


class DevCaServerTestCase(HistoryMixin, PkiServerTestCase):
    """A server whose state dir holds the module's dev CA, started with its CRL."""

    @classmethod
    def build_pki(cls, pki):
        cls.state_dir = os.path.join(pki, "state")
        shutil.copytree(os.path.join(PKI, "ca"), cls.state_dir)
        return ("--crl", CERTS["crl"])


class PageModeHistoryTests(DevCaServerTestCase):
    server_args = ("--cert-failure", "page")

    def test_every_layer1_denial_is_an_entry(self):
        """The Certificate Error page's request: its endpoint, the reason, the leaf."""
        for label, cert, chain, reason in layer1_cases():
            for tls in TLS_VERSIONS:
                with self.subTest(cert=label, tls=tls):
                    before = self.count()
                    res = self.curl("mtls", "/services/data/", cert=cert, chain=chain, tls=tls)
                    self.assert_cert_page(self.response(res, 0, count=1), reason, res)
                    # No waiting: the entry is there once the page has been answered.
                    entries = self.history()
                    self.assertEqual(len(entries), before + 1, f"{entries[:3]}")
                    self.assert_entry(entries[0], endpoint="GET /services/data/", reason=reason,
                                      certificate=cert_entry(cert), msg=self.explain(res))

    def test_allowed_request_with_verified_certificate(self):
        good = CERTS["good"]
        res = self.curl("mtls", "/services/data/", cert=good)
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        self.assert_entry(self.history("?limit=1")[0], endpoint="GET /services/data/", outcome="allowed",
                          reason="ALLOWED", status="Success", certificate=cert_entry(good), msg=self.explain(res))

    def test_allowed_request_without_certificate_on_mtls_listener(self):
        res = self.curl("mtls", "/services/data")
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        self.assert_entry(self.history("?limit=1")[0], endpoint="GET /services/data", outcome="allowed",
                          reason="ALLOWED", status="Success", msg=self.explain(res))

    def test_allowed_request_on_standard_listener(self):
        res = self.curl("standard", "/services/data/")
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        self.assert_entry(self.history("?limit=1")[0], listener="standard", endpoint="GET /services/data/",
                          outcome="allowed", reason="ALLOWED", status="Success", msg=self.explain(res))

    def test_unknown_path_is_denied_not_found(self):
        for listener, cert in (("standard", None), ("mtls", CERTS["good"])):
            with self.subTest(listener=listener):
                res = self.curl(listener, "/services/nothing/here", cert=cert)
                r = self.response(res, 0, count=1)
                self.assertEqual(r.status, 404, self.explain(res))
                self.assertEqual(r.headers.get("x-sfmtls-reason"), "NOT_FOUND", self.explain(res))
                self.assertEqual(r.json(), NOT_FOUND_BODY, self.explain(res))
                self.assert_entry(self.history("?limit=1")[0], listener=listener,
                                  endpoint="GET /services/nothing/here", reason="NOT_FOUND", status="Not found",
                                  certificate=cert and cert_entry(cert), msg=self.explain(res))

    def test_admin_requests_are_not_recorded(self):
        res = self.curl("standard", "/services/data/")  # a known newest entry
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        before = self.history("?limit=1000")
        self.assertEqual(before[0]["endpoint"], "GET /services/data/", before[:1])
        calls = [("GET", "/__admin/health", None, "standard", 200), ("GET", "/__admin/tls-info", None, "mtls", 200),
                 ("GET", "/__admin/users", "token", "mtls", 200),
                 ("GET", "/__admin/login-history", "token", "standard", 200),
                 ("GET", "/__admin/no-such-thing", "token", "standard", 404),
                 ("GET", "/__admin/users", "wrong-token", "standard", 401),
                 ("POST", "/__admin/reset", None, "mtls", 401)]
        for method, path, token, listener, want in calls:
            kw = {} if token == "token" else {"token": token}
            status, _, data = admin(self.server, method, path, listener=listener, **kw)
            self.assertNotEqual(status, 0, f"{method} {path}: {data}")
            self.assertEqual(status, want, f"{method} {path} on {listener}: {data}")
        # /__admin/ on a connection whose certificate failed layer 1 is not recorded either.
        res = self.curl("mtls", "/__admin/tls-info", "/__admin/health", cert=CERTS["expired"])
        self.assertEqual([r.status for r in res.responses], [200, 200], self.explain(res))
        self.assertEqual(self.history("?limit=1000"), before)

    def test_garbage_connections_are_not_recorded(self):
        res = self.curl("standard", "/services/data/")
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        before = self.history("?limit=1000")
        for listener in ("mtls", "standard"):
            for garbage in (b"GET /services/data/ HTTP/1.1\r\nHost: localhost\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
                with socket.create_connection(("127.0.0.1", self.server.port(listener)), timeout=10) as s:
                    s.sendall(garbage)
                    self.assertIsNotNone(wait_for_eof(s, 15), f"{listener}: {garbage!r} not closed")
        self.assertTrue(self.server.alive(), self.server.describe())
        self.assertEqual(self.history("?limit=1000"), before)

    def test_entry_visible_as_soon_as_request_answered(self):
        """On one keep-alive connection, each answer's entry is the newest at once (any worker asked)."""
        conn = KeepAlive(self.server.std_port, tls_context(self.server.ca))
        try:
            for i in range(20):
                status, headers, _ = conn.get(f"/visible/{i}")
                self.assertEqual(status, 404)
                self.assertEqual(headers.get("x-sfmtls-reason"), "NOT_FOUND", headers)
                newest = self.history("?limit=1")
                self.assertEqual([e["endpoint"] for e in newest], [f"GET /visible/{i}"], f"round {i}")
        finally:
            conn.close()


class AlertModeHistoryTests(DevCaServerTestCase):
    """Refused handshakes: --cert-failure=alert and --client-cert=required."""
    server_args = ("--cert-failure", "alert", "--client-cert", "required")

    def refused(self, *, cert=None, chain=True, tls, alert):
        """A handshake the server refuses with `alert`, and the entry it adds
        (polled: the entry is queued just after the alert goes out)."""
        before = self.count()
        res = self.curl("mtls", "/services/data/", cert=cert, chain=chain, tls=tls)
        self.assertNotEqual(res.rc, 0, self.explain(res))
        self.assertEqual(res.responses, [], self.explain(res))
        self.assert_curl_alert(res, alert)
        self.assertTrue(poll_until(lambda: self.count() > before, 10), "no entry" + self.explain(res))
        entries = self.history()
        self.assertEqual(len(entries), before + 1, f"{entries[:3]}" + self.explain(res))
        return entries[0], res

    def test_every_refused_handshake_is_an_entry(self):
        """endpoint null (no request was made); the leaf as layer 1 saw it."""
        for label, cert, chain, reason in layer1_cases():
            for tls in TLS_VERSIONS:
                with self.subTest(cert=label, tls=tls):
                    entry, res = self.refused(cert=cert, chain=chain, tls=tls, alert=REASONS[reason][0])
                    self.assert_entry(entry, endpoint=None, reason=reason, certificate=cert_entry(cert),
                                      msg=self.explain(res))

    def test_required_certificate_missing(self):
        for tls, alert in (("1.2", "handshake_failure"), ("1.3", "certificate_required")):
            with self.subTest(tls=tls):
                entry, res = self.refused(tls=tls, alert=alert)
                self.assert_entry(entry, endpoint=None, reason="NO_CLIENT_CERTIFICATE", msg=self.explain(res))

    def test_verified_certificate_is_allowed(self):
        good = CERTS["good"]
        res = self.curl("mtls", "/services/data/", cert=good)
        self.assertEqual(self.response(res, 0, count=1).status, 200, self.explain(res))
        self.assert_entry(self.history("?limit=1")[0], endpoint="GET /services/data/", outcome="allowed",
                          reason="ALLOWED", status="Success", certificate=cert_entry(good), msg=self.explain(res))


class FilterTests(HistoryMixin, ServerTestCase):
    """1001 denied NOT_FOUND requests, 3 allowed ones, 1 CERTIFICATE_EXPIRED page: 1005 entries."""

    @classmethod
    def prepare(cls):
        s = cls.server
        statuses = get_statuses(s, [f"/bulk/{i}" for i in range(1001)] + ["/services/data/"] * 3)
        if statuses != [404] * 1001 + [200] * 3:
            raise AssertionError(f"the requests that fill the history: {statuses}")
        cls.expired = s.issue("filter-expired", "--expired")
        res = curl(s.mtls_port, "/services/data/", ca=s.ca, cert=cls.expired.chain, key=cls.expired.key)
        if [r.status for r in res.responses] != [400]:
            raise AssertionError(f"expired certificate: {res}")

    def endpoints(self, entries):
        return [e["endpoint"] for e in entries]

    def test_default_limit_is_100_newest_first(self):
        entries = self.history()
        self.assertEqual(len(entries), 100)
        self.assert_newest_first(entries)
        self.assertEqual(entries[0]["reason"], "CERTIFICATE_EXPIRED")
        self.assertEqual(self.endpoints(entries[1:5]), ["GET /services/data/"] * 3 + ["GET /bulk/1000"])
        self.assertEqual(self.endpoints(entries[4:]), [f"GET /bulk/{i}" for i in range(1000, 904, -1)])

    def test_limit(self):
        everything = self.history("?limit=1000")
        self.assertEqual(len(everything), 1000)
        self.assertEqual(self.endpoints(everything[-1:]), ["GET /bulk/5"])
        self.assertEqual(self.history("?limit=1"), everything[:1])
        self.assertEqual(self.history("?limit=2"), everything[:2])
        self.assertEqual(self.history("?limit=999"), everything[:999])
        for big in ("1001", "5000"):
            with self.subTest(limit=big):
                self.assertEqual(self.history("?limit=" + big), everything, "capped at 1000")

    def test_outcome(self):
        allowed = self.history("?outcome=allowed")
        self.assertEqual(len(allowed), 3)
        for e in allowed:
            self.assert_entry(e, listener="standard", endpoint="GET /services/data/", outcome="allowed",
                              reason="ALLOWED", status="Success")
        denied = self.history("?outcome=denied&limit=1000")
        self.assertEqual(len(denied), 1000)
        self.assertTrue(all(e["outcome"] == "denied" for e in denied), denied[:5])
        self.assertEqual(denied[0]["reason"], "CERTIFICATE_EXPIRED")
        self.assertEqual(self.endpoints(denied[1:3]), ["GET /bulk/1000", "GET /bulk/999"])

    def test_reason(self):
        expired = self.history("?reason=CERTIFICATE_EXPIRED")
        self.assertEqual(len(expired), 1)
        self.assert_entry(expired[0], endpoint="GET /services/data/", reason="CERTIFICATE_EXPIRED",
                          certificate=cert_entry(self.expired))
        self.assertEqual(self.endpoints(self.history("?reason=NOT_FOUND&limit=2")),
                         ["GET /bulk/1000", "GET /bulk/999"])
        self.assertEqual(len(self.history("?reason=ALLOWED")), 3)
        self.assertEqual(self.history("?reason=ALLOWED&outcome=denied"), [])
        self.assertEqual(self.history("?reason=CERTIFICATE_REVOKED"), [])

    def test_username_does_not_match_entries_without_user(self):
        for user in ("admin@acme.test", "mtls@acme.test"):
            with self.subTest(username=user):
                self.assertEqual(self.history("?username=" + user), [])
                self.assertEqual(self.history(f"?username={user}&outcome=denied"), [])

    def test_bad_parameters(self):
        for query in ("?limit=0", "?limit=-1", "?limit=abc", "?limit=1.5", "?limit=10x", "?outcome=bogus",
                      "?limit=5&outcome=maybe"):
            with self.subTest(query=query):
                self.assert_error(admin(self.server, "GET", "/__admin/login-history" + query), 400,
                                  "INVALID_PARAMETER", query)

    def test_needs_admin_token(self):
        for token in (None, "not-the-token"):
            with self.subTest(token=token):
                self.assert_error(admin(self.server, "GET", "/__admin/login-history", token=token), 401,
                                  "INVALID_ADMIN_TOKEN", f"token {token!r}")


class HistoryMaxTests(HistoryMixin, ServerTestCase):
    server_args = ("--history-max", "5")

    def test_keeps_the_newest_and_counts_the_dropped(self):
        status, _, health = admin(self.server, "GET", "/__admin/health", token=None)
        self.assertEqual((status, health), (200, {"status": "ok", "historyDropped": 0}))
        self.assertEqual(get_statuses(self.server, [f"/max/{i}" for i in range(12)]), [404] * 12)
        # The query stores what is queued, trimming to 5 as it goes.
        entries = self.history()
        self.assertEqual([e["endpoint"] for e in entries], [f"GET /max/{i}" for i in range(11, 6, -1)])
        status, _, health = admin(self.server, "GET", "/__admin/health", token=None)
        self.assertEqual((status, health), (200, {"status": "ok", "historyDropped": 7}))
        # One more: one more dropped.
        res = self.curl("standard", "/max/12")
        self.assertEqual(self.response(res, 0).status, 404, self.explain(res))
        self.assertEqual([e["endpoint"] for e in self.history()], [f"GET /max/{i}" for i in range(12, 7, -1)])
        status, _, health = admin(self.server, "GET", "/__admin/health", token=None)
        self.assertEqual((status, health), (200, {"status": "ok", "historyDropped": 8}))


class RestartTests(HistoryMixin, unittest.TestCase):
    server = None

    def get(self, listener, path, cert=None):
        """The status of one curl request (None if there was no single answer)."""
        srv = self.server
        res = curl(srv.port(listener), path, ca=srv.ca, cert=cert and cert.chain, key=cert and cert.key)
        return res.responses[0].status if len(res.responses) == 1 else str(res)

    def test_entries_survive_a_restart(self):
        tmp = tempfile.mkdtemp(prefix="sfmtls-e2e-history-")
        self.addCleanup(shutil.rmtree, tmp, True)
        state = os.path.join(tmp, "state")
        self.server = first = Server(state_dir=state)
        try:
            demo = Cert(os.path.join(state, "clients", "demo-client"))
            self.assertEqual(self.get("mtls", "/services/data/", demo), 200)
            self.assertEqual(self.get("standard", "/before/restart"), 404)
            kept = self.history()
            self.assertEqual([e["endpoint"] for e in kept], ["GET /before/restart", "GET /services/data/"])
            self.assert_entry(kept[1], endpoint="GET /services/data/", outcome="allowed", reason="ALLOWED",
                              status="Success", certificate=cert_entry(demo))
            self.assertEqual(first.stop(), 0, first.describe())
        finally:
            first.cleanup()
        self.server = second = Server(state_dir=state)
        try:
            self.assertEqual(self.history(), kept)
            self.assertEqual(self.get("standard", "/after/restart"), 404)
            after = self.history()
            self.assertEqual(after[1:], kept)
            self.assertEqual(after[0]["endpoint"], "GET /after/restart")
            self.assertEqual(second.stop(), 0, second.describe())
        finally:
            second.cleanup()


if __name__ == "__main__":
    unittest.main()
