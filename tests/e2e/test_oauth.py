"""The OAuth surface (SPEC section 5): POST /services/oauth2/token and its five
grants, revocation, userinfo and the identity URL, as a client sees them.

Every grant's success is checked key by key (the token's shape, instance_url,
the identity URL, issued_at, and the signature recomputed here with hmac),
every error of every grant as the exact JSON with its headers, and each
decision's login-history entry. JWT assertions are built here and signed
with the shipped fixtures/certs/partner-jwt.key (or a key made here) by
`openssl dgst -sha256 -sign`: Python's stdlib has no RSA. Then the form
parser through the server, sessions that expire (--session-timeout 1), and
the mutual-authentication rows on the token endpoint (rows 7, 8 and 9).

The main class runs the default org plus a second connected app ("Other":
no runAs user, no certificate, its own callback) so that a code or refresh
token can be presented by the wrong client.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_oauth.py`

from sfmtls_e2e import SOURCE_DIR, Cert, ServerTestCase, admin, https, org_fixture, run, write_text

FORM = "application/x-www-form-urlencoded"
TOKEN = "/services/oauth2/token"
REVOKE = "/services/oauth2/revoke"
USERINFO = "/services/oauth2/userinfo"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ORG_ID = "00D000000000001EAA"
ORG15 = ORG_ID[:15]
CK, CS = "ck-partner", "cs-partner"
OTHER_CK, OTHER_CS = "ck-other", "cs-other"
CALLBACK = "http://localhost:1717/callback"
OTHER_CALLBACK = "http://localhost:1717/other"
PARTNER_KEY = os.path.join(SOURCE_DIR, "fixtures/certs/partner-jwt.key")
TOKEN_RE = re.compile(r"^" + ORG15 + r"![A-Za-z0-9._]{86}$")
ENTRY_TOKEN = "POST " + TOKEN
MUTUAL = "Mutual authentication failed"

# The errors of SPEC section 5's table, as (error, error_description).
AUTH_FAILURE = ("invalid_grant", "authentication failure")
BAD_CLIENT_ID = ("invalid_client_id", "client identifier invalid")
BAD_SECRET = ("invalid_client", "invalid client credentials")
BAD_GRANT_TYPE = ("unsupported_grant_type", "grant type not supported")
BAD_ASSERTION = ("invalid_grant", "invalid assertion")
EXPIRED_ASSERTION = ("invalid_grant", "expired assertion")
BAD_TOKEN = ("invalid_grant", "expired access/refresh token")
NO_RUN_AS = ("invalid_grant", "no client credentials user enabled")
MUTUAL_FAILED = ("invalid_grant", "mutual authentication failed")
UNSUPPORTED_TOKEN = {"error": "unsupported_token_type", "error_description": "this token type is not supported"}

USERINFO_KEYS = ["sub", "user_id", "organization_id", "preferred_username", "nickname", "name", "email",
                 "email_verified", "given_name", "family_name", "zoneinfo", "photos", "profile", "picture", "address",
                 "is_salesforce_integration_user", "urls", "active", "user_type", "language", "locale", "utcOffset",
                 "updated_at", "is_app_installed"]
IDENTITY_KEYS = ["id", "asserted_user", "user_id", "organization_id", "username", "nick_name", "display_name",
                 "email", "email_verified", "first_name", "last_name", "timezone", "photos", "addr_street",
                 "addr_city", "addr_state", "addr_country", "addr_zip", "mobile_phone", "mobile_phone_verified",
                 "is_lightning_login_user", "status", "urls", "active", "user_type", "language", "locale",
                 "utcOffset", "last_modified_date", "is_app_installed"]


# ---------------------------------------------------------------- clients

def request(server, method, path, body=None, headers=None, listener="standard", cert=None):
    """One request on a fresh connection -> Answer (lowercase header names)."""
    return https(server, method, path, body=body, headers=headers, listener=listener, cert=cert)


def form(fields):
    """application/x-www-form-urlencoded text of (name, value) pairs or a dict."""
    return urllib.parse.urlencode(list(fields.items()) if isinstance(fields, dict) else fields)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl_sign(data, key):
    """RS256: RSASSA-PKCS1-v1_5 over SHA-256 of data with the PEM key file (openssl as a test tool)."""
    p = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data.encode(), capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError(f"openssl dgst -sign failed: {p.stderr.decode()}")
    return p.stdout


def make_jwt(claims, header=None, key=PARTNER_KEY):
    header = {"alg": "RS256"} if header is None else header
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(openssl_sign(signing_input, key))


def claims(sub="api@acme.test", iss=CK, aud="https://login.salesforce.com", exp_in=300):
    return {"iss": iss, "sub": sub, "aud": aud, "exp": int(time.time()) + exp_in}


def identity_signature(secret, ident, issued_at):
    """Salesforce's token signature: Base64(HMAC-SHA256(consumer secret, id + issued_at))."""
    return base64.b64encode(hmac.new(secret.encode(), (ident + issued_at).encode(), hashlib.sha256).digest()).decode()


def fixture_with_other_app():
    """The default org plus a second connected app without runAs and certificate."""
    org = org_fixture()
    org["connectedApps"].append({"name": "Other", "consumerKey": OTHER_CK, "consumerSecret": OTHER_CS,
                                 "callbackUrl": OTHER_CALLBACK})
    return org


# ---------------------------------------------------------------- shared assertions

