"""SIGHUP (SPEC section 8): the fixture and the trust store (--trust, --crl)
are read again, all or nothing, without dropping connections.

- NoGapTests: clients handshake in a loop while the server reloads ten times
  in a row; a trusted client is verified and an untrusted one gets the
  Certificate Error page every time, with no connection error.
- ReloadTests: one server on files of its own (a copy of the default fixture,
  a --trust bundle, a --crl file), which each test rewrites, then puts back
  (tearDown reloads the originals and resets the admin state):
  trust added and removed, a CRL that starts revoking, broken files that
  change nothing, fixture changes with runtime changes on top, and TLS
  session resumption refused across a reload.

Second CAs are made with `sfmtls-ca init`; CRLs with `openssl ca`
(sfmtls_e2e.make_crl).
"""

import json
import os
import re
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_reload.py`

from sfmtls_e2e import (STALE_CRL, KeepAlive, PkiServerTestCase, ServerTestCase, admin, issue_client, make_crl,
                        new_ca, org_fixture, poll_until, read_text, tls_context, write_text)

# The reload's outcome line on stderr (--log-format text).
OUTCOME_RE = re.compile(r"^\S+ (?:info|error) (reloaded|reload_failed): ", re.M)


def cert_problem(status, headers, body, reason):
    """What is wrong with a Certificate Error page for `reason` (None: nothing)."""
    if status != 400 or headers.get("x-sfmtls-reason") != reason or "<title>Certificate Error</title>" not in body:
        return f"expected the Certificate Error page for {reason}, got {status} {headers} {body[:200]!r}"
    return None


def verified_problem(status, body, cert):
    """What is wrong with a tls-info answer for a verified `cert` (None: nothing)."""
    if status != 200:
        return f"tls-info: {status} {body[:200]!r}"
    cc = json.loads(body).get("clientCertificate") or {}
    if cc.get("chainVerified") is not True or cc.get("fingerprintSha256") != cert.fingerprint:
        return f"tls-info: not verified: {body}"
    return None


class ReloadMixin:
    def sighup(self, expect="reloaded", timeout=30):
        """SIGHUP, then waits for the reload's outcome line; returns what the
        server logged meanwhile (which must hold `expect` and not the other)."""
        srv = self.server
        start = len(srv.stderr_text())
        srv.proc.send_signal(signal.SIGHUP)
        logged = poll_until(lambda: OUTCOME_RE.search(srv.stderr_text()[start:]) and srv.stderr_text()[start:],
                            timeout)
        self.assertTrue(logged, f"no reload outcome within {timeout} s\n{srv.describe()}")
        self.assertEqual([m.group(1) for m in OUTCOME_RE.finditer(logged)], [expect], logged)
        self.assertTrue(srv.alive(), srv.describe())
        return logged

    def connect(self, cert=None, tls=None, session=None, listener="mtls"):
        conn = KeepAlive(self.server.port(listener), tls_context(self.server.ca, cert, tls), session)
        self.addCleanup(conn.close)
        return conn

    def assert_verified(self, cert):
        conn = self.connect(cert)
        status, _, body = conn.get("/__admin/tls-info")
        self.assertIsNone(verified_problem(status, body, cert))
        status, _, body = conn.get("/services/data/")
        self.assertEqual(status, 200, body[:300])

    def assert_refused(self, cert, reason):
        """The Certificate Error page for `reason`, and tls-info saying why."""
        conn = self.connect(cert)
        self.assertIsNone(cert_problem(*conn.get("/services/data/"), reason))
        status, _, body = conn.get("/__admin/tls-info")
        self.assertEqual(status, 200, body)
        cc = json.loads(body)["clientCertificate"]
        self.assertEqual((cc["chainVerified"], cc["reason"], cc["fingerprintSha256"]),
                         (False, reason, cert.fingerprint), body)


class NoGapTests(ReloadMixin, ServerTestCase):
    """Ten reloads in a row while clients keep handshaking."""

    @classmethod
    def prepare(cls):
        cls.good = cls.server.issue("loop-good")
        cls.stranger = cls.server.issue("loop-stranger", "--untrusted")

    def test_client_authentication_never_lapses(self):
        port, ca = self.server.mtls_port, self.server.ca
        stop = threading.Event()
        counts = {"good": 0, "stranger": 0}
        failures = []

        def good(conn):
            status, _, body = conn.get("/__admin/tls-info")
            problem = verified_problem(status, body, self.good)
            if not problem and json.loads(body)["resumed"] is not False:
                problem = f"resumed: {body}"  # every round must be a full handshake
            return problem or (None if conn.get("/services/data/")[0] == 200 else "/services/data/ not 200")

        def stranger(conn):
            problem = cert_problem(*conn.get("/services/data/"), "CERTIFICATE_UNTRUSTED")
            if problem:
                return problem
            status, _, body = conn.get("/__admin/tls-info")
            cc = json.loads(body)["clientCertificate"] if status == 200 else None
            if not cc or cc["chainVerified"] is not False or cc["reason"] != "CERTIFICATE_UNTRUSTED":
                return f"tls-info: {status} {body}"
            return None

        def loop(name, cert, check):
            while not stop.is_set():
                # A new context each round: nothing to resume, every handshake is full.
                conn = KeepAlive(port, tls_context(ca, cert))
                try:
                    problem = check(conn)
                except Exception as e:  # a connection error is a failure too
                    problem = f"{type(e).__name__}: {e}"
                finally:
                    conn.close()
                counts[name] += 1
                if problem:
                    failures.append(f"{name} round {counts[name]}: {problem}")

        threads = [threading.Thread(target=loop, args=("good", self.good, good)),
                   threading.Thread(target=loop, args=("stranger", self.stranger, stranger))]
        for t in threads:
            t.start()
        try:
            self.assertTrue(poll_until(lambda: min(counts.values()) >= 2, 30), counts)
            at_first = dict(counts)
            for _ in range(10):
                self.sighup()
            during = {k: counts[k] - at_first[k] for k in counts}
            at_last = dict(counts)
            self.assertTrue(poll_until(lambda: all(counts[k] >= at_last[k] + 2 for k in counts), 30), counts)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(failures, [], f"{len(failures)} failure(s); rounds: {counts}\n{self.server.describe()}")
        # The loops did run while the server reloaded.
        self.assertTrue(all(n >= 2 for n in during.values()), f"rounds during the reloads: {during}")
        self.assertEqual(self.server.stderr_text().count(" reloaded: "), 10)


class ReloadTests(ReloadMixin, PkiServerTestCase):
    """One server on files that the tests rewrite: FX (the fixture), TRUST
    (--trust: the decoy CA's root), CRL (--crl: the crl CA's intermediate's
    CRL, revoking nothing). The crl CA is trusted by a second --trust."""

    @classmethod
    def build_pki(cls, pki):
        cls.other, cls.decoy, cls.crlca = (new_ca(pki, n) for n in ("other", "decoy", "crlca"))
        cls.other_client = issue_client(cls.other, pki, "other-client")
        cls.decoy_client = issue_client(cls.decoy, pki, "decoy-client")
        cls.crl_victim = issue_client(cls.crlca, pki, "crl-victim")
        cls.crl_sibling = issue_client(cls.crlca, pki, "crl-sibling")
        crl_args = (os.path.join(cls.crlca, "intermediate.pem"), os.path.join(cls.crlca, "intermediate.key"))
        cls.crl_empty = make_crl(os.path.join(pki, "crl-empty"), *crl_args, [])
        cls.crl_revoking = make_crl(os.path.join(pki, "crl-revoking"), *crl_args, [cls.crl_victim.crt])
        # Past its nextUpdate: wolfSSL would take it as no CRL at all.
        cls.crl_stale = make_crl(os.path.join(pki, "crl-stale"), *crl_args, [], *STALE_CRL)

        cls.fx_dir = os.path.join(pki, "fixture")
        os.makedirs(cls.fx_dir)
        cls.fx = os.path.join(cls.fx_dir, "org.json")
        cls.trust = os.path.join(pki, "trust.pem")
        cls.crl = os.path.join(pki, "crl.pem")
        cls.originals = {cls.fx: json.dumps(org_fixture(), indent=2) + "\n",
                         cls.trust: read_text(os.path.join(cls.decoy, "ca.pem")), cls.crl: read_text(cls.crl_empty)}
        for path, text in cls.originals.items():
            write_text(path, text)
        return ("--fixtures", cls.fx, "--trust", cls.trust, "--trust", os.path.join(cls.crlca, "ca.pem"),
                "--crl", cls.crl)

    @classmethod
    def prepare(cls):
        cls.demo = cls.server.issue("dev-client")

    def setUp(self):
        self.addCleanup(self.restore)

    def restore(self):
        """The original files, reloaded, and the admin state reset."""
        changed = [p for p, text in self.originals.items() if read_text(p) != text]
        for path in changed:
            write_text(path, self.originals[path])
        if changed:
            self.sighup()
        status, _, data = admin(self.server, "POST", "/__admin/reset")
        self.assertEqual(status, 204, data)

    def fixture(self):
        return json.loads(self.originals[self.fx])

    def write_fixture(self, org):
        write_text(self.fx, json.dumps(org, indent=2))

    def user(self, name):
        return admin(self.server, "GET", f"/__admin/users/{name}")

    # -- trust and CRLs

    def test_trust_added_then_removed(self):
        self.assert_refused(self.other_client, "CERTIFICATE_UNTRUSTED")
        self.assert_verified(self.decoy_client)
        # Open before the reload, kept alive across it.
        kept = self.connect(self.other_client)
        self.assertIsNone(cert_problem(*kept.get("/services/data/"), "CERTIFICATE_UNTRUSTED"))
        kept_sock = kept.sock

        write_text(self.trust, read_text(os.path.join(self.other, "ca.pem")))
        logged = self.sighup()
        self.assertIn("3 trust anchor(s)", logged)  # the dev CA, other, crlca
        self.assert_verified(self.other_client)
        self.assert_refused(self.decoy_client, "CERTIFICATE_UNTRUSTED")

        # The connection from before keeps the outcome of its handshake.
        self.assertIsNone(cert_problem(*kept.get("/services/data/"), "CERTIFICATE_UNTRUSTED"))
        status, _, body = kept.get("/__admin/tls-info")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["clientCertificate"]["reason"], "CERTIFICATE_UNTRUSTED", body)
        self.assertIs(kept.sock, kept_sock, "the kept connection was reopened")

        write_text(self.trust, self.originals[self.trust])
        self.sighup()
        self.assert_refused(self.other_client, "CERTIFICATE_UNTRUSTED")
        self.assert_verified(self.decoy_client)

    def test_crl_added_by_reload(self):
        self.assert_verified(self.crl_victim)
        write_text(self.crl, read_text(self.crl_revoking))
        self.assertIn("1 CRL(s)", self.sighup())
        self.assert_refused(self.crl_victim, "CERTIFICATE_REVOKED")
        self.assert_verified(self.crl_sibling)
        self.assert_verified(self.demo)
        # And gone again with the next CRL.
        write_text(self.crl, self.originals[self.crl])
        self.sighup()
        self.assert_verified(self.crl_victim)

    # -- failed reloads

    def assert_unchanged(self, users):
        """The server as it started: users, trust, CRL, TLS."""
        status, _, now = admin(self.server, "GET", "/__admin/users")
        self.assertEqual((status, now), (200, users))
        self.assert_verified(self.demo)
        self.assert_verified(self.decoy_client)
        self.assert_verified(self.crl_victim)
        self.assert_refused(self.other_client, "CERTIFICATE_UNTRUSTED")
        status, _, health = admin(self.server, "GET", "/__admin/health", token=None)
        self.assertEqual(status, 200, health)
        self.assertEqual(health, {"status": "ok", "historyDropped": 0})

    def test_broken_fixture_changes_nothing(self):
        status, _, users = admin(self.server, "GET", "/__admin/users")
        self.assertEqual(status, 200, users)
        # The good changes made with it must wait, too: all or nothing.
        write_text(self.trust, self.originals[self.trust] + read_text(os.path.join(self.other, "ca.pem")))
        write_text(self.crl, read_text(self.crl_revoking))

        write_text(self.fx, "{not json")
        logged = self.sighup("reload_failed")
        self.assertRegex(logged, re.escape(self.fx) + r": line 1, column \d+: ", "the JSON parser's problem")
        self.assert_unchanged(users)

        org = self.fixture()
        org["users"].append({"username": "bad@acme.test", "password": "x", "profile": "No Such Profile"})
        self.write_fixture(org)
        logged = self.sighup("reload_failed")
        self.assertRegex(logged, re.escape(self.fx) + r": \$\.users\[5\]\.profile \(line \d+\): unknown profile")
        self.assert_unchanged(users)

        # Fixed: now everything applies at once.
        write_text(self.fx, self.originals[self.fx])
        self.sighup()
        self.assert_verified(self.other_client)
        self.assert_refused(self.crl_victim, "CERTIFICATE_REVOKED")

    def test_broken_trust_store_changes_nothing(self):
        status, _, users = admin(self.server, "GET", "/__admin/users")
        self.assertEqual(status, 200, users)
        org = self.fixture()
        org["users"].append({"username": "new@acme.test", "password": "New-123", "profile": "Standard User"})
        self.write_fixture(org)
        for label, path, text, needle in (
                ("garbage --trust", self.trust, "this is not a certificate\n", "--trust " + self.trust),
                ("missing --trust", self.trust, None, "--trust " + self.trust),
                ("garbage --crl", self.crl, "this is not a CRL\n", "--crl " + self.crl),
                ("missing --crl", self.crl, None, "--crl " + self.crl),
                ("stale --crl", self.crl, read_text(self.crl_stale),
                 "--crl " + self.crl + ": its nextUpdate has passed")):
            with self.subTest(label):
                if text is None:
                    os.remove(path)
                else:
                    write_text(path, text)
                try:
                    logged = self.sighup("reload_failed")
                    self.assertIn(needle, logged)
                    self.assertEqual(self.user("new@acme.test")[0], 404)
                    self.assert_error(self.user("new@acme.test"), 404, "NOT_FOUND", label)
                    self.assert_unchanged(users)
                finally:
                    write_text(path, self.originals[path])
        self.sighup()
        status, _, user = self.user("new@acme.test")
        self.assertEqual(status, 200, user)

    # -- fixture changes

    def test_fixture_change_applies(self):
        org = self.fixture()
        org["users"].append({"username": "new@acme.test", "password": "New-123", "profile": "Standard User",
                             "permissionSets": ["Enforce_mTLS"]})
        org["users"] = [u for u in org["users"] if u["username"] != "user@acme.test"]
        self.write_fixture(org)
        self.assertIn("(5 users", self.sighup())
        status, _, user = self.user("new@acme.test")
        self.assertEqual(status, 200, user)
        self.assertRegex(user.pop("id"), r"^005[0-9A-Za-z]{15}$")
        self.assertEqual(user, {"username": "new@acme.test", "profile": "Standard User",
                                "permissionSets": ["Enforce_mTLS"],
                                "permissions": ["ApiEnabled", "EnforceMutualAuthentication"], "active": True})
        status, _, data = self.user("user@acme.test")
        self.assertEqual(status, 404, data)
        status, _, users = admin(self.server, "GET", "/__admin/users")
        self.assertEqual(status, 200, users)
        self.assertEqual([u["username"] for u in users],
                         ["admin@acme.test", "mtls@acme.test", "api@acme.test", "noapi@acme.test",
                          "new@acme.test"])

    def test_runtime_changes_survive_reload(self):
        uploaded = self.server.issue("uploaded-before-reload")
        status, _, entry = admin(self.server, "POST", "/__admin/mutual-auth-certificates",
                                 {"label": "before reload", "pem": read_text(uploaded.chain)})
        self.assertEqual(status, 201, entry)
        status, _, patched = admin(self.server, "PATCH", "/__admin/users/api@acme.test",
                                   {"permissionSets": ["Enforce_mTLS"]})
        self.assertEqual(status, 200, patched)

        # A permission set that a later fixture drops, and a change naming it.
        org = self.fixture()
        org["permissionSets"].append({"name": "Extra_Set", "label": "Extra", "permissions": ["ViewSetup"]})
        self.write_fixture(org)
        self.sighup()
        status, _, user = admin(self.server, "PATCH", "/__admin/users/user@acme.test",
                                {"permissionSets": ["Extra_Set"], "active": False})
        self.assertEqual(status, 200, user)
        self.assertEqual((user["permissions"], user["active"]), (["ApiEnabled", "ViewSetup"], False), user)

        write_text(self.fx, self.originals[self.fx])
        logged = self.sighup()
        self.assertRegex(logged, r"warn user_change_dropped: .*user@acme\.test")
        self.assertNotRegex(logged, r"user_change_dropped: .*api@acme\.test")

        status, _, still = admin(self.server, "GET", "/__admin/mutual-auth-certificates/" + entry["id"])
        self.assertEqual((status, still), (200, entry))
        status, _, user = self.user("api@acme.test")
        self.assertEqual((status, user), (200, patched))
        status, _, user = self.user("user@acme.test")
        self.assertEqual(status, 200, user)
        self.assertEqual((user["permissionSets"], user["permissions"], user["active"]), ([], ["ApiEnabled"], True),
                         user)

    # -- resumption

    def test_sessions_are_not_resumed_across_a_reload(self):
        for tls in ("1.3", "1.2"):
            with self.subTest(tls=tls):
                ctx = tls_context(self.server.ca, self.demo, tls)

                def handshake(session=None):
                    conn = KeepAlive(self.server.mtls_port, ctx, session)
                    self.addCleanup(conn.close)
                    status, _, body = conn.get("/__admin/tls-info")
                    self.assertIsNone(verified_problem(status, body, self.demo))
                    info = json.loads(body)
                    self.assertEqual(info["tlsVersion"], "TLSv" + tls, body)
                    self.assertIs(info["resumed"], conn.sock.session_reused, body)
                    self.assert_cert_facts(info["clientCertificate"], self.demo, body, chain_length=2, reason=None)
                    return conn.sock.session_reused, conn.sock.session

                reused, session = handshake()
                self.assertFalse(reused)
                self.assertEqual(handshake(session)[0], True, "no resumption before the reload")

                # A failed reload keeps the ticket key: the session still resumes.
                write_text(self.fx, "[]")
                self.sighup("reload_failed")
                write_text(self.fx, self.originals[self.fx])
                self.assertEqual(handshake(session)[0], True, "not resumed after a failed reload")

                self.sighup()
                self.assertIs(handshake(session)[0], False, "a session from before the reload was resumed")
                # (Under TLS 1.2 that refused ticket's full handshake brings no
                # new one: wolfSSL 5.5.4 issues none after a rejected ticket.)
                reused, fresh = handshake()
                self.assertIs(handshake(fresh)[0], True, "a session from after the reload is not resumed")



if __name__ == "__main__":
    unittest.main()
