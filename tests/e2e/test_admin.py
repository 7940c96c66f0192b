"""The admin API and its persistence (SPEC sections 6 and 7).

Uploads (every error code, the order of the checks, a good chain), users,
the admin token on every protected path, restarts (SIGTERM and kill -9),
--ephemeral, --reset, POST /__admin/reset, and a database from a newer schema.
"""

import base64
import hashlib
import http.client
import json
import os
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_admin.py`

from sfmtls_e2e import (CA_BIN, E2EAsserts, Server, ServerTestCase, admin, admin_token, issue_client, org_fixture,
                        parse_iso_utc, pem_blocks, run, tls_context, write_text)
from sfmtls_e2e import read_text as read

CERTS = "/__admin/mutual-auth-certificates"
USERS = "/__admin/users"
ENTRY_KEYS = {"id", "label", "subject", "issuer", "serialNumber", "expirationDate", "fingerprintSha256",
              "chainLength", "preloaded"}
USER_KEYS = {"username", "id", "profile", "permissionSets", "permissions", "active"}
MIB = 1024 * 1024

# The fixture's users as GET /__admin/users shows them (ids aside), in fixture order.
FIXTURE_USERS = [
    ("admin@acme.test", "System Administrator", [], ["ApiEnabled", "CustomizeApplication", "ViewSetup"]),
    ("mtls@acme.test", "Integration", ["Enforce_mTLS"], ["ApiEnabled", "ApiUserOnly", "EnforceMutualAuthentication"]),
    ("api@acme.test", "Integration", [], ["ApiEnabled", "ApiUserOnly"]),
    ("user@acme.test", "Standard User", [], ["ApiEnabled"]),
    ("noapi@acme.test", "Read Only", [], ["ViewSetup"]),
]


def sf_checksum(id15):
    """The 3 characters Salesforce appends to a 15-character id."""
    out = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return out


class AdminAsserts(E2EAsserts):
    """Helpers for test cases that talk to one server (self.server)."""

    def call(self, method, path, body=None, **kw):
        return admin(self.server, method, path, body, **kw)

    def assert_newest_entry(self, endpoint, what=""):
        """The login history answers 200 at once, its newest entry for `endpoint`."""
        st, _, history = self.call("GET", "/__admin/login-history?limit=1")
        self.assertEqual(st, 200, history)
        self.assertIsInstance(history, list, history)
        self.assertEqual([e["endpoint"] for e in history], [endpoint], f"{what}: {history}")

    def cert_list(self, server=None):
        st, _, data = admin(server or self.server, "GET", CERTS)
        self.assertEqual(st, 200, data)
        self.assertIsInstance(data, list)
        return data

    def user_list(self, server=None):
        st, _, data = admin(server or self.server, "GET", USERS)
        self.assertEqual(st, 200, data)
        return data

    def upload(self, label, pem, server=None):
        """A successful upload: the entry."""
        st, headers, data = admin(server or self.server, "POST", CERTS, {"label": label, "pem": pem})
        self.assertEqual(st, 201, f"upload {label!r}: {data}")
        self.assertEqual(set(data), ENTRY_KEYS, data)
        self.assertEqual(headers.get("location"), f"{CERTS}/{data['id']}")
        return data

    def assert_upload_rejected(self, body, status, code, what=""):
        """POST body: the error, and the list as it was."""
        before = self.cert_list()
        self.assert_error(self.call("POST", CERTS, body), status, code, what)
        self.assertEqual(self.cert_list(), before, f"{what}: a rejected upload changed the list")

    def demo_entry(self, server=None):
        entries = [e for e in self.cert_list(server) if e["label"] == "demo"]
        return entries[0] if entries else None


# ---------------------------------------------------------------- uploads: errors


class UploadErrorTests(AdminAsserts, ServerTestCase):
    """Every error code of an upload, each leaving the list unchanged."""

    @classmethod
    def prepare(cls):
        s = cls.server
        cls.good = s.issue("good")
        cls.self_signed = s.issue("selfsigned", "--self-signed")
        cls.expired = s.issue("expired", "--expired")
        cls.not_yet = s.issue("notyet", "--not-yet-valid")
        cls.untrusted = s.issue("untrusted", "--untrusted")
        # A second CA that the server does not trust, for certificates with two faults.
        other = os.path.join(s.tmp, "other-ca")
        run([CA_BIN, "init", "--dir", other])
        cls.other_expired = issue_client(other, s.tmp, "other-expired", "--expired")
        cls.other_not_yet = issue_client(other, s.tmp, "other-notyet", "--not-yet-valid")

    def test_invalid_label(self):
        pem = read(self.good.chain)
        for body, what in (({"pem": pem}, "missing label"),
                           ({"label": "", "pem": pem}, "empty label"),
                           ({"label": "x" * 65, "pem": pem}, "65 characters"),
                           ({"label": "\u00e9" * 65, "pem": pem}, "65 two-byte characters"),
                           ({"label": 42, "pem": pem}, "a number"),
                           ({"label": None, "pem": pem}, "null")):
            with self.subTest(what):
                self.assert_upload_rejected(body, 400, "INVALID_LABEL", what)

    def test_label_of_64_characters_is_accepted(self):
        for name, label in (("label-ascii", "L" * 64), ("label-utf8", "\u00e9" * 64)):
            with self.subTest(label=label):
                cert = self.server.issue(name)
                entry = self.upload(label, read(cert.chain))
                self.assertEqual(entry["label"], label)
                self.assertIn(entry, self.cert_list())

    def test_certificate_too_large_over_1_mib(self):
        pem = read(self.good.chain)
        padded = pem + "#" * (MIB + 1 - len(pem))
        self.assertEqual(len(padded), MIB + 1)
        self.assert_upload_rejected({"label": "big", "pem": padded}, 413, "CERTIFICATE_TOO_LARGE", "1 MiB + 1")
        # Much bigger, and nothing but certificates.
        blocks = read(self.good.crt) * (MIB // len(read(self.good.crt)) + 1)
        self.assert_upload_rejected({"label": "big", "pem": blocks}, 413, "CERTIFICATE_TOO_LARGE", "> 1 MiB")

    def test_exactly_1_mib_of_pem_is_accepted(self):
        cert = self.server.issue("one-mib")
        pem = read(cert.chain)
        entry = self.upload("one MiB", pem + "#" * (MIB - len(pem)))
        self.assertEqual(entry["fingerprintSha256"], cert.fingerprint)

    def test_certificate_too_large_11_certificates(self):
        leaf, inter = pem_blocks(read(self.good.chain))
        self.assert_upload_rejected({"label": "many", "pem": leaf + inter * 10}, 413, "CERTIFICATE_TOO_LARGE",
                                    "11 certificates")

    def test_10_certificates_are_not_too_large(self):
        cert = self.server.issue("ten")
        leaf, inter = pem_blocks(read(cert.chain))
        entry = self.upload("ten", leaf + inter * 9)
        self.assertEqual(entry["fingerprintSha256"], cert.fingerprint)

    def test_private_key_not_allowed(self):
        pem, key = read(self.good.chain), read(self.good.key)
        traditional = run(["openssl", "ec", "-in", self.good.key])
        encrypted = run(["openssl", "pkcs8", "-topk8", "-in", self.good.key, "-passout", "pass:secret-1",
                         "-v2", "aes-256-cbc"])
        self.assertIn("EC PRIVATE KEY", traditional)
        self.assertIn("ENCRYPTED PRIVATE KEY", encrypted)
        for text, what in ((pem + key, "certificate then PKCS#8 key"), (key + pem, "key first"),
                           (pem + traditional, "traditional EC key"), (pem + encrypted, "encrypted key"),
                           (key, "the key alone")):
            with self.subTest(what):
                self.assert_upload_rejected({"label": "k", "pem": text}, 400, "PRIVATE_KEY_NOT_ALLOWED", what)

    def test_malformed_certificate(self):
        lines = read(self.good.crt).splitlines(keepends=True)
        truncated = "".join(lines[:4] + lines[-1:])  # BEGIN, three base64 lines, END
        unclosed = "".join(lines[:-1])  # no END line
        bad_base64 = lines[0] + "!!!! not base64 ????\n" + lines[-1]
        leaf = pem_blocks(read(self.good.chain))[0]
        for text, what in (("hello, world", "garbage"), ("", "empty"), (truncated, "truncated base64 block"),
                           (unclosed, "no END line"), (bad_base64, "bad base64"),
                           (leaf + truncated, "good leaf, truncated second block")):
            with self.subTest(what):
                self.assert_upload_rejected({"label": "m", "pem": text}, 400, "MALFORMED_CERTIFICATE", what)
        self.assert_upload_rejected({"label": "m"}, 400, "MALFORMED_CERTIFICATE", "no pem field")

    def test_self_signed_certificate(self):
        self.assert_upload_rejected({"label": "s", "pem": read(self.self_signed.chain)}, 400,
                                    "SELF_SIGNED_CERTIFICATE")

    def test_untrusted_certificate(self):
        self.assert_upload_rejected({"label": "u", "pem": read(self.untrusted.chain)}, 400, "UNTRUSTED_CERTIFICATE",
                                    "untrusted root")
        self.assert_upload_rejected({"label": "u", "pem": read(self.good.crt)}, 400, "UNTRUSTED_CERTIFICATE",
                                    "leaf without its intermediate")

    def test_certificate_expired(self):
        self.assert_upload_rejected({"label": "e", "pem": read(self.expired.chain)}, 400, "CERTIFICATE_EXPIRED")

    def test_certificate_not_yet_valid(self):
        self.assert_upload_rejected({"label": "n", "pem": read(self.not_yet.chain)}, 400,
                                    "CERTIFICATE_NOT_YET_VALID")

    def test_duplicate_certificate(self):
        cert = self.server.issue("dup")
        pem = read(cert.chain)
        first = self.upload("dup", pem)
        for text, label, what in ((pem, "dup", "same text"), (pem, "other label", "other label"),
                                  (pem.replace("\n", "\r\n"), "dup", "CRLF line ends")):
            with self.subTest(what):
                self.assert_upload_rejected({"label": label, "pem": text}, 409, "DUPLICATE_CERTIFICATE", what)
        self.assertEqual([e for e in self.cert_list() if e["fingerprintSha256"] == cert.fingerprint], [first])

    def test_duplicate_of_the_preloaded_demo(self):
        demo = read(os.path.join(self.server.state, "clients", "demo-client.chain.pem"))
        self.assertIsNotNone(self.demo_entry())
        self.assert_upload_rejected({"label": "demo again", "pem": demo}, 409, "DUPLICATE_CERTIFICATE")

    def test_order_of_checks(self):
        ss = read(self.self_signed.chain)
        key = read(self.self_signed.key)
        leaf, inter = pem_blocks(read(self.good.chain))
        eleven = leaf + inter * 10
        cases = (
            ({"label": "", "pem": "garbage"}, 400, "INVALID_LABEL", "bad label + garbage PEM"),
            ({"pem": ss + key}, 400, "INVALID_LABEL", "no label + key"),
            ({"label": "x" * 65, "pem": eleven}, 400, "INVALID_LABEL", "long label + 11 certificates"),
            ({"label": "o", "pem": eleven + key}, 413, "CERTIFICATE_TOO_LARGE", "11 certificates + key"),
            ({"label": "o", "pem": ss + key}, 400, "PRIVATE_KEY_NOT_ALLOWED", "self-signed + key"),
            ({"label": "o", "pem": "garbage\n" + key}, 400, "PRIVATE_KEY_NOT_ALLOWED", "garbage + key"),
            ({"label": "o", "pem": read(self.expired.chain) + key}, 400, "PRIVATE_KEY_NOT_ALLOWED",
             "expired + key"),
            ({"label": "o", "pem": ss + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, 400,
             "MALFORMED_CERTIFICATE", "self-signed + a broken block"),
            ({"label": "o", "pem": read(self.other_expired.chain)}, 400, "UNTRUSTED_CERTIFICATE",
             "untrusted + expired"),
            ({"label": "o", "pem": read(self.other_not_yet.chain)}, 400, "UNTRUSTED_CERTIFICATE",
             "untrusted + not yet valid"),
        )
        for body, status, code, what in cases:
            with self.subTest(what):
                self.assert_upload_rejected(body, status, code, what)

    def test_json_parser_error(self):
        for raw, what in (('{"label": "x", "pem": ', "truncated JSON"), ("not json", "not JSON"),
                          ("", "empty body"), ('["label", "pem"]', "an array"), ('"text"', "a string"),
                          ('{"label": "a", "label": "b", "pem": ""}', "a repeated key")):
            with self.subTest(what):
                self.assert_upload_rejected(raw, 400, "JSON_PARSER_ERROR", what)

    def test_invalid_field(self):
        pem = read(self.good.chain)
        for body, what in (({"label": "x", "pem": pem, "extra": 1}, "unknown key"),
                           ({"label": "x", "certificate": pem}, "pem under another name"),
                           ({"Label": "x", "pem": pem}, "key in the wrong case")):
            with self.subTest(what):
                self.assert_upload_rejected(body, 400, "INVALID_FIELD", what)

    def test_request_too_large(self):
        # Exactly 2 MiB is still read (then its PEM is too large); one byte more is not.
        for size, status, code in ((2 * MIB, 413, "CERTIFICATE_TOO_LARGE"),
                                   (2 * MIB + 1, 413, "REQUEST_TOO_LARGE"),
                                   (3 * MIB, 413, "REQUEST_TOO_LARGE")):
            with self.subTest(size=size):
                head = b'{"label":"big","pem":"'
                body = head + b"A" * (size - len(head) - 2) + b'"}'
                self.assertEqual(len(body), size)
                self.assert_upload_rejected(body, status, code, f"{size} bytes")

    def test_request_too_large_chunked(self):
        body = b'{"label":"big","pem":"' + b"A" * (2 * MIB) + b'"}'
        chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        before = self.cert_list()
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.std_port, timeout=20,
                                           context=tls_context(self.server.ca))
        try:
            conn.request("POST", CERTS, body=iter(chunks), encode_chunked=True,
                         headers={"Authorization": "Bearer " + admin_token(self.server),
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            data = json.loads(r.read())
            headers = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        self.assertEqual(r.status, 413, data)
        self.assertEqual(data[0]["errorCode"], "REQUEST_TOO_LARGE", data)
        self.assert_error((r.status, headers, data), 413, "REQUEST_TOO_LARGE", "a chunked body over 2 MiB")
        self.assertEqual(self.cert_list(), before)


class MutualAuthDisabledTests(AdminAsserts, unittest.TestCase):

    def test_upload_when_mutual_authentication_is_off(self):
        with tempfile.TemporaryDirectory() as tmp:
            org = org_fixture()
            org["organization"]["mutualAuthentication"] = False
            fixture = os.path.join(tmp, "org.json")
            write_text(fixture, json.dumps(org))
            self.server = Server("--fixtures", fixture)
            try:
                cert = self.server.issue("off")
                before = self.cert_list()
                for body, what in (({"label": "off", "pem": read(cert.chain)}, "a good certificate"),
                                   ({"label": "", "pem": "garbage"}, "bad label and PEM too")):
                    with self.subTest(what):
                        self.assert_upload_rejected(body, 400, "MUTUAL_AUTHENTICATION_NOT_ENABLED", what)
                self.assertEqual(self.cert_list(), before)
            finally:
                self.server.cleanup()


# ---------------------------------------------------------------- uploads: success


class UploadChainTests(AdminAsserts, ServerTestCase):

    def test_upload_leaf_and_chain(self):
        cert = self.server.issue("chain-client")
        pem = read(cert.chain)
        self.assertEqual(len(pem_blocks(pem)), 2)
        before = self.cert_list()
        entry = self.upload("partner chain", pem)
        self.assertEqual(entry["label"], "partner chain")
        self.assertEqual(entry["chainLength"], 2)
        self.assertIs(entry["preloaded"], False)
        self.assertEqual(entry["subject"], cert.subject)
        self.assertEqual(entry["issuer"], cert.issuer)
        self.assertRegex(entry["serialNumber"], r"^[0-9A-F]+$")
        self.assertEqual(int(entry["serialNumber"], 16), int(cert.serial, 16))
        self.assertEqual(entry["fingerprintSha256"], cert.fingerprint)
        self.assertEqual(parse_iso_utc(entry["expirationDate"]), cert.not_after, entry["expirationDate"])
        eid = entry["id"]
        self.assertRegex(eid, r"^0P1[0-9A-Za-z]{15}$")
        self.assertEqual(eid[15:], sf_checksum(eid[:15]), "the 18-character id's checksum")

        for ident in (eid, eid[:15]):
            with self.subTest(id=ident):
                st, _, data = self.call("GET", f"{CERTS}/{ident}")
                self.assertEqual((st, data), (200, entry))
        self.assertEqual(self.cert_list(), before + [entry], "the list: preloads, then uploads in order")

        # The certificate on the mTLS listener.
        st, _, info = self.call("GET", "/__admin/tls-info", token=None, listener="mtls", cert=cert)
        self.assertEqual(st, 200, info)
        self.assertEqual(info["listener"], "mtls")
        cc = info["clientCertificate"]
        self.assertEqual(cc["fingerprintSha256"], entry["fingerprintSha256"], info)
        self.assertEqual(cc["subject"], entry["subject"], info)
        self.assertIs(cc["chainVerified"], True, info)

    def test_leaf_of_an_uploaded_chain_is_matched_whatever_the_chain(self):
        # A second upload of the leaf with a different chain text is the same certificate.
        cert = self.server.issue("second")
        leaf, inter = pem_blocks(read(cert.chain))
        self.upload("second", leaf + inter)
        self.assert_upload_rejected({"label": "second", "pem": leaf + inter + inter}, 409, "DUPLICATE_CERTIFICATE")

    def test_unknown_id(self):
        for ident in ("0P1000000000000AAA", "0P1000000000000", "nope", "0" * 40):
            with self.subTest(id=ident):
                self.assert_error(self.call("GET", f"{CERTS}/{ident}"), 404, "NOT_FOUND")
                before = self.cert_list()
                self.assert_error(self.call("DELETE", f"{CERTS}/{ident}"), 404, "NOT_FOUND")
                self.assertEqual(self.cert_list(), before)

    def test_delete_by_15_character_id(self):
        cert = self.server.issue("delete-me")
        entry = self.upload("delete me", read(cert.chain))
        st, _, data = self.call("DELETE", f"{CERTS}/{entry['id'][:15]}")
        self.assertEqual((st, data), (204, None))
        self.assertNotIn(entry, self.cert_list())
        self.assert_error(self.call("GET", f"{CERTS}/{entry['id']}"), 404, "NOT_FOUND")
        self.assert_error(self.call("DELETE", f"{CERTS}/{entry['id']}"), 404, "NOT_FOUND", "second delete")


# ---------------------------------------------------------------- persistence


class StateDirCase(AdminAsserts, unittest.TestCase):
    """Tests that restart servers on one state dir (self.state)."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sfmtls-e2e-admin-")
        self.state = os.path.join(self._tmp.name, "state")
        self.server = None
        self._servers = []

    def tearDown(self):
        for s in self._servers:
            s.cleanup()
        self._tmp.cleanup()

    def start(self, *args, env=None):
        self.server = Server(*args, env=env, state_dir=self.state)
        self._servers.append(self.server)
        return self.server

    def restart(self, *args, env=None):
        rc = self.server.stop()
        self.assertEqual(rc, 0, self.server.describe())
        return self.start(*args, env=env)

    def issue(self, name):
        """A client certificate from the state dir's CA, outside any server's tmp."""
        return issue_client(self.state, self._tmp.name, name)


class PersistenceTests(StateDirCase):

    def test_upload_survives_sigterm_restart(self):
        self.start()
        entry = self.upload("kept", read(self.issue("kept").chain))
        listed = self.cert_list()
        self.restart()
        self.assertEqual(self.cert_list(), listed)
        st, _, data = self.call("GET", f"{CERTS}/{entry['id']}")
        self.assertEqual((st, data), (200, entry))

    def test_upload_survives_kill_9_right_after_201(self):
        s = self.start()
        cert = self.issue("killed")
        entry = self.upload("killed", read(cert.chain))
        s.proc.kill()  # SIGKILL at once: the 201 promised it is durable
        s.proc.wait(10)
        self.start()
        self.assertIn(entry, self.cert_list())
        self.assert_error(self.call("POST", CERTS, {"label": "again", "pem": read(cert.chain)}), 409,
                          "DUPLICATE_CERTIFICATE")

    def test_deleted_upload_is_gone_after_restart(self):
        self.start()
        entry = self.upload("doomed", read(self.issue("doomed").chain))
        st, _, _ = self.call("DELETE", f"{CERTS}/{entry['id']}")
        self.assertEqual(st, 204)
        listed = self.cert_list()
        self.restart()
        self.assertEqual(self.cert_list(), listed)
        self.assertNotIn(entry["id"], [e["id"] for e in self.cert_list()])
        self.assert_error(self.call("GET", f"{CERTS}/{entry['id']}"), 404, "NOT_FOUND")

    def test_deleted_demo_stays_deleted_and_can_be_uploaded_again(self):
        self.start()
        demo = self.demo_entry()
        self.assertIsNotNone(demo)
        self.assertIs(demo["preloaded"], True)
        st, _, body = self.call("DELETE", f"{CERTS}/{demo['id']}")
        self.assertEqual((st, body), (204, None))
        self.assertIsNone(self.demo_entry())
        self.restart()
        self.assertIsNone(self.demo_entry(), "the deleted preload came back after a restart")
        self.assertNotIn(demo["fingerprintSha256"], [e["fingerprintSha256"] for e in self.cert_list()])

        # Its PEM uploaded again: a 201, an upload (not a preload), kept across a restart, once.
        pem = read(os.path.join(self.state, "clients", "demo-client.chain.pem"))
        again = self.upload("demo again", pem)
        self.assertEqual(again["fingerprintSha256"], demo["fingerprintSha256"])
        self.assertIs(again["preloaded"], False)
        self.restart()
        same_fp = [e for e in self.cert_list() if e["fingerprintSha256"] == demo["fingerprintSha256"]]
        self.assertEqual(same_fp, [again], "the upload as acknowledged, not the preload")
        # Deleted once more: gone, and still gone after a restart.
        self.assertEqual(self.call("DELETE", f"{CERTS}/{again['id']}")[0], 204)
        self.restart()
        self.assertNotIn(demo["fingerprintSha256"], [e["fingerprintSha256"] for e in self.cert_list()])

    def test_user_change_survives_restart(self):
        self.start()
        st, _, user = self.call("PATCH", f"{USERS}/mtls@acme.test",
                                {"profile": "System Administrator", "permissionSets": [], "active": False})
        self.assertEqual(st, 200, user)
        users = self.user_list()
        self.restart()
        self.assertEqual(self.user_list(), users)
        st, _, again = self.call("GET", f"{USERS}/mtls@acme.test")
        self.assertEqual((st, again), (200, user))
        self.assertEqual(user["profile"], "System Administrator")
        self.assertIs(user["active"], False)

    def test_ephemeral_forgets_uploads_on_restart(self):
        self.start("--ephemeral")
        fixture_list = self.cert_list()
        entry = self.upload("fleeting", read(self.issue("fleeting").chain))
        st, _, _ = self.call("PATCH", f"{USERS}/api@acme.test", {"active": False})
        self.assertEqual(st, 200)
        self.assertIn(entry, self.cert_list())
        self.assertTrue(os.path.exists(os.path.join(self.state, "admin-token")), "files are still written")
        self.restart("--ephemeral")
        self.assertEqual(self.cert_list(), fixture_list)
        self.assertNotIn(entry["fingerprintSha256"], [e["fingerprintSha256"] for e in self.cert_list()])
        st, _, user = self.call("GET", f"{USERS}/api@acme.test")
        self.assertEqual(st, 200, user)
        self.assertIs(user["active"], True)

    def test_reset_flag_at_start(self):
        self.start()
        fixture_certs, fixture_users = self.cert_list(), self.user_list()
        self.upload("upload", read(self.issue("upload").chain))
        self.assertEqual(self.call("DELETE", f"{CERTS}/{self.demo_entry()['id']}")[0], 204)
        self.assertEqual(self.call("PATCH", f"{USERS}/user@acme.test", {"profile": "Integration"})[0], 200)
        self.assertNotEqual(self.cert_list(), fixture_certs)
        self.assertNotEqual(self.user_list(), fixture_users)
        self.restart("--reset")
        self.assertEqual(self.cert_list(), fixture_certs)
        self.assertEqual(self.user_list(), fixture_users)
        # The stored changes are gone too, not just ignored once.
        self.restart()
        self.assertEqual(self.cert_list(), fixture_certs)
        self.assertEqual(self.user_list(), fixture_users)

    def test_post_reset(self):
        s = self.start()
        fixture_certs, fixture_users = self.cert_list(), self.user_list()
        demo = self.demo_entry()
        self.upload("upload", read(self.issue("upload").chain))
        self.assertEqual(self.call("DELETE", f"{CERTS}/{demo['id']}")[0], 204)
        self.assertEqual(self.call("PATCH", f"{USERS}/mtls@acme.test",
                                   {"permissionSets": [], "active": False})[0], 200)
        self.assertEqual(admin(s, "GET", "/services/data/", token=None)[0], 200)
        # No waiting: an entry is visible as soon as its request is answered (SPEC section 6).
        history = self.call("GET", "/__admin/login-history")[2]
        self.assertTrue(history, "a request outside /__admin/ is in the login history")
        self.assert_newest_entry("GET /services/data/")

        st, headers, body = self.call("POST", "/__admin/reset")
        self.assertEqual(st, 204)
        self.assertIsNone(body)
        self.assertIn(headers.get("content-length"), (None, "0"))
        self.assertEqual(self.cert_list(), fixture_certs)
        self.assertEqual(self.demo_entry(), demo)
        self.assertEqual(self.user_list(), fixture_users)
        self.assertEqual(self.call("GET", "/__admin/login-history")[:3:2], (200, []))
        # And so it stays after a restart.
        self.restart()
        self.assertEqual(self.cert_list(), fixture_certs)
        self.assertEqual(self.user_list(), fixture_users)
        self.assertEqual(self.call("GET", "/__admin/login-history")[:3:2], (200, []))

    def db_files(self):
        out = {}
        for name in os.listdir(self.state):
            if name.startswith("state.db"):
                with open(os.path.join(self.state, name), "rb") as f:
                    out[name] = hashlib.sha256(f.read()).hexdigest()
        return out

    def test_state_db_from_a_newer_schema_is_refused(self):
        s = self.start()
        self.assertEqual(s.stop(), 0, s.describe())
        db = os.path.join(self.state, "state.db")
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
        conn.close()
        files = self.db_files()
        p = self.assert_start_fails([], "newer", state_dir=self.state, timeout=30)
        self.assertIn("newer", p.stderr, p.stderr)
        conn = sqlite3.connect(db)
        try:
            self.assertEqual(conn.execute("PRAGMA user_version").fetchone()[0], 99)
        finally:
            conn.close()
        self.assertEqual(self.db_files(), files, "the server changed the database files")


# ---------------------------------------------------------------- users


class UserTests(AdminAsserts, ServerTestCase):

    def setUp(self):
        st, _, body = self.call("POST", "/__admin/reset")
        self.assertEqual((st, body), (204, None))

    def user(self, name):
        st, _, data = self.call("GET", f"{USERS}/{name}")
        self.assertEqual(st, 200, data)
        return data

    def test_list_has_the_fixture_users(self):
        users = self.user_list()
        self.assertEqual(len(users), len(FIXTURE_USERS), users)
        for u, (name, profile, sets, perms) in zip(users, FIXTURE_USERS):
            with self.subTest(user=name):
                self.assertEqual(set(u), USER_KEYS, u)
                self.assertEqual(u["username"], name)
                self.assertEqual(u["profile"], profile)
                self.assertEqual(u["permissionSets"], sets)
                self.assertEqual(u["permissions"], perms)
                self.assertIs(u["active"], True)
                self.assertRegex(u["id"], r"^005[0-9A-Za-z]{15}$")
                self.assertEqual(u["id"][15:], sf_checksum(u["id"][:15]))
                self.assertEqual(self.user(name), u)
        self.assertEqual(len({u["id"] for u in users}), len(users), "ids are distinct")

    def test_username_lookup_is_case_insensitive(self):
        want = self.user("mtls@acme.test")
        for name in ("MTLS@ACME.TEST", "Mtls@Acme.Test"):
            with self.subTest(name=name):
                self.assertEqual(self.user(name), want)
        st, _, patched = self.call("PATCH", f"{USERS}/MTLS@Acme.TEST", {"active": False})
        self.assertEqual(st, 200, patched)
        self.assertEqual(patched["username"], "mtls@acme.test")
        self.assertIs(self.user("mtls@acme.test")["active"], False)

    def test_patch_permission_sets_empty_removes_enforce(self):
        st, _, patched = self.call("PATCH", f"{USERS}/mtls@acme.test", {"permissionSets": []})
        self.assertEqual(st, 200, patched)
        got = self.user("mtls@acme.test")
        self.assertEqual(patched, got)
        self.assertEqual(got["permissionSets"], [])
        self.assertEqual(got["permissions"], ["ApiEnabled", "ApiUserOnly"])
        self.assertEqual(got["profile"], "Integration")
        # And back.
        st, _, patched = self.call("PATCH", f"{USERS}/mtls@acme.test", {"permissionSets": ["Enforce_mTLS"]})
        self.assertEqual(st, 200, patched)
        self.assertEqual(self.user("mtls@acme.test")["permissions"],
                         ["ApiEnabled", "ApiUserOnly", "EnforceMutualAuthentication"])
        # A set named twice is assigned once.
        st, _, patched = self.call("PATCH", f"{USERS}/mtls@acme.test",
                                   {"permissionSets": ["Enforce_mTLS", "Enforce_mTLS"]})
        self.assertEqual(st, 200, patched)
        self.assertEqual(patched["permissionSets"], ["Enforce_mTLS"])

    def test_patch_profile(self):
        st, _, patched = self.call("PATCH", f"{USERS}/mtls@acme.test", {"profile": "System Administrator"})
        self.assertEqual(st, 200, patched)
        got = self.user("mtls@acme.test")
        self.assertEqual(patched, got)
        self.assertEqual(got["profile"], "System Administrator")
        self.assertEqual(got["permissionSets"], ["Enforce_mTLS"])
        self.assertEqual(got["permissions"],
                         ["ApiEnabled", "CustomizeApplication", "EnforceMutualAuthentication", "ViewSetup"])
        others = [u for u in self.user_list() if u["username"] != "mtls@acme.test"]
        self.assertEqual([(u["username"], u["profile"]) for u in others],
                         [(n, p) for n, p, _, _ in FIXTURE_USERS if n != "mtls@acme.test"])

    def test_patch_active_false(self):
        before = self.user("api@acme.test")
        st, _, patched = self.call("PATCH", f"{USERS}/api@acme.test", {"active": False})
        self.assertEqual(st, 200, patched)
        self.assertEqual(patched, {**before, "active": False})
        self.assertEqual(self.user("api@acme.test"), patched)

    def test_empty_patch_changes_nothing(self):
        before = self.user_list()
        st, _, patched = self.call("PATCH", f"{USERS}/user@acme.test", {})
        self.assertEqual(st, 200, patched)
        self.assertEqual(self.user_list(), before)

    def test_unknown_profile_or_permission_set(self):
        before = self.user_list()
        for body, what in (({"profile": "Nobody"}, "unknown profile"),
                           ({"permissionSets": ["Enforce_mTLS", "Nope"]}, "unknown permission set"),
                           ({"profile": "system administrator"}, "profile in the wrong case"),
                           ({"profile": "System Administrator", "permissionSets": ["Nope"], "active": False},
                            "good profile, bad set"),
                           ({"profile": "Nobody", "permissionSets": [], "active": False},
                            "bad profile, good set")):
            with self.subTest(what):
                self.assert_error(self.call("PATCH", f"{USERS}/mtls@acme.test", body), 400,
                                  "INVALID_CROSS_REFERENCE_KEY", what)
                self.assertEqual(self.user_list(), before, f"{what}: a rejected patch changed users")

    def test_unknown_user(self):
        before = self.user_list()
        for name in ("nobody@acme.test", "mtls@acme", "x"):
            with self.subTest(name=name):
                self.assert_error(self.call("GET", f"{USERS}/{name}"), 404, "NOT_FOUND")
                self.assert_error(self.call("PATCH", f"{USERS}/{name}", {"active": False}), 404, "NOT_FOUND")
        self.assertEqual(self.user_list(), before)

    def test_bad_types(self):
        before = self.user_list()
        for body, what in (({"profile": 5}, "profile a number"), ({"profile": None}, "profile null"),
                           ({"active": "false"}, "active a string"), ({"active": 0}, "active a number"),
                           ({"permissionSets": "Enforce_mTLS"}, "permissionSets a string"),
                           ({"permissionSets": [1]}, "permissionSets of numbers"),
                           ({"permissionSets": None}, "permissionSets null"),
                           ({"username": "x@acme.test"}, "unknown key"),
                           ({"active": False, "password": "x"}, "a good key and an unknown one")):
            with self.subTest(what):
                self.assert_error(self.call("PATCH", f"{USERS}/mtls@acme.test", body), 400, "INVALID_FIELD", what)
                self.assertEqual(self.user_list(), before, f"{what}: a rejected patch changed users")
        for raw in ("{", "[]", "true"):
            with self.subTest(raw=raw):
                self.assert_error(self.call("PATCH", f"{USERS}/mtls@acme.test", raw), 400, "JSON_PARSER_ERROR")
        self.assertEqual(self.user_list(), before)


# ---------------------------------------------------------------- the admin token


class TokenTests(AdminAsserts, ServerTestCase):

    @classmethod
    def prepare(cls):
        cls.cert = cls.server.issue("token-client")

    def protected_calls(self, entry_id):
        demo = self.demo_entry()["id"]
        other = self.server.issue("token-upload")
        return [
            ("GET", CERTS, None),
            ("POST", CERTS, {"label": "sneaky", "pem": read(other.chain)}),
            ("GET", f"{CERTS}/{entry_id}", None),
            ("DELETE", f"{CERTS}/{entry_id}", None),
            ("DELETE", f"{CERTS}/{demo}", None),
            ("GET", USERS, None),
            ("GET", f"{USERS}/mtls@acme.test", None),
            ("PATCH", f"{USERS}/mtls@acme.test", {"permissionSets": [], "active": False}),
            ("POST", "/__admin/reset", None),
            ("GET", "/__admin/login-history", None),
            ("GET", "/__admin/no-such-thing", None),
            ("PUT", "/__admin/users", None),
            ("HEAD", CERTS, None),
        ]

    def snapshot(self):
        return self.cert_list(), self.user_list(), self.call("GET", "/__admin/login-history?limit=1000")[2]

    def test_every_protected_path_needs_the_token(self):
        token = admin_token(self.server)
        entry = self.upload("protected", read(self.cert.chain))
        self.assertEqual(self.call("PATCH", f"{USERS}/api@acme.test", {"active": False})[0], 200)
        self.assertEqual(admin(self.server, "GET", "/services/data/", token=None)[0], 200)
        self.assertTrue(self.call("GET", "/__admin/login-history")[2])
        self.assert_newest_entry("GET /services/data/", "no waiting: visible once answered")
        before = self.snapshot()
        changed = token[:-1] + ("0" if token[-1] != "0" else "1")
        first_changed = ("0" if token[0] != "0" else "1") + token[1:]
        basic = base64.b64encode(f"admin:{token}".encode()).decode()
        bad = [
            ("no Authorization", None, {}),
            ("wrong token", "0" * len(token), {}),
            ("last character changed", changed, {}),
            ("first character changed", first_changed, {}),
            ("token + 1 character", token + "0", {}),
            ("token - 1 character", token[:-1], {}),
            ("empty Bearer", "", {}),
            ("Basic with the token", None, {"Authorization": f"Basic {token}"}),
            ("Basic admin:token", None, {"Authorization": f"Basic {basic}"}),
            ("token without scheme", None, {"Authorization": token}),
            ("OAuth scheme", None, {"Authorization": f"OAuth {token}"}),
        ]
        for method, path, body in self.protected_calls(entry["id"]):
            for what, tok, headers in bad:
                with self.subTest(method=method, path=path, auth=what):
                    st, h, data = self.call(method, path, body, token=tok, headers=headers)
                    self.assertEqual(st, 401, f"{method} {path} with {what}: {data}")
                    if method != "HEAD":
                        self.assert_error((st, h, data), 401, "INVALID_ADMIN_TOKEN", f"{method} {path} {what}")
        # The token is checked before the body's size.
        st, h, data = self.call("POST", CERTS, b"x" * (2 * 1024 * 1024 + 1), token=None)
        self.assert_error((st, h, data), 401, "INVALID_ADMIN_TOKEN", "a body over 2 MiB without a token")
        # The mTLS listener guards them too.
        st, h, data = self.call("DELETE", f"{CERTS}/{entry['id']}", token=None, listener="mtls", cert=self.cert)
        self.assert_error((st, h, data), 401, "INVALID_ADMIN_TOKEN", "mTLS listener, a client certificate")
        self.assertEqual(self.snapshot(), before, "a refused request changed the state")
        # The right token on the same calls works (the unknown path is then a 404).
        self.assert_error(self.call("GET", "/__admin/no-such-thing"), 404, "NOT_FOUND")

    def test_health_and_tls_info_need_no_token(self):
        for listener in ("standard", "mtls"):
            for tok in (None, "wrong"):
                with self.subTest(listener=listener, token=tok):
                    st, _, health = self.call("GET", "/__admin/health", token=tok, listener=listener)
                    self.assertEqual(st, 200, health)
                    self.assertEqual(set(health), {"status", "historyDropped"})
                    self.assertEqual(health["status"], "ok")
                    self.assertIsInstance(health["historyDropped"], int, health)
                    self.assertNotIsInstance(health["historyDropped"], bool, health)
                    self.assertGreaterEqual(health["historyDropped"], 0, health)
                    st, _, info = self.call("GET", "/__admin/tls-info", token=tok, listener=listener)
                    self.assertEqual(st, 200, info)
                    self.assertEqual(info["listener"], listener)

    def test_generated_token_file(self):
        path = os.path.join(self.server.state, "admin-token")
        token = admin_token(self.server)
        self.assertRegex(token, r"^[0-9a-f]{48}$")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)


class TokenSourceTests(StateDirCase):

    def test_token_file_is_reused_on_restart(self):
        self.start()
        path = os.path.join(self.state, "admin-token")
        token = read(path)
        self.assertRegex(token.strip(), r"^[0-9a-f]{48}$")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.restart()
        self.assertEqual(read(path), token)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(self.call("GET", USERS, token=token.strip())[0], 200)

    def test_admin_token_flag(self):
        self.start()
        generated = admin_token(self.server)
        self.restart("--admin-token", "flag-token-1")
        self.assertEqual(self.call("GET", USERS, token="flag-token-1")[0], 200)
        self.assert_error(self.call("GET", USERS, token=generated), 401, "INVALID_ADMIN_TOKEN", "file's token")
        self.assert_error(self.call("GET", USERS, token="flag-token-"), 401, "INVALID_ADMIN_TOKEN", "a prefix")

    def test_admin_token_environment(self):
        self.start(env={"SFMTLS_ADMIN_TOKEN": "env-token-2"})
        self.assertEqual(self.call("GET", USERS, token="env-token-2")[0], 200)
        self.assert_error(self.call("GET", USERS, token="env-token-3"), 401, "INVALID_ADMIN_TOKEN")
        # Given a token, the server generates none ("else generated once", SPEC section 6).
        self.assertFalse(os.path.exists(os.path.join(self.state, "admin-token")),
                         "a token file was written though SFMTLS_ADMIN_TOKEN was set")
        # A token file from an earlier start is not accepted while the variable is set.
        self.restart()
        self.assertTrue(os.path.exists(os.path.join(self.state, "admin-token")))
        self.restart(env={"SFMTLS_ADMIN_TOKEN": "env-token-2"})
        self.assertEqual(self.call("GET", USERS, token="env-token-2")[0], 200)
        self.assert_error(self.call("GET", USERS), 401, "INVALID_ADMIN_TOKEN", "the file's token")
        # The flag wins over the environment.
        self.restart("--admin-token", "flag-token-4", env={"SFMTLS_ADMIN_TOKEN": "env-token-2"})
        self.assertEqual(self.call("GET", USERS, token="flag-token-4")[0], 200)
        self.assert_error(self.call("GET", USERS, token="env-token-2"), 401, "INVALID_ADMIN_TOKEN")


# ---------------------------------------------------------------- methods


class MethodTests(AdminAsserts, ServerTestCase):

    def test_unsupported_method_is_405_with_allow(self):
        eid = self.demo_entry()["id"]
        before = self.cert_list(), self.user_list()
        for method, path, allow in (("PUT", CERTS, "GET, POST"), ("DELETE", CERTS, "GET, POST"),
                                    ("PATCH", CERTS, "GET, POST"),
                                    ("POST", f"{CERTS}/{eid}", "GET, DELETE"),
                                    ("PUT", f"{CERTS}/{eid}", "GET, DELETE"),
                                    ("POST", USERS, "GET"), ("DELETE", USERS, "GET"),
                                    ("PUT", f"{USERS}/mtls@acme.test", "GET, PATCH"),
                                    ("DELETE", f"{USERS}/mtls@acme.test", "GET, PATCH"),
                                    ("GET", "/__admin/reset", "POST"), ("DELETE", "/__admin/reset", "POST"),
                                    ("POST", "/__admin/login-history", "GET"),
                                    ("POST", "/__admin/health", "GET"), ("DELETE", "/__admin/tls-info", "GET")):
            with self.subTest(method=method, path=path):
                st, headers, data = self.call(method, path, {})
                self.assert_error((st, headers, data), 405, "METHOD_NOT_ALLOWED", f"{method} {path}")
                allowed = {m.strip() for m in headers.get("allow", "").split(",")}
                self.assertEqual(allowed, set(allow.split(", ")), f"Allow of {method} {path}: {headers}")
        self.assertEqual((self.cert_list(), self.user_list()), before)


if __name__ == "__main__":
    unittest.main()