class OAuthMixin:
    """Token requests and their checks against self.server."""

    def token(self, fields, listener="standard", cert=None, content_type=FORM, query=""):
        body = fields if isinstance(fields, str) else form(fields)
        headers = {"Content-Type": content_type} if content_type else {}
        return request(self.server, "POST", TOKEN + query, body, headers, listener=listener, cert=cert)

    def password_grant(self, username, password, client_id=CK, client_secret=CS, **kw):
        return self.token([("grant_type", "password"), ("client_id", client_id), ("client_secret", client_secret),
                           ("username", username), ("password", password)], **kw)

    def jwt_grant(self, assertion, **kw):
        return self.token([("grant_type", JWT_GRANT), ("assertion", assertion)], **kw)

    def instance_url(self):
        return f"https://localhost:{self.server.std_port}"

    def user_id(self, username):
        status, _, data = admin(self.server, "GET", f"/__admin/users/{username}")
        self.assertEqual(status, 200, data)
        return data["id"]

    def assert_oauth_error(self, r, error, reason=None, status=400):
        """r is the OAuth error (error, description) with Salesforce's headers and, for a denial, X-Sfmtls-Reason."""
        msg = f"{r}\n{self.server.describe()}"
        self.assertEqual(r.status, status, msg)
        self.assertEqual(r.headers.get("content-type"), "application/json;charset=UTF-8", msg)
        self.assertEqual(r.headers.get("cache-control"), "no-store", msg)
        self.assertEqual(r.json(), {"error": error[0], "error_description": error[1]}, msg)
        if reason is not None:
            self.assertEqual(r.headers.get("x-sfmtls-reason"), reason, msg)

    def assert_token(self, r, username, kind, secret=CS, before_ms=None):
        """A successful token answer of grant `kind` for `username`; returns it as a dict."""
        msg = f"{r}\n{self.server.describe()}"
        self.assertEqual(r.status, 200, msg)
        self.assertEqual(r.headers.get("content-type"), "application/json;charset=UTF-8", msg)
        self.assertEqual(r.headers.get("cache-control"), "no-store", msg)
        self.assertNotIn("x-sfmtls-reason", r.headers, msg)
        t = r.json()
        # Salesforce's keys for each flow: no refresh token for password, client
        # credentials and JWT; the JWT answer has neither signature nor issued_at.
        keys = {"password": ["access_token", "instance_url", "id", "token_type", "issued_at", "signature"],
                "client_credentials": ["access_token", "signature", "scope", "instance_url", "id", "token_type",
                                       "issued_at"],
                "jwt": ["access_token", "scope", "instance_url", "id", "token_type"],
                "code": ["access_token", "refresh_token", "signature", "scope", "instance_url", "id", "token_type",
                         "issued_at"],
                "refresh": ["access_token", "signature", "scope", "instance_url", "id", "token_type",
                            "issued_at"]}[kind]
        self.assertEqual(list(t), keys, msg)
        self.assertRegex(t["access_token"], TOKEN_RE, msg)
        if "refresh_token" in t:
            self.assertRegex(t["refresh_token"], TOKEN_RE, msg)
            self.assertNotEqual(t["refresh_token"], t["access_token"], msg)
        self.assertEqual(t["instance_url"], self.instance_url(), msg)
        self.assertEqual(t["id"], f"{self.instance_url()}/id/{ORG_ID}/{self.user_id(username)}", msg)
        self.assertEqual(t["token_type"], "Bearer", msg)
        if "scope" in t:
            self.assertEqual(t["scope"], {"code": "refresh_token api", "refresh": "refresh_token api"}.get(kind, "api"))
        if "issued_at" in t:
            self.assertRegex(t["issued_at"], r"^\d{13}$", msg)
            now = time.time() * 1000
            self.assertLessEqual(int(t["issued_at"]), now + 1, msg)
            self.assertGreaterEqual(int(t["issued_at"]), before_ms if before_ms else now - 60000, msg)
            self.assertEqual(t["signature"], identity_signature(secret, t["id"], t["issued_at"]), msg)
        return t

    def history(self, query="?limit=1"):
        status, _, data = admin(self.server, "GET", "/__admin/login-history" + query)
        self.assertEqual(status, 200, data)
        return data

    def assert_entry(self, username, reason, status, outcome=None, endpoint=ENTRY_TOKEN, listener="standard"):
        """The newest login-history entry is this decision."""
        e = self.history()[0]
        msg = f"entry: {e}"
        self.assertEqual(e["username"], username, msg)
        self.assertEqual(e["reason"], reason, msg)
        self.assertEqual(e["status"], status, msg)
        self.assertEqual(e["outcome"], outcome or ("allowed" if reason == "ALLOWED" else "denied"), msg)
        self.assertEqual(e["endpoint"], endpoint, msg)
        self.assertEqual(e["listener"], listener, msg)
        return e

    def rest(self, token, listener="standard", cert=None, path="/services/data/v67.0/"):
        return request(self.server, "GET", path, headers={"Authorization": f"Bearer {token}"}, listener=listener,
                       cert=cert)

    def userinfo(self, token, query="", listener="standard", cert=None):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return request(self.server, "GET", USERINFO + query, headers=headers, listener=listener, cert=cert)

    def assert_bad_oauth_token(self, r):
        """What userinfo and the identity URL answer for a bad session [obs: jsforce #736]."""
        self.assertEqual((r.status, r.body), (403, "Bad_OAuth_Token"), r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "INVALID_SESSION", r)

    def assert_session_dead(self, token):
        r = self.rest(token)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        self.assert_bad_oauth_token(self.userinfo(token))

    def authorize(self, username, password, client_id=CK, redirect_uri=CALLBACK):
        """The web-server flow's login (ui.c): the code from the 302 to the callback."""
        body = form([("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect_uri),
                     ("un", username), ("pw", password)])
        r = request(self.server, "POST", "/services/oauth2/authorize", body, {"Content-Type": FORM})
        self.assertEqual(r.status, 302, r)
        loc = urllib.parse.urlsplit(r.headers["location"])
        self.assertEqual(f"{loc.scheme}://{loc.netloc}{loc.path}", redirect_uri, r)
        code = urllib.parse.parse_qs(loc.query)["code"][0]
        self.assertRegex(code, TOKEN_RE)
        return code

    def code_grant(self, code, client_id=CK, client_secret=CS, redirect_uri=CALLBACK):
        return self.token([("grant_type", "authorization_code"), ("code", code), ("client_id", client_id),
                           ("client_secret", client_secret), ("redirect_uri", redirect_uri)])

    def refresh_grant(self, refresh, client_id=CK, client_secret=None):
        fields = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client_id)]
        if client_secret is not None:
            fields.append(("client_secret", client_secret))
        return self.token(fields)


class OAuthServerTestCase(OAuthMixin, ServerTestCase):
    """A server on a copy of the default org with a second connected app."""

    fixture = None

    @classmethod
    def before_start(cls):
        cls.fixture_dir = tempfile.mkdtemp(prefix="sfmtls-e2e-oauth-")
        path = os.path.join(cls.fixture_dir, "org.json")
        write_text(path, json.dumps(cls.fixture()))
        return ("--fixtures", path)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.fixture_dir, ignore_errors=True)


# ---------------------------------------------------------------- the grants

class TokenEndpointTest(OAuthServerTestCase):
    fixture = staticmethod(fixture_with_other_app)

    # -- password

    def test_password_grant_answers_salesforce_token_shape(self):
        before = int(time.time() * 1000)
        r = self.password_grant("admin@acme.test", "Admin-123TKN")
        t = self.assert_token(r, "admin@acme.test", "password", before_ms=before)
        self.assert_entry("admin@acme.test", "ALLOWED", "Success")
        # The token works at once (REST) and names its user (userinfo).
        self.assertEqual(self.rest(t["access_token"]).status, 200)
        info = self.userinfo(t["access_token"])
        self.assertEqual(info.json()["preferred_username"], "admin@acme.test", info)

    def test_password_grant_errors(self):
        for what, (username, password), error, reason, status, entry_user in (
                ("wrong password", ("admin@acme.test", "Admin-999TKN"), AUTH_FAILURE, "INVALID_LOGIN",
                 "Invalid password", "admin@acme.test"),
                ("unknown user", ("nobody@acme.test", "x"), AUTH_FAILURE, "INVALID_LOGIN", "Invalid login",
                 "nobody@acme.test"),
                ("security token missing", ("admin@acme.test", "Admin-123"), AUTH_FAILURE,
                 "SECURITY_TOKEN_REQUIRED", "Failed: API security token required", "admin@acme.test"),
                ("wrong security token", ("admin@acme.test", "Admin-123XYZ"), AUTH_FAILURE, "INVALID_LOGIN",
                 "Invalid password", "admin@acme.test")):
            with self.subTest(what):
                self.assert_oauth_error(self.password_grant(username, password), error, reason)
                self.assert_entry(entry_user, reason, status)
        with self.subTest("unknown client_id"):
            r = self.password_grant("admin@acme.test", "Admin-123TKN", client_id="nope")
            self.assert_oauth_error(r, BAD_CLIENT_ID, "INVALID_CLIENT_ID")
            self.assert_entry("admin@acme.test", "INVALID_CLIENT_ID", "Failed: Invalid client identifier")
        with self.subTest("wrong client secret"):
            r = self.password_grant("admin@acme.test", "Admin-123TKN", client_secret="cs-wrong")
            self.assert_oauth_error(r, BAD_SECRET, "INVALID_CLIENT")
            self.assert_entry("admin@acme.test", "INVALID_CLIENT", "Failed: Invalid client credentials")
        with self.subTest("another app's secret"):
            r = self.password_grant("admin@acme.test", "Admin-123TKN", client_secret=OTHER_CS)
            self.assert_oauth_error(r, BAD_SECRET, "INVALID_CLIENT")
        for missing in ("client_id", "client_secret", "username", "password"):
            with self.subTest("missing " + missing):
                fields = {"grant_type": "password", "client_id": CK, "client_secret": CS,
                          "username": "admin@acme.test", "password": "Admin-123TKN"}
                del fields[missing]
                self.assert_oauth_error(self.token(fields), ("invalid_request", "missing parameter: " + missing),
                                        "INVALID_REQUEST")
                self.assert_entry(None if missing == "username" else "admin@acme.test", "INVALID_REQUEST",
                                  "Failed: Invalid request")
        with self.subTest("an empty value counts as missing (RFC 6749 3.1)"):
            r = self.password_grant("admin@acme.test", "Admin-123TKN", client_secret="")
            self.assert_oauth_error(r, ("invalid_request", "missing parameter: client_secret"), "INVALID_REQUEST")

    def test_password_grant_for_inactive_user_is_authentication_failure(self):
        status, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": False})
        self.assertEqual(status, 200, data)
        try:
            self.assert_oauth_error(self.password_grant("user@acme.test", "User-123"), AUTH_FAILURE,
                                    "INVALID_LOGIN")
            self.assert_entry("user@acme.test", "INVALID_LOGIN", "User is inactive")
            # A wrong password stays a wrong password for an inactive user.
            self.assert_oauth_error(self.password_grant("user@acme.test", "nope"), AUTH_FAILURE, "INVALID_LOGIN")
            self.assert_entry("user@acme.test", "INVALID_LOGIN", "Invalid password")
        finally:
            admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": True})
        self.assert_token(self.password_grant("user@acme.test", "User-123"), "user@acme.test", "password")

    def test_grant_type_errors(self):
        for what, fields in (("unknown grant", {"grant_type": "implicit", "client_id": CK}),
                             ("no grant_type", {"client_id": CK, "client_secret": CS}),
                             ("empty grant_type", {"grant_type": ""}),
                             ("case matters", {"grant_type": "Password", "client_id": CK})):
            with self.subTest(what):
                self.assert_oauth_error(self.token(fields), BAD_GRANT_TYPE, "UNSUPPORTED_GRANT_TYPE")
                self.assert_entry(None, "UNSUPPORTED_GRANT_TYPE", "Failed: Unsupported grant type")

    # -- client credentials

    def test_client_credentials_grant_runs_as_the_apps_user(self):
        before = int(time.time() * 1000)
        r = self.token({"grant_type": "client_credentials", "client_id": CK, "client_secret": CS})
        t = self.assert_token(r, "mtls@acme.test", "client_credentials", before_ms=before)
        self.assert_entry("mtls@acme.test", "ALLOWED", "Success")
        # The run-as user has Enforce mTLS: the login succeeds here, its use on
        # the standard listener does not (row 7).
        use = self.rest(t["access_token"])
        self.assertEqual(use.status, 401, use)
        self.assertEqual(use.headers.get("x-sfmtls-reason"), "STANDARD_PORT", use)

    def test_client_credentials_errors(self):
        cases = (("no runAs user", {"client_id": OTHER_CK, "client_secret": OTHER_CS}, NO_RUN_AS,
                  "NO_CLIENT_CREDENTIALS_USER", "Failed: No client credentials user"),
                 ("unknown client_id", {"client_id": "nope", "client_secret": CS}, BAD_CLIENT_ID,
                  "INVALID_CLIENT_ID", "Failed: Invalid client identifier"),
                 ("wrong secret", {"client_id": CK, "client_secret": "x"}, BAD_SECRET, "INVALID_CLIENT",
                  "Failed: Invalid client credentials"),
                 ("missing client_id", {"client_secret": CS}, ("invalid_request", "missing parameter: client_id"),
                  "INVALID_REQUEST", "Failed: Invalid request"),
                 ("missing client_secret", {"client_id": CK},
                  ("invalid_request", "missing parameter: client_secret"), "INVALID_REQUEST",
                  "Failed: Invalid request"))
        for what, fields, error, reason, status in cases:
            with self.subTest(what):
                self.assert_oauth_error(self.token({"grant_type": "client_credentials", **fields}), error, reason)
                self.assert_entry(None, reason, status)

    def test_client_credentials_with_inactive_run_as_user(self):
        status, _, data = admin(self.server, "PATCH", "/__admin/users/mtls@acme.test", {"active": False})
        self.assertEqual(status, 200, data)
        try:
            r = self.token({"grant_type": "client_credentials", "client_id": CK, "client_secret": CS})
            self.assert_oauth_error(r, AUTH_FAILURE, "INVALID_LOGIN")
            self.assert_entry("mtls@acme.test", "INVALID_LOGIN", "User is inactive")
        finally:
            admin(self.server, "PATCH", "/__admin/users/mtls@acme.test", {"active": True})

    # -- JWT bearer

    def test_jwt_grant_answers_salesforce_jwt_shape(self):
        for aud in ("https://login.salesforce.com", "https://login.salesforce.com/", self.instance_url(),
                    self.instance_url() + "/", f"https://localhost:{self.server.mtls_port}",
                    ["https://example.com", "https://login.salesforce.com"]):
            with self.subTest(aud=aud):
                r = self.jwt_grant(make_jwt(claims(aud=aud)))
                t = self.assert_token(r, "api@acme.test", "jwt")
                self.assert_entry("api@acme.test", "ALLOWED", "Success")
                self.assertEqual(self.rest(t["access_token"]).status, 200)

    def test_jwt_grant_refuses_bad_assertions(self):
        other_key = os.path.join(self.fixture_dir, "other.key")
        if not os.path.exists(other_key):
            run(["openssl", "genrsa", "-out", other_key, "2048"])
        good = make_jwt(claims())
        head, body, sig = good.split(".")
        now = int(time.time())
        hs256_input = b64url(b'{"alg":"HS256"}') + "." + body
        hs256 = hs256_input + "." + b64url(hmac.new(CS.encode(), hs256_input.encode(), hashlib.sha256).digest())
        alg_none = b64url(b'{"alg":"none"}')
        dup_claims = b64url(b'{"sub":"a","sub":"b"}')
        tampered = json.loads(base64.urlsafe_b64decode(body + "==="))
        tampered["sub"] = "admin@acme.test"
        cases = (
            ("signed with another key", make_jwt(claims(), key=other_key), "Failed: Signature Invalid", "api"),
            ("claims changed after signing", f"{head}.{b64url(json.dumps(tampered).encode())}.{sig}",
             "Failed: Signature Invalid", "admin"),
            ("signature cut", f"{head}.{body}.{sig[:-4]}", "Failed: Signature Invalid", "api"),
            ("alg none", f"{alg_none}.{body}.", "Failed: Invalid Signature Method", "api"),
            ("alg HS256 keyed with the consumer secret", hs256, "Failed: Invalid Signature Method", "api"),
            ("alg missing", make_jwt(claims(), header={"typ": "JWT"}), "Failed: Invalid Signature Method", "api"),
            ("wrong iss", make_jwt(claims(iss="ck-unknown")), "Failed: Issuer Mismatched", "api"),
            ("iss of an app without certificate", make_jwt(claims(iss=OTHER_CK)), "Failed: Signature Invalid",
             "api"),
            ("wrong aud", make_jwt(claims(aud="https://example.com")), "Failed: Audience Invalid", "api"),
            ("sandbox aud on a production org", make_jwt(claims(aud="https://test.salesforce.com")),
             "Failed: Audience Invalid", "api"),
            ("aud missing", make_jwt({"iss": CK, "sub": "api@acme.test", "exp": now + 300}),
             "Failed: Audience Invalid", "api"),
            ("unknown sub", make_jwt(claims(sub="ghost@acme.test")), "Failed: Username Or SSO Id Invalid",
             "ghost"),
            ("exp missing", make_jwt({"iss": CK, "sub": "api@acme.test", "aud": "https://login.salesforce.com"}),
             "Failed: Assertion Invalid", "api"),
            ("two parts", f"{head}.{body}", "Failed: Assertion Invalid", None),
            ("four parts", good + ".x", "Failed: Assertion Invalid", None),
            ("padded base64url", f"{head}=.{body}.{sig}", "Failed: Assertion Invalid", None),
            ("standard base64 alphabet", f"{head}.{body}.{sig.replace('-', '+').replace('_', '/')}x",
             "Failed: Signature Invalid", "api"),
            ("header not JSON", f"{b64url(b'not json')}.{body}.{sig}", "Failed: Assertion Invalid", None),
            ("claims not an object", f"{head}.{b64url(b'[1,2]')}.{sig}", "Failed: Assertion Invalid", None),
            ("duplicate claim", f"{head}.{dup_claims}.{sig}",
             "Failed: Assertion Invalid", None),
        )
        for what, assertion, status, who in cases:
            with self.subTest(what):
                self.assert_oauth_error(self.jwt_grant(assertion), BAD_ASSERTION, "INVALID_ASSERTION")
                self.assert_entry(f"{who}@acme.test" if who else None, "INVALID_ASSERTION", status)
        with self.subTest("expired"):
            for exp_in in (-1, -3600, 0):
                self.assert_oauth_error(self.jwt_grant(make_jwt(claims(exp_in=exp_in))), EXPIRED_ASSERTION,
                                        "EXPIRED_ASSERTION")
                self.assert_entry("api@acme.test", "EXPIRED_ASSERTION", "Failed: Assertion Expired")
        with self.subTest("missing assertion"):
            self.assert_oauth_error(self.token({"grant_type": JWT_GRANT}),
                                    ("invalid_request", "missing parameter: assertion"), "INVALID_REQUEST")

    def test_jwt_grant_for_inactive_sub_is_authentication_failure(self):
        status, _, data = admin(self.server, "PATCH", "/__admin/users/api@acme.test", {"active": False})
        self.assertEqual(status, 200, data)
        try:
            self.assert_oauth_error(self.jwt_grant(make_jwt(claims())), AUTH_FAILURE, "INVALID_LOGIN")
            self.assert_entry("api@acme.test", "INVALID_LOGIN", "User is inactive")
        finally:
            admin(self.server, "PATCH", "/__admin/users/api@acme.test", {"active": True})

    # -- web-server flow: authorization code, then refresh token

    def test_code_grant_answers_with_a_refresh_token(self):
        code = self.authorize("admin@acme.test", "Admin-123")
        before = int(time.time() * 1000)
        t = self.assert_token(self.code_grant(code), "admin@acme.test", "code", before_ms=before)
        self.assert_entry("admin@acme.test", "ALLOWED", "Success")
        self.assertEqual(self.rest(t["access_token"]).status, 200)
        # A code is good once.
        self.assert_oauth_error(self.code_grant(code), BAD_TOKEN, "INVALID_GRANT")
        self.assert_entry(None, "INVALID_GRANT", "Failed: Invalid Token")

        # The refresh token: new access tokens, no new refresh token; the
        # client secret is optional but checked when given.
        for secret in (None, CS):
            with self.subTest(client_secret=secret):
                r = self.refresh_grant(t["refresh_token"], client_secret=secret)
                t2 = self.assert_token(r, "admin@acme.test", "refresh")
                self.assert_entry("admin@acme.test", "ALLOWED", "Success")
                self.assertNotEqual(t2["access_token"], t["access_token"])
                self.assertEqual(self.rest(t2["access_token"]).status, 200)
        self.assert_oauth_error(self.refresh_grant(t["refresh_token"], client_secret="nope"), BAD_SECRET,
                                "INVALID_CLIENT")
        self.assert_oauth_error(self.refresh_grant(t["refresh_token"], client_id=OTHER_CK), BAD_TOKEN,
                                "INVALID_GRANT")
        self.assert_oauth_error(self.refresh_grant(t["access_token"]), BAD_TOKEN, "INVALID_GRANT")
        self.assert_oauth_error(self.refresh_grant("00D000000000001!nope"), BAD_TOKEN, "INVALID_GRANT")
        self.assert_entry(None, "INVALID_GRANT", "Failed: Invalid Token")
        self.assert_oauth_error(self.refresh_grant(t["refresh_token"], client_id="nope"), BAD_CLIENT_ID,
                                "INVALID_CLIENT_ID")
        self.assert_oauth_error(self.token({"grant_type": "refresh_token", "client_id": CK}),
                                ("invalid_request", "missing parameter: refresh_token"), "INVALID_REQUEST")

    def test_code_grant_errors(self):
        cases = (
            ("wrong client secret", {"client_secret": "x"}, BAD_SECRET, "INVALID_CLIENT",
             "Failed: Invalid client credentials", True),
            ("unknown client_id", {"client_id": "nope"}, BAD_CLIENT_ID, "INVALID_CLIENT_ID",
             "Failed: Invalid client identifier", True),
            ("code of another client", {"client_id": OTHER_CK, "client_secret": OTHER_CS}, BAD_TOKEN,
             "INVALID_GRANT", "Failed: Invalid Token", False),
            ("another redirect_uri", {"redirect_uri": OTHER_CALLBACK},
             ("redirect_uri_mismatch", "redirect_uri must match configuration"), "REDIRECT_URI_MISMATCH",
             "Failed: Invalid Callback URL", False),
        )
        for what, change, error, reason, status, code_survives in cases:
            with self.subTest(what):
                code = self.authorize("user@acme.test", "User-123")
                args = {"code": code, **change}
                self.assert_oauth_error(self.code_grant(**args), error, reason)
                user = "user@acme.test" if reason == "REDIRECT_URI_MISMATCH" else None
                self.assert_entry(user, reason, status)
                # A refused client never touched the code; a code presented by
                # the wrong client or to the wrong callback is spent.
                r = self.code_grant(code)
                if code_survives:
                    self.assert_token(r, "user@acme.test", "code")
                else:
                    self.assert_oauth_error(r, BAD_TOKEN, "INVALID_GRANT")
        with self.subTest("unknown code"):
            self.assert_oauth_error(self.code_grant("00D000000000001!nothing"), BAD_TOKEN, "INVALID_GRANT")
        for missing in ("code", "client_id", "client_secret", "redirect_uri"):
            with self.subTest("missing " + missing):
                fields = {"grant_type": "authorization_code", "code": "c", "client_id": CK, "client_secret": CS,
                          "redirect_uri": CALLBACK}
                del fields[missing]
                self.assert_oauth_error(self.token(fields), ("invalid_request", "missing parameter: " + missing),
                                        "INVALID_REQUEST")

    # -- the form, through the server

    def test_form_parsing(self):
        good = [("grant_type", "password"), ("client_id", CK), ("client_secret", CS),
                ("username", "admin@acme.test"), ("password", "Admin-123TKN")]
        with self.subTest("repeated key"):
            r = self.token(good + [("username", "admin@acme.test")])
            self.assert_oauth_error(r, ("invalid_request", "repeated parameter: username"), "INVALID_REQUEST")
            self.assert_entry("admin@acme.test", "INVALID_REQUEST", "Failed: Invalid request")
        with self.subTest("repeated grant_type"):
            self.assert_oauth_error(self.token(good + [("grant_type", "client_credentials")]),
                                    ("invalid_request", "repeated parameter: grant_type"), "INVALID_REQUEST")
        with self.subTest("repeated with an empty value"):
            self.assert_oauth_error(self.token(good + [("client_secret", "")]),
                                    ("invalid_request", "repeated parameter: client_secret"), "INVALID_REQUEST")
        with self.subTest("a key in the query and the body"):
            self.assert_oauth_error(self.token(good, query="?client_id=" + CK),
                                    ("invalid_request", "repeated parameter: client_id"), "INVALID_REQUEST")
        with self.subTest("a repeated unknown key is refused too"):
            self.assert_oauth_error(self.token(good + [("x", "1"), ("x", "2")]),
                                    ("invalid_request", "repeated parameter: x"), "INVALID_REQUEST")
        with self.subTest("bad escape"):
            self.assert_oauth_error(self.token(form(good) + "&x=%zz"),
                                    ("invalid_request", "malformed request body"), "INVALID_REQUEST")
            self.assert_entry(None, "INVALID_REQUEST", "Failed: Invalid request")
        with self.subTest("encoded NUL"):
            self.assert_oauth_error(self.token(form(good) + "&x=a%00b"),
                                    ("invalid_request", "malformed request body"), "INVALID_REQUEST")
        with self.subTest("encoded names and values"):
            body = ("grant%5Ftype=password&client_id=ck%2Dpartner&client_secret=cs-partner"
                    "&username=admin%40acme.test&password=Admin%2D123TKN")
            self.assert_token(self.token(body), "admin@acme.test", "password")
        with self.subTest("'+' is a space"):
            r = self.token(form(good[:4]) + "&password=Admin+123TKN")
            self.assert_oauth_error(r, AUTH_FAILURE, "INVALID_LOGIN")
        with self.subTest("charset parameter on the content type"):
            self.assert_token(self.token(good, content_type=FORM + "; charset=UTF-8"), "admin@acme.test",
                              "password")
        with self.subTest("parameters in the query string of a POST"):
            self.assert_token(self.token("", query="?" + form(good)), "admin@acme.test", "password")
        with self.subTest("a JSON body is not read: grant type not supported"):
            r = self.token(json.dumps(dict(good)), content_type="application/json")
            self.assert_oauth_error(r, BAD_GRANT_TYPE, "UNSUPPORTED_GRANT_TYPE")
        with self.subTest("a form without its Content-Type is not read either"):
            self.assert_oauth_error(self.token(good, content_type=None), BAD_GRANT_TYPE, "UNSUPPORTED_GRANT_TYPE")
        with self.subTest("too many pairs"):
            many = good + [(f"k{i}", "v") for i in range(64)]
            self.assert_oauth_error(self.token(many), ("invalid_request", "too many parameters"),
                                    "INVALID_REQUEST")
        with self.subTest("body over 64 KiB"):
            self.assert_oauth_error(self.token(form(good) + "&pad=" + "a" * 65536),
                                    ("invalid_request", "request body too large"), "INVALID_REQUEST")

    def test_token_endpoint_takes_post_only(self):
        for method in ("GET", "PUT", "DELETE"):
            with self.subTest(method):
                r = request(self.server, method, TOKEN + "?" + form({"grant_type": "password"}))
                self.assert_oauth_error(r, ("invalid_request", "must use HTTP POST"), "INVALID_REQUEST", status=405)
                self.assertEqual(r.headers.get("allow"), "POST", r)
                self.assert_entry(None, "INVALID_REQUEST", "Failed: Invalid HTTP method",
                                  endpoint=f"{method} {TOKEN}")

    # -- revocation

    def test_revoke_ends_a_token(self):
        for how in ("POST", "GET"):
            with self.subTest(how):
                t = self.assert_token(self.password_grant("admin@acme.test", "Admin-123TKN"), "admin@acme.test",
                                      "password")
                self.assertEqual(self.rest(t["access_token"]).status, 200)
                if how == "POST":
                    r = request(self.server, "POST", REVOKE, form({"token": t["access_token"]}),
                                {"Content-Type": FORM})
                else:
                    r = request(self.server, "GET", REVOKE + "?" + form({"token": t["access_token"]}))
                self.assertEqual((r.status, r.body), (200, ""), r)
                self.assertEqual(r.headers.get("cache-control"), "no-store", r)
                # Not a login: the request is one allowed entry without a user.
                self.assert_entry(None, "ALLOWED", "Success", endpoint=f"{how} {REVOKE}")
                self.assert_session_dead(t["access_token"])
                # Revoking it again: it is unknown now.
                again = request(self.server, "POST", REVOKE, form({"token": t["access_token"]}),
                                {"Content-Type": FORM})
                self.assertEqual(again.status, 400, again)
                self.assertEqual(again.json(), UNSUPPORTED_TOKEN, again)
                self.assertEqual(again.headers.get("content-type"), "application/json;charset=UTF-8", again)
                self.assertEqual(again.headers.get("cache-control"), "no-store", again)

    def test_revoking_a_refresh_token_ends_its_access_tokens(self):
        t = self.assert_token(self.code_grant(self.authorize("admin@acme.test", "Admin-123")), "admin@acme.test",
                              "code")
        t2 = self.assert_token(self.refresh_grant(t["refresh_token"]), "admin@acme.test", "refresh")
        other = self.assert_token(self.password_grant("admin@acme.test", "Admin-123TKN"), "admin@acme.test",
                                  "password")
        r = request(self.server, "POST", REVOKE, form({"token": t["refresh_token"]}), {"Content-Type": FORM})
        self.assertEqual((r.status, r.body), (200, ""), r)
        self.assert_session_dead(t["access_token"])
        self.assert_session_dead(t2["access_token"])
        self.assert_oauth_error(self.refresh_grant(t["refresh_token"]), BAD_TOKEN, "INVALID_GRANT")
        # A session of another login is not touched.
        self.assertEqual(self.rest(other["access_token"]).status, 200)

    def test_revoke_errors(self):
        for what, r in (
                ("unknown token", request(self.server, "POST", REVOKE, form({"token": "00D000000000001!x"}),
                                          {"Content-Type": FORM})),
                ("no token", request(self.server, "POST", REVOKE, "", {"Content-Type": FORM})),
                ("empty token", request(self.server, "GET", REVOKE + "?token="))):
            with self.subTest(what):
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json(), UNSUPPORTED_TOKEN, r)
                self.assertEqual(r.headers.get("cache-control"), "no-store", r)
        r = request(self.server, "POST", REVOKE, "token=a&token=b", {"Content-Type": FORM})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"error": "invalid_request", "error_description": "repeated parameter: token"})
        r = request(self.server, "PUT", REVOKE)
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers.get("allow"), "GET, POST", r)

    # -- userinfo and the identity URL

    def login(self, username="admin@acme.test", password="Admin-123TKN"):
        return self.assert_token(self.password_grant(username, password), username, "password")["access_token"]

    def expected_urls(self, user_id, version="{version}"):
        inst = self.instance_url()
        data = f"{inst}/services/data/v{version}"
        return {"enterprise": f"{inst}/services/Soap/c/{version}/{ORG15}",
                "metadata": f"{inst}/services/Soap/m/{version}/{ORG15}",
                "partner": f"{inst}/services/Soap/u/{version}/{ORG15}",
                "rest": f"{data}/", "sobjects": f"{data}/sobjects/", "search": f"{data}/search/",
                "query": f"{data}/query/", "recent": f"{data}/recent/",
                "tooling_soap": f"{inst}/services/Soap/T/{version}/{ORG15}", "tooling_rest": f"{data}/tooling/",
                "profile": f"{inst}/{user_id}", "feeds": f"{data}/chatter/feeds",
                "groups": f"{data}/chatter/groups", "users": f"{data}/chatter/users",
                "feed_items": f"{data}/chatter/feed-items", "feed_elements": f"{data}/chatter/feed-elements",
                "custom_domain": inst}

    def test_userinfo_answers_the_openid_shape(self):
        token = self.login()
        uid = self.user_id("admin@acme.test")
        inst = self.instance_url()
        r = self.userinfo(token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json;charset=UTF-8", r)
        info = r.json()
        self.assertEqual(list(info), USERINFO_KEYS, r)
        self.assertEqual(info, {
            "sub": f"{inst}/id/{ORG_ID}/{uid}", "user_id": uid, "organization_id": ORG_ID,
            "preferred_username": "admin@acme.test", "nickname": "admin", "name": "admin",
            "email": "admin@acme.test", "email_verified": True, "given_name": None, "family_name": "admin",
            "zoneinfo": "America/Los_Angeles",
            "photos": {"picture": f"{inst}/profilephoto/005/F", "thumbnail": f"{inst}/profilephoto/005/T"},
            "profile": f"{inst}/{uid}", "picture": f"{inst}/profilephoto/005/F", "address": {},
            "is_salesforce_integration_user": False, "urls": self.expected_urls(uid), "active": True,
            "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
            "updated_at": "2024-01-01T00:00:00Z", "is_app_installed": True})
        self.assert_entry("admin@acme.test", "ALLOWED", "Success", endpoint=f"GET {USERINFO}")
        # ?version= fills the placeholders: latest is the newest served.
        for query, version in (("?version=latest", "67.0"), ("?version=64.0", "64.0"),
                               ("?version=12.0", "{version}")):
            with self.subTest(query):
                got = self.userinfo(token, query).json()["urls"]
                self.assertEqual(got, self.expected_urls(uid, version))
        # POST and ?oauth_token= work too [SF].
        r = request(self.server, "POST", USERINFO, headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 200, r)
        r = request(self.server, "GET", USERINFO + "?" + form({"oauth_token": token}))
        self.assertEqual(r.json()["user_id"], uid, r)
        r = request(self.server, "DELETE", USERINFO, headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 405, r)

    def test_userinfo_and_identity_refuse_bad_tokens(self):
        uid = self.user_id("admin@acme.test")
        for path in (USERINFO, f"/id/{ORG_ID}/{uid}"):
            for what, headers in (("no token", {}), ("unknown token", {"Authorization": "Bearer 00D0!bad"}),
                                  ("not a bearer", {"Authorization": "Basic eDp5"})):
                with self.subTest(path=path, what=what):
                    r = request(self.server, "GET", path, headers=headers)
                    self.assert_bad_oauth_token(r)
                    e = self.history()[0]
                    self.assertEqual((e["reason"], e["outcome"], e["endpoint"]),
                                     ("INVALID_SESSION", "denied", f"GET {path}"), e)

    def test_identity_url_answers_the_identity_shape(self):
        token = self.login()
        uid = self.user_id("admin@acme.test")
        inst = self.instance_url()
        expected = {
            "id": f"{inst}/id/{ORG_ID}/{uid}", "asserted_user": True, "user_id": uid, "organization_id": ORG_ID,
            "username": "admin@acme.test", "nick_name": "admin", "display_name": "admin",
            "email": "admin@acme.test", "email_verified": True, "first_name": None, "last_name": "admin",
            "timezone": "America/Los_Angeles",
            "photos": {"picture": f"{inst}/profilephoto/005/F", "thumbnail": f"{inst}/profilephoto/005/T"},
            "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": None, "addr_zip": None,
            "mobile_phone": None, "mobile_phone_verified": False, "is_lightning_login_user": False,
            "status": {"created_date": None, "body": None}, "urls": self.expected_urls(uid), "active": True,
            "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": -28800000,
            "last_modified_date": "2024-01-01T00:00:00.000+0000", "is_app_installed": True}
        # 18- and 15-character ids, with or without a trailing slash; the path
        # of the token answer's "id" as it is.
        for path in (f"/id/{ORG_ID}/{uid}", f"/id/{ORG15}/{uid[:15]}", f"/id/{ORG_ID}/{uid}/",
                     f"/id/{ORG15}/{uid}", f"/id/{ORG15}{ORG_ID[15:].lower()}/{uid}"):
            with self.subTest(path):
                r = request(self.server, "GET", path, headers={"Authorization": f"Bearer {token}"})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.headers.get("content-type"), "application/json;charset=UTF-8", r)
                self.assertEqual(list(r.json()), IDENTITY_KEYS, r)
                self.assertEqual(r.json(), expected, r)
                self.assert_entry("admin@acme.test", "ALLOWED", "Success", endpoint=f"GET {path}")
        r = request(self.server, "GET", f"/id/{ORG_ID}/{uid}?version=latest",
                    headers={"Authorization": f"OAuth {token}"})
        self.assertEqual(r.json()["urls"], self.expected_urls(uid, "67.0"), r)
        # Another user of the org, seen by an internal user with API access [SF].
        api_id = self.user_id("api@acme.test")
        r = request(self.server, "GET", f"/id/{ORG_ID}/{api_id}", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["username"], r.json()["asserted_user"]), ("api@acme.test", False), r)

    def test_identity_url_with_ids_of_nobody(self):
        token = self.login()
        uid = self.user_id("admin@acme.test")
        for what, path in (("another org", f"/id/00D000000000002EAA/{uid}"),
                           ("a user nobody is", f"/id/{ORG_ID}/005000000000099AAA"),
                           ("a wrong checksum", f"/id/{ORG_ID}/{uid[:15]}ZZZ"),
                           ("not an id", f"/id/{ORG_ID}/hello"),
                           ("no user id", f"/id/{ORG_ID}"),
                           ("one segment too many", f"/id/{ORG_ID}/{uid}/x")):
            with self.subTest(what):
                r = request(self.server, "GET", path, headers={"Authorization": f"Bearer {token}"})
                self.assertEqual((r.status, r.body), (404, "Bad_Id"), r)

    def test_history_of_logins_names_user_reason_and_status(self):
        """The entries, newest first, of one login of each kind and outcome."""
        self.password_grant("user@acme.test", "User-123")
        self.password_grant("user@acme.test", "wrong")
        self.password_grant("nobody@acme.test", "x")
        self.jwt_grant(make_jwt(claims(sub="user@acme.test")))
        self.token({"grant_type": "client_credentials", "client_id": CK, "client_secret": "x"})
        got = [(e["username"], e["outcome"], e["reason"], e["status"], e["endpoint"])
               for e in self.history("?limit=5")]
        self.assertEqual(got, [
            (None, "denied", "INVALID_CLIENT", "Failed: Invalid client credentials", ENTRY_TOKEN),
            ("user@acme.test", "allowed", "ALLOWED", "Success", ENTRY_TOKEN),
            ("nobody@acme.test", "denied", "INVALID_LOGIN", "Invalid login", ENTRY_TOKEN),
            ("user@acme.test", "denied", "INVALID_LOGIN", "Invalid password", ENTRY_TOKEN),
            ("user@acme.test", "allowed", "ALLOWED", "Success", ENTRY_TOKEN)])
        # The username filter finds a user's logins, whatever their outcome.
        mine = self.history("?username=user@acme.test&limit=3")
        self.assertEqual([e["status"] for e in mine], ["Success", "Invalid password", "Success"])


# ---------------------------------------------------------------- a sandbox org

def sandbox_fixture():
    """A sandbox org whose Partner app has no runAs user, and a password full of form syntax."""
    org = org_fixture()
    org["organization"]["isSandbox"] = True
    for a in org["connectedApps"]:
        a.pop("runAs", None)
    for u in org["users"]:
        if u["username"] == "user@acme.test":
            u["password"] = "P+a%s&s=w rd"
    return org


class SandboxOrgTest(OAuthServerTestCase):
    fixture = staticmethod(sandbox_fixture)

    def test_jwt_audience_of_a_sandbox_is_test_salesforce_com(self):
        t = self.assert_token(self.jwt_grant(make_jwt(claims(aud="https://test.salesforce.com"))), "api@acme.test",
                              "jwt")
        self.assertEqual(self.rest(t["access_token"]).status, 200)
        self.assert_oauth_error(self.jwt_grant(make_jwt(claims(aud="https://login.salesforce.com"))),
                                BAD_ASSERTION, "INVALID_ASSERTION")
        self.assert_entry("api@acme.test", "INVALID_ASSERTION", "Failed: Audience Invalid")
        # The emulator's own host stays good on a sandbox too.
        self.assert_token(self.jwt_grant(make_jwt(claims(aud=self.instance_url()))), "api@acme.test", "jwt")

    def test_client_credentials_without_run_as_user(self):
        r = self.token({"grant_type": "client_credentials", "client_id": CK, "client_secret": CS})
        self.assert_oauth_error(r, NO_RUN_AS, "NO_CLIENT_CREDENTIALS_USER")
        self.assert_entry(None, "NO_CLIENT_CREDENTIALS_USER", "Failed: No client credentials user")

    def test_percent_encoded_password_with_form_syntax(self):
        password = "P+a%s&s=w rd"
        # urlencode: '+' -> %2B, '%' -> %25, '&' -> %26, '=' -> %3D, ' ' -> '+'.
        self.assert_token(self.password_grant("user@acme.test", password), "user@acme.test", "password")
        body = ("grant_type=password&client_id=ck-partner&client_secret=cs-partner&username=user%40acme.test"
                "&password=P%2Ba%25s%26s%3Dw%20rd")
        self.assert_token(self.token(body), "user@acme.test", "password")
        # The same characters unencoded mean something else: '+' a space,
        # '&' a new pair, '%s&' a bad escape.
        for raw, error in (("P+a%25s%26s%3Dw+rd", AUTH_FAILURE),
                           ("P%2Ba%25s&s=w+rd", AUTH_FAILURE),
                           ("P%2Ba%s%26s%3Dw+rd", ("invalid_request", "malformed request body"))):
            with self.subTest(raw):
                body = ("grant_type=password&client_id=ck-partner&client_secret=cs-partner"
                        "&username=user%40acme.test&password=" + raw)
                self.assert_oauth_error(self.token(body), error)


# ---------------------------------------------------------------- sessions that expire

class SessionTimeoutTest(OAuthServerTestCase):
    fixture = staticmethod(org_fixture)
    server_args = ("--session-timeout", "1")

    def test_session_expires_after_the_timeout_of_inactivity(self):
        token = self.assert_token(self.password_grant("admin@acme.test", "Admin-123TKN"), "admin@acme.test",
                                  "password")["access_token"]
        # Each use resets the timer: four uses 0.6 s apart span 2.4 s > 1 s.
        for _ in range(4):
            time.sleep(0.6)
            r = self.rest(token)
            self.assertEqual(r.status, 200, r)
        time.sleep(1.3)
        r = self.rest(token)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "INVALID_SESSION", r)
        e = self.history()[0]
        self.assertEqual((e["username"], e["outcome"], e["reason"]), (None, "denied", "INVALID_SESSION"), e)
        self.assert_bad_oauth_token(self.userinfo(token))

    def test_userinfo_resets_the_timer_too(self):
        token = self.assert_token(self.password_grant("admin@acme.test", "Admin-123TKN"), "admin@acme.test",
                                  "password")["access_token"]
        for _ in range(3):
            time.sleep(0.6)
            self.assertEqual(self.userinfo(token).status, 200)
        time.sleep(1.3)
        self.assert_bad_oauth_token(self.userinfo(token))


# ---------------------------------------------------------------- mutual authentication on the token endpoint

class MutualAuthLoginTest(OAuthServerTestCase):
    """mtls@acme.test has Enforce SSL/TLS Mutual Authentication (SPEC section 4)."""

    fixture = staticmethod(org_fixture)

    @classmethod
    def prepare(cls):
        cls.demo = Cert(os.path.join(cls.server.state, "clients", "demo-client"))
        cls.stranger = cls.server.issue("not-uploaded")

    def assert_certificate_page(self, r):
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "NO_CLIENT_CERTIFICATE", r)
        self.assertIn("<title>Certificate Error</title>", r.body, r)
        self.assertIn("Client certificate error:<i>No client certificate provided.</i>", r.body, r)

    def test_standard_listener_login_succeeds_and_use_fails(self):
        t = self.assert_token(self.password_grant("mtls@acme.test", "Mtls-123"), "mtls@acme.test", "password")
        self.assert_entry("mtls@acme.test", "ALLOWED", "Success")
        r = self.rest(t["access_token"])
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "STANDARD_PORT", r)
        self.assertEqual(r.json(), [{"message": "This session could not be mutually authenticated for the use "
                                                "with REST API", "errorCode": "MUTUAL_AUTHENTICATION_FAILED"}])
        # The same session on the mTLS listener with the uploaded certificate works.
        self.assertEqual(self.rest(t["access_token"], listener="mtls", cert=self.demo).status, 200)

    def test_mtls_listener_without_certificate_gets_the_certificate_page(self):
        for what, send in (("password", lambda: self.password_grant("mtls@acme.test", "Mtls-123", listener="mtls")),
                           ("client credentials", lambda: self.token(
                               {"grant_type": "client_credentials", "client_id": CK, "client_secret": CS},
                               listener="mtls")),
                           ("jwt", lambda: self.jwt_grant(make_jwt(claims(sub="mtls@acme.test")), listener="mtls"))):
            with self.subTest(what):
                self.assert_certificate_page(send())
                e = self.assert_entry("mtls@acme.test", "NO_CLIENT_CERTIFICATE", MUTUAL, listener="mtls")
                self.assertIsNone(e["certificate"], e)

    def test_mtls_listener_with_certificate_not_uploaded(self):
        r = self.password_grant("mtls@acme.test", "Mtls-123", listener="mtls", cert=self.stranger)
        self.assert_oauth_error(r, MUTUAL_FAILED, "CERTIFICATE_NOT_UPLOADED")
        e = self.assert_entry("mtls@acme.test", "CERTIFICATE_NOT_UPLOADED", MUTUAL, listener="mtls")
        self.assertEqual(e["certificate"]["fingerprintSha256"], self.stranger.fingerprint, e)
        # Wrong credentials are still wrong credentials first (row 4 before row 9).
        r = self.password_grant("mtls@acme.test", "nope", listener="mtls", cert=self.stranger)
        self.assert_oauth_error(r, AUTH_FAILURE, "INVALID_LOGIN")

    def test_mtls_listener_with_the_demo_certificate(self):
        for what, send, kind in (
                ("password", lambda: self.password_grant("mtls@acme.test", "Mtls-123", listener="mtls",
                                                         cert=self.demo), "password"),
                ("client credentials", lambda: self.token(
                    {"grant_type": "client_credentials", "client_id": CK, "client_secret": CS}, listener="mtls",
                    cert=self.demo), "client_credentials"),
                ("jwt, aud the mTLS listener", lambda: self.jwt_grant(
                    make_jwt(claims(sub="mtls@acme.test", aud=f"https://localhost:{self.server.mtls_port}")),
                    listener="mtls", cert=self.demo), "jwt")):
            with self.subTest(what):
                t = self.assert_token(send(), "mtls@acme.test", kind)
                e = self.assert_entry("mtls@acme.test", "ALLOWED", "Success", listener="mtls")
                self.assertEqual(e["certificate"]["fingerprintSha256"], self.demo.fingerprint, e)
                self.assertEqual(self.rest(t["access_token"], listener="mtls", cert=self.demo).status, 200)
                info = self.userinfo(t["access_token"], listener="mtls", cert=self.demo)
                self.assertEqual(info.json()["preferred_username"], "mtls@acme.test", info)

    def test_users_without_enforcement_log_in_on_either_listener(self):
        for listener, cert in (("mtls", None), ("mtls", self.stranger), ("mtls", self.demo), ("standard", None)):
            with self.subTest(listener=listener, cert=cert and cert.crt):
                t = self.assert_token(self.password_grant("api@acme.test", "Api-123", listener=listener, cert=cert),
                                      "api@acme.test", "password")
                self.assertEqual(self.rest(t["access_token"], listener=listener, cert=cert).status, 200)


if __name__ == "__main__":
    unittest.main()
