"""The pages a browser sees (SPEC section 5's UI, section 4 rows 3, 4, 7, 8
and 10 for the UI): the login form at /, /home/home.jsp, /secur/frontdoor.jsp
and the web-server flow's /services/oauth2/authorize.

UiHttpTest drives them with a plain HTTPS client (no redirects followed) and
checks status, headers, cookies, the parsed page and the login-history entry
of each request. UiBrowserTest does the same journeys in headless Chromium
through chromedriver (tests/e2e/webdriver.py); it is skipped, saying why,
only when /usr/bin/chromium or /usr/bin/chromedriver is missing (the Debian
packages chromium and chromium-driver, which scripts/install-deps installs).
"""

import html.parser
import json
import os
import re
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_ui.py`

import webdriver
import sfmtls_e2e as e2e
from sfmtls_e2e import Cert, ServerTestCase, admin

ORG_ID = "00D000000000001EAA"
TOKEN_RE = re.compile(r"00D000000000001![A-Za-z0-9._]{86}")
HTML_TYPE = "text/html;charset=UTF-8"
NO_CACHE = "no-cache, must-revalidate, max-age=0, no-store, private"
COOKIE_ATTRS = "; Path=/; Secure; HttpOnly; SameSite=Lax"
LOGIN_ERROR = ("Please check your username and password. If you still can't log in, contact your Salesforce "
               "administrator.")
INSUFFICIENT = ("You do not have the level of access necessary to perform the operation you requested. "
                "Please contact the owner of the record or your administrator if access is necessary.")
CALLBACK = "http://localhost:1717/callback"
AUTHORIZE = "/services/oauth2/authorize"
ERR_CLIENT_ID = "error=invalid_client_id&error_description=client%20identifier%20invalid"
ERR_REDIRECT = "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
MUTUAL = "Mutual authentication failed"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# ---------------------------------------------------------------- pages


class Page(html.parser.HTMLParser):
    """A parsed page: title, the text of each element with an id, the forms
    and their fields, every URL attribute, and the tag structure."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.doctype, self.title, self.lang = None, None, None
        self.by_id, self.forms, self.urls, self.tags = {}, [], [], []
        self.errors, self._stack, self._text_of = [], [], []
        self.feed(text)
        self.close()
        if self._stack:
            self.errors.append(f"unclosed: {[t for t, _ in self._stack]}")

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        self.tags.append(tag)
        for k in ("href", "src", "action"):
            if k in a:
                self.urls.append((tag, k, a[k]))
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "form":
            self.forms.append({"attrs": a, "fields": []})
        if tag == "input":
            if not self.forms:
                self.errors.append(f"input outside a form: {a}")
            else:
                self.forms[-1]["fields"].append(a)
        if tag in VOID:
            return
        self._stack.append((tag, a.get("id")))
        self._text_of.append([])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self._stack or self._stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self._stack[-1][0] if self._stack else 'nothing'}")
            return
        _, ident = self._stack.pop()
        text = "".join(self._text_of.pop())
        if self._text_of:
            self._text_of[-1].append(text)
        if ident:
            self.by_id[ident] = " ".join(text.split())
        if tag == "title":
            self.title = text

    def handle_data(self, data):
        if self._text_of:
            self._text_of[-1].append(data)

    def form(self, index=0):
        """(action, method, {name: value} of the fields, {name: type})."""
        f = self.forms[index]
        fields = {x.get("name"): x.get("value", "") for x in f["fields"] if x.get("name")}
        types = {x.get("name"): x.get("type", "text") for x in f["fields"] if x.get("name")}
        return f["attrs"].get("action"), f["attrs"].get("method"), fields, types


class Answer(e2e.Answer):
    def page(self):
        return Page(self.body)


def fetch(server, method, path, form=None, headers=None, listener="standard", cert=None, body=None):
    """One request on a new connection; redirects are not followed. form: a
    dict or list of pairs sent as application/x-www-form-urlencoded."""
    hdrs = dict(headers or {})
    if form is not None:
        body = urllib.parse.urlencode(form)
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    a = e2e.https(server, method, path, body=body, headers=hdrs, listener=listener, cert=cert, timeout=30)
    a.__class__ = Answer
    return a


def query(params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def authorize_path(**params):
    base = {"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK}
    base.update(params)
    return AUTHORIZE + "?" + query({k: v for k, v in base.items() if v is not None})


class UiMixin:
    """Requests and checks shared by the HTTP and the browser tests (self.server)."""

    def history(self, **filters):
        q = query({"limit": 20, **filters})
        status, _, data = admin(self.server, "GET", "/__admin/login-history?" + q)
        self.assertEqual(status, 200, data)
        return data

    def last_entry(self, endpoint, **filters):
        """The newest login-history entry for `endpoint` ("POST /")."""
        for e in self.history(**filters):
            if e["endpoint"] == endpoint:
                return e
        self.fail(f"no login-history entry for {endpoint} {filters}: {self.history()}")

    def assert_entry(self, endpoint, username, outcome, reason, status, cert=None, newest=True):
        """The login-history entry of the request just made: the newest of all
        (newest=False: of its endpoint, when a browser went on to other pages)."""
        if newest:
            e = self.history(limit=1)[0]
            self.assertEqual(e["endpoint"], endpoint, e)
        else:
            e = self.last_entry(endpoint)
        expected = {"listener": e["listener"], "username": username, "endpoint": endpoint, "outcome": outcome,
                    "reason": reason, "status": status}
        got = {k: e[k] for k in expected}
        self.assertEqual(got, expected, e)
        if cert is None:
            self.assertIsNone(e["certificate"], e)
        else:
            self.assertEqual(e["certificate"], {"subject": cert.subject, "issuer": cert.issuer,
                                                "fingerprintSha256": cert.fingerprint}, e)
        return e

    def user_id(self, username):
        status, _, data = admin(self.server, "GET", "/__admin/users/" + username)
        self.assertEqual(status, 200, data)
        return data["id"]

    def password_grant(self, username, password, listener="standard", cert=None):
        """An access token from the OAuth password grant (the Partner app)."""
        r = fetch(self.server, "POST", "/services/oauth2/token", listener=listener, cert=cert,
                  form={"grant_type": "password", "client_id": "ck-partner", "client_secret": "cs-partner",
                        "username": username, "password": password})
        self.assertEqual(r.status, 200, r)
        return json.loads(r.body)["access_token"]

    def soap_login(self, username, password):
        """A session id from the SOAP partner login."""
        envelope = ('<?xml version="1.0" encoding="utf-8"?>'
                    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                    'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login>'
                    f'<urn:username>{username}</urn:username><urn:password>{password}</urn:password>'
                    '</urn:login></soapenv:Body></soapenv:Envelope>')
        r = fetch(self.server, "POST", "/services/Soap/u/64.0", body=envelope,
                  headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"})
        self.assertEqual(r.status, 200, r)
        m = re.search(r"<sessionId>([^<]+)</sessionId>", r.body)
        self.assertIsNotNone(m, r)
        return m.group(1)

    def redeem(self, code, expect=200):
        """The token endpoint's authorization_code grant for `code`: its JSON."""
        r = fetch(self.server, "POST", "/services/oauth2/token",
                  form={"grant_type": "authorization_code", "code": code, "client_id": "ck-partner",
                        "client_secret": "cs-partner", "redirect_uri": CALLBACK})
        self.assertEqual(r.status, expect, r)
        return json.loads(r.body)

    def assert_code_redirect(self, location, state):
        """`location` is the callback with a fresh code (and `state`); returns the code."""
        self.assertTrue(location.startswith(CALLBACK + "?code="), location)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query, keep_blank_values=True)
        expected_keys = {"code", "state"} if state is not None else {"code"}
        self.assertEqual(set(q), expected_keys, location)
        if state is not None:
            self.assertEqual(q["state"], [state], location)
        self.assertEqual(len(q["code"]), 1, location)
        self.assertRegex(q["code"][0], TOKEN_RE, location)
        return q["code"][0]

    def assert_token_answer(self, tok, username):
        self.assertRegex(tok.get("access_token", ""), TOKEN_RE, tok)
        self.assertRegex(tok.get("refresh_token", ""), TOKEN_RE, tok)
        self.assertEqual(tok.get("token_type"), "Bearer", tok)
        self.assertEqual(tok.get("id"), f"https://localhost:{self.server.std_port}/id/{ORG_ID}/"
                         f"{self.user_id(username)}", tok)


# ---------------------------------------------------------------- plain HTTP


class UiHttpTest(UiMixin, ServerTestCase):
    """Every page, status, header, cookie and redirect, with a plain client."""

    @classmethod
    def prepare(cls):
        # The fixture's "demo" certificate, issued by the dev CA and uploaded at first start.
        cls.demo = Cert(os.path.join(cls.server.state, "clients", "demo-client"))

    # -- helpers

    def assert_html(self, r, status, msg=""):
        """An HTML answer of ours: status, type, no caching, a well-formed
        HTML5 document with nothing loaded from elsewhere and no script."""
        msg = f"{msg} {r}"
        self.assertEqual(r.status, status, msg)
        self.assertEqual(r.headers.get("content-type"), HTML_TYPE, msg)
        self.assertEqual(r.headers.get("cache-control"), NO_CACHE, msg)
        p = r.page()
        self.assertEqual(p.doctype, "DOCTYPE html", msg)
        self.assertEqual(p.lang, "en", msg)
        self.assertEqual(p.errors, [], msg)
        self.assertNotIn("script", p.tags, msg)
        for tag, attr, url in p.urls:
            self.assertTrue(url.startswith("/") and not url.startswith("//") or url == "data:,",
                            f"{tag} {attr}={url!r} {msg}")
        return p

    def assert_login_form(self, p, action="/", username="", hidden=None, error=False, msg=""):
        """The login form: its fields, hidden values and error text."""
        act, method, fields, types = p.form()
        self.assertEqual((act, method), (action, "post"), msg)
        self.assertEqual(p.title, "Login | Salesforce", msg)
        attrs = p.forms[0]["attrs"]
        self.assertEqual((attrs.get("id"), attrs.get("name")), ("login_form", "login"), msg)
        expected = {"un": username, "pw": "", "Login": "Log In", **(hidden or {})}
        self.assertEqual(fields, expected, msg)
        self.assertEqual(types["un"], "text", msg)
        self.assertEqual(types["pw"], "password", msg)
        self.assertEqual(types["Login"], "submit", msg)
        for name in hidden or {}:
            self.assertEqual(types[name], "hidden", msg)
        if error:
            self.assertEqual(p.by_id.get("error"), LOGIN_ERROR, msg)
        else:
            self.assertNotIn("error", p.by_id, msg)

    def login(self, username="admin@acme.test", password="Admin-123", listener="standard", cert=None, **extra):
        return fetch(self.server, "POST", "/", form={"un": username, "pw": password, **extra}, listener=listener,
                     cert=cert)

    def sid_of(self, r):
        """The session of a successful login's Set-Cookie."""
        self.assertEqual(len(r.cookies), 1, r)
        m = re.fullmatch(r"sid=([^;]*)" + re.escape(COOKIE_ATTRS), r.cookies[0])
        self.assertIsNotNone(m, r)
        self.assertRegex(m.group(1), TOKEN_RE, r)
        return m.group(1)

    def home(self, sid=None, listener="standard", cert=None, cookie=None):
        headers = {"Cookie": cookie if cookie is not None else f"sid={sid}"} if (sid or cookie) else {}
        return fetch(self.server, "GET", "/home/home.jsp", headers=headers, listener=listener, cert=cert)

    def assert_home(self, r, username, profile, listener="standard", cert=None):
        p = self.assert_html(r, 200, "home")
        self.assertEqual(p.title, "Home | Salesforce", r)
        shown = {k: p.by_id.get(k) for k in ("username", "userId", "orgName", "orgId", "profile", "listener",
                                             "clientCertificate")}
        self.assertEqual(shown, {"username": username, "userId": self.user_id(username), "orgName": "Acme",
                                 "orgId": ORG_ID, "profile": profile, "listener": listener,
                                 "clientCertificate": f"presented: {cert.subject}" if cert else "none"}, r)
        act, method, fields, _ = p.form()
        self.assertEqual((act, method, fields["logout"]), ("/", "post", "1"), r)

    def assert_to_login(self, r, msg=""):
        """Row 3 for the UI: no live session goes back to the login page."""
        self.assertEqual(r.status, 302, f"{msg} {r}")
        self.assertEqual(r.headers.get("location"), "/", f"{msg} {r}")
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "INVALID_SESSION", f"{msg} {r}")
        self.assertEqual(r.cookies, [], f"{msg} {r}")

    def assert_insufficient(self, r):
        """Row 10: the Insufficient Privileges page."""
        self.assertEqual(r.status, 403, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "API_ONLY_USER", r)
        p = r.page()
        self.assertEqual(p.title, "Insufficient Privileges", r)
        self.assertIn(INSUFFICIENT, " ".join(r.body.split()), r)
        self.assertEqual(r.cookies, [], r)
        self.assertNotIn("location", r.headers, r)

    def assert_cert_error(self, r, reason, sentence=None):
        """Rows 7 and 8: the Certificate Error page."""
        self.assertEqual(r.status, 400, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), reason, r)
        self.assertIn("<title>Certificate Error</title>", r.body, r)
        self.assertIn("Client certificate error:<i>" + (sentence or ""), r.body, r)
        self.assertEqual(r.cookies, [], r)

    # -- GET /

    def test_login_page(self):
        r = fetch(self.server, "GET", "/")
        p = self.assert_html(r, 200)
        self.assert_login_form(p, msg=r)
        self.assertIn("<h1>Acme</h1>", r.body, r)  # the org's name
        self.assertEqual(r.cookies, [], r)
        self.assert_entry("GET /", None, "allowed", "ALLOWED", "Success")

    def test_login_page_keeps_start_url_escaped(self):
        start = '/x"><script>alert(1)</script>'
        r = fetch(self.server, "GET", "/?" + query({"startURL": start}))
        p = self.assert_html(r, 200)
        self.assert_login_form(p, hidden={"startURL": start}, msg=r)
        self.assertNotIn("<script", r.body, r)

    def test_head_of_login_page(self):
        r = fetch(self.server, "HEAD", "/")
        self.assertEqual((r.status, r.headers.get("content-type"), r.body), (200, HTML_TYPE, ""), r)

    # -- POST /

    def test_login_sets_the_session_cookie_and_goes_home(self):
        r = self.login()
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.headers.get("location"), "/home/home.jsp", r)
        self.assertEqual(r.headers.get("cache-control"), NO_CACHE, r)
        self.assertNotIn("x-sfmtls-reason", r.headers, r)
        sid = self.sid_of(r)
        self.assert_entry("POST /", "admin@acme.test", "allowed", "ALLOWED", "Success")

        home = self.home(sid)
        self.assert_home(home, "admin@acme.test", "System Administrator")
        self.assert_entry("GET /home/home.jsp", "admin@acme.test", "allowed", "ALLOWED", "Success")

    def test_login_is_case_insensitive_in_the_username(self):
        r = self.login("Admin@ACME.test")
        self.assertEqual(r.status, 302, r)
        self.assert_home(self.home(self.sid_of(r)), "admin@acme.test", "System Administrator")

    def test_login_takes_no_security_token(self):
        """UI logins take the password alone [SF]: the API's password + token is a wrong password here."""
        r = self.login(password="Admin-123TKN")
        self.assert_login_form(self.assert_html(r, 200), username="admin@acme.test", error=True, msg=r)
        self.assert_entry("POST /", "admin@acme.test", "denied", "INVALID_LOGIN", "Invalid password")

    def test_login_follows_local_start_urls_only(self):
        cases = (("/home/home.jsp?tab=1", "/home/home.jsp?tab=1"),
                 ("/secur/frontdoor.jsp", "/secur/frontdoor.jsp"),
                 ("/a b\"c", "/a%20b%22c"),
                 ("//evil.example/x", "/home/home.jsp"),
                 ("/\\evil.example", "/home/home.jsp"),
                 ("https://evil.example/", "/home/home.jsp"),
                 ("javascript:alert(1)", "/home/home.jsp"),
                 ("", "/home/home.jsp"))
        for start, location in cases:
            with self.subTest(start=start):
                r = self.login(startURL=start)
                self.assertEqual((r.status, r.headers.get("location")), (302, location), r)
                self.sid_of(r)

    def test_wrong_password_shows_the_error_on_the_login_page(self):
        r = self.login(password="wrong", startURL="/home/home.jsp?x=1")
        p = self.assert_html(r, 200)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "INVALID_LOGIN", r)
        self.assert_login_form(p, username="admin@acme.test", hidden={"startURL": "/home/home.jsp?x=1"},
                               error=True, msg=r)
        self.assertIn("<h1>Acme</h1>", r.body, r)
        self.assertEqual(r.cookies, [], r)
        self.assert_entry("POST /", "admin@acme.test", "denied", "INVALID_LOGIN", "Invalid password")

    def test_unknown_user_is_an_invalid_login_and_the_name_is_escaped(self):
        name = 'no"body<b>@acme.test'
        r = self.login(username=name)
        p = self.assert_html(r, 200)
        self.assert_login_form(p, username=name, error=True, msg=r)
        self.assertNotIn("<b>", r.body, r)
        self.assert_entry("POST /", name, "denied", "INVALID_LOGIN", "Invalid login")

    def test_inactive_user(self):
        status, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": False})
        self.assertEqual(status, 200, data)
        self.addCleanup(admin, self.server, "PATCH", "/__admin/users/user@acme.test", {"active": True})
        r = self.login("user@acme.test", "User-123")
        self.assert_login_form(self.assert_html(r, 200), username="user@acme.test", error=True, msg=r)
        self.assert_entry("POST /", "user@acme.test", "denied", "INVALID_LOGIN", "User is inactive")

    def test_user_without_api_enabled_may_use_the_ui(self):
        r = self.login("noapi@acme.test", "NoApi-123")
        self.assertEqual(r.status, 302, r)
        self.assert_home(self.home(self.sid_of(r)), "noapi@acme.test", "Read Only")

    def test_enforce_user_on_the_standard_listener_gets_the_certificate_error_page(self):
        """Row 7 before row 10: mtls@acme.test is API-only too, but the port decides first."""
        r = self.login("mtls@acme.test", "Mtls-123")
        self.assert_cert_error(r, "STANDARD_PORT")
        self.assert_entry("POST /", "mtls@acme.test", "denied", "STANDARD_PORT", MUTUAL)

    def test_enforce_user_on_the_mtls_listener_without_a_certificate(self):
        r = self.login("mtls@acme.test", "Mtls-123", listener="mtls")
        self.assert_cert_error(r, "NO_CLIENT_CERTIFICATE", "No client certificate provided.</i>")
        self.assert_entry("POST /", "mtls@acme.test", "denied", "NO_CLIENT_CERTIFICATE", MUTUAL)

    def test_enforce_user_with_the_uploaded_certificate_is_still_api_only(self):
        r = self.login("mtls@acme.test", "Mtls-123", listener="mtls", cert=self.demo)
        self.assert_insufficient(r)
        self.assert_entry("POST /", "mtls@acme.test", "denied", "API_ONLY_USER", "Failed: API-only user",
                          cert=self.demo)

    def test_api_only_user_gets_insufficient_privileges(self):
        r = self.login("api@acme.test", "Api-123")
        self.assert_insufficient(r)
        self.assert_entry("POST /", "api@acme.test", "denied", "API_ONLY_USER", "Failed: API-only user")

    def test_login_on_the_mtls_listener_with_a_certificate(self):
        r = self.login(listener="mtls", cert=self.demo)
        self.assertEqual(r.status, 302, r)
        sid = self.sid_of(r)
        self.assert_entry("POST /", "admin@acme.test", "allowed", "ALLOWED", "Success", cert=self.demo)
        self.assert_home(self.home(sid, listener="mtls", cert=self.demo), "admin@acme.test",
                         "System Administrator", listener="mtls", cert=self.demo)
        # The same session on the other listener, with no certificate.
        self.assert_home(self.home(sid), "admin@acme.test", "System Administrator")

    def test_malformed_and_repeated_form_fields(self):
        for body in ("un=%zz&pw=x", "un=admin%40acme.test&un=x&pw=Admin-123", "pw=a&pw=b&un=x"):
            with self.subTest(body=body):
                r = fetch(self.server, "POST", "/", body=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
                p = self.assert_html(r, 400)
                self.assertEqual(p.title, "Bad Request", r)
                self.assertEqual(r.cookies, [], r)

    def test_empty_form_is_an_invalid_login(self):
        r = fetch(self.server, "POST", "/", body="", headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assert_login_form(self.assert_html(r, 200), error=True, msg=r)

    # -- home and logout

    def test_home_without_a_session_goes_to_the_login_page(self):
        for label, cookie in (("no cookie", None), ("unknown", "sid=00D000000000001!nope"),
                              ("empty", "sid="), ("other name", "xsid=whatever"), ("huge", "sid=" + "a" * 500)):
            with self.subTest(label):
                self.assert_to_login(self.home(cookie=cookie), label)
                self.assert_entry("GET /home/home.jsp", None, "denied", "INVALID_SESSION",
                                  "Session expired or invalid")

    def test_home_reads_the_cookie_among_others(self):
        sid = self.sid_of(self.login())
        for cookie in (f"a=b; sid={sid}; c=d", f"xsid=bad;sid={sid}", f'sid="{sid}"', f"theme=dark;  sid={sid} "):
            with self.subTest(cookie=cookie):
                self.assert_home(self.home(cookie=cookie), "admin@acme.test", "System Administrator")

    def test_logout_ends_the_session(self):
        sid = self.sid_of(self.login())
        r = fetch(self.server, "POST", "/", form={"logout": "1"}, headers={"Cookie": f"sid={sid}"})
        self.assertEqual((r.status, r.headers.get("location")), (302, "/"), r)
        self.assertEqual(r.cookies, ["sid=; Max-Age=0" + COOKIE_ATTRS], r)
        self.assert_to_login(self.home(sid))

    # -- frontdoor.jsp

    def frontdoor(self, sid=None, ret=None, listener="standard", cert=None):
        params = {k: v for k, v in (("sid", sid), ("retURL", ret)) if v is not None}
        return fetch(self.server, "GET", "/secur/frontdoor.jsp?" + query(params), listener=listener, cert=cert)

    def assert_frontdoor_ok(self, sid, username, profile, ret=None, location="/home/home.jsp"):
        r = self.frontdoor(sid, ret)
        self.assertEqual((r.status, r.headers.get("location")), (302, location), r)
        self.assertEqual(r.cookies, [f"sid={sid}" + COOKIE_ATTRS], r)
        self.assertEqual(r.headers.get("cache-control"), NO_CACHE, r)
        self.assert_entry("GET /secur/frontdoor.jsp", username, "allowed", "ALLOWED", "Success")
        self.assert_home(self.home(sid), username, profile)

    def test_frontdoor_with_a_ui_session(self):
        sid = self.sid_of(self.login())
        self.assert_frontdoor_ok(sid, "admin@acme.test", "System Administrator", ret="/home/home.jsp?tab=1",
                                 location="/home/home.jsp?tab=1")

    def test_frontdoor_with_a_password_grant_token(self):
        tok = self.password_grant("admin@acme.test", "Admin-123TKN")
        self.assert_frontdoor_ok(tok, "admin@acme.test", "System Administrator")

    def test_frontdoor_with_a_soap_session(self):
        sid = self.soap_login("user@acme.test", "User-123")
        self.assert_frontdoor_ok(sid, "user@acme.test", "Standard User", ret="https://evil.example/")

    def test_frontdoor_without_a_live_session(self):
        for label, sid in (("none", None), ("empty", ""), ("unknown", "00D000000000001!nope")):
            with self.subTest(label):
                self.assert_to_login(self.frontdoor(sid), label)
                self.assert_entry("GET /secur/frontdoor.jsp", None, "denied", "INVALID_SESSION",
                                  "Session expired or invalid")

    def test_frontdoor_refuses_api_only_users(self):
        tok = self.password_grant("api@acme.test", "Api-123")
        self.assert_insufficient(self.frontdoor(tok))
        self.assert_entry("GET /secur/frontdoor.jsp", "api@acme.test", "denied", "API_ONLY_USER",
                          "Failed: API-only user")

    def test_frontdoor_for_an_enforce_user_on_the_standard_listener(self):
        tok = self.password_grant("mtls@acme.test", "Mtls-123")  # logins on port 443 succeed [obs]
        self.assert_cert_error(self.frontdoor(tok), "STANDARD_PORT")
        self.assert_entry("GET /secur/frontdoor.jsp", "mtls@acme.test", "denied", "STANDARD_PORT", MUTUAL)

    # -- authorize

    def test_authorize_shows_the_login_form_with_the_request(self):
        r = fetch(self.server, "GET", authorize_path(state="s 1&x"))
        p = self.assert_html(r, 200)
        hidden = {"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK, "state": "s 1&x"}
        self.assert_login_form(p, action=AUTHORIZE, hidden=hidden, msg=r)
        self.assertIn("<b>Partner</b>", r.body, r)
        self.assert_entry("GET " + AUTHORIZE, None, "allowed", "ALLOWED", "Success")

    def test_authorize_unknown_client(self):
        for label, client in (("unknown", "nope"), ("missing", None), ("empty", "")):
            with self.subTest(label):
                r = fetch(self.server, "GET", authorize_path(client_id=client))
                p = self.assert_html(r, 400)
                self.assertEqual(p.title, "OAuth Error", r)
                self.assertEqual(p.by_id.get("error"), ERR_CLIENT_ID, r)
                self.assertNotIn("location", r.headers, r)
                self.assert_entry("GET " + AUTHORIZE, None, "denied", "INVALID_CLIENT_ID",
                                  "Failed: Invalid client identifier")

    def test_authorize_redirect_uri_mismatch(self):
        for label, uri in (("other", "http://localhost:1717/other"), ("trailing slash", CALLBACK + "/"),
                           ("missing", None), ("attacker", "https://evil.example/cb")):
            with self.subTest(label):
                r = fetch(self.server, "GET", authorize_path(redirect_uri=uri, response_type="token"))
                p = self.assert_html(r, 400)
                self.assertEqual(p.by_id.get("error"), ERR_REDIRECT, r)
                self.assertNotIn("location", r.headers, r)
                self.assert_entry("GET " + AUTHORIZE, None, "denied", "REDIRECT_URI_MISMATCH",
                                  "Failed: Invalid Callback URL")

    def test_authorize_unsupported_response_type_goes_to_the_callback(self):
        err = "error=unsupported_response_type&error_description=response%20type%20not%20supported"
        for label, rt, state, location in (
                ("token", "token", "s 1/é", CALLBACK + "?" + err + "&state=s%201%2F%C3%A9"),
                ("missing", None, None, CALLBACK + "?" + err)):
            with self.subTest(label):
                r = fetch(self.server, "GET", authorize_path(response_type=rt, state=state))
                self.assertEqual((r.status, r.headers.get("location")), (302, location), r)
                self.assertEqual(r.cookies, [], r)
                self.assert_entry("GET " + AUTHORIZE, None, "denied", "UNSUPPORTED_RESPONSE_TYPE",
                                  "Failed: Unsupported response type")

    def authorize_login(self, username, password, state="xyz", **kw):
        form = {"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK, "un": username,
                "pw": password}
        if state is not None:
            form["state"] = state
        return fetch(self.server, "POST", AUTHORIZE, form=form, **kw)

    def test_authorize_login_redirects_with_a_code_that_redeems_once(self):
        r = self.authorize_login("admin@acme.test", "Admin-123", state="st/1 2")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.cookies, [], r)
        self.assertEqual(r.headers.get("cache-control"), NO_CACHE, r)
        code = self.assert_code_redirect(r.headers["location"], "st/1 2")
        self.assert_entry("POST " + AUTHORIZE, "admin@acme.test", "allowed", "ALLOWED", "Success")
        self.assert_token_answer(self.redeem(code), "admin@acme.test")
        self.assertEqual(self.redeem(code, expect=400).get("error"), "invalid_grant")

    def test_authorize_with_a_client_sized_state(self):
        # The callback URL with a code and a 32-character state (the size
        # OAuth client libraries generate) fits in Location.
        state = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3Jh"
        r = self.authorize_login("admin@acme.test", "Admin-123", state=state)
        self.assertEqual(r.status, 302, r)
        self.assert_code_redirect(r.headers["location"], state)

    def test_authorize_parameters_may_come_in_the_query_of_the_post(self):
        r = fetch(self.server, "POST", authorize_path(), form={"un": "user@acme.test", "pw": "User-123"})
        self.assertEqual(r.status, 302, r)
        self.assert_code_redirect(r.headers["location"], None)

    def test_authorize_post_without_credentials_shows_the_form(self):
        r = fetch(self.server, "POST", AUTHORIZE,
                  form={"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK})
        hidden = {"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK}
        self.assert_login_form(self.assert_html(r, 200), action=AUTHORIZE, hidden=hidden, msg=r)

    def test_authorize_wrong_password_keeps_the_request(self):
        r = self.authorize_login("admin@acme.test", "nope")
        p = self.assert_html(r, 200)
        hidden = {"response_type": "code", "client_id": "ck-partner", "redirect_uri": CALLBACK, "state": "xyz"}
        self.assert_login_form(p, action=AUTHORIZE, username="admin@acme.test", hidden=hidden, error=True, msg=r)
        self.assertEqual(r.headers.get("x-sfmtls-reason"), "INVALID_LOGIN", r)
        self.assert_entry("POST " + AUTHORIZE, "admin@acme.test", "denied", "INVALID_LOGIN", "Invalid password")

    def test_authorize_refuses_api_only_users(self):
        self.assert_insufficient(self.authorize_login("api@acme.test", "Api-123"))
        self.assert_entry("POST " + AUTHORIZE, "api@acme.test", "denied", "API_ONLY_USER", "Failed: API-only user")

    def test_authorize_for_an_enforce_user(self):
        self.assert_cert_error(self.authorize_login("mtls@acme.test", "Mtls-123"), "STANDARD_PORT")
        self.assert_entry("POST " + AUTHORIZE, "mtls@acme.test", "denied", "STANDARD_PORT", MUTUAL)
        self.assert_insufficient(self.authorize_login("mtls@acme.test", "Mtls-123", listener="mtls",
                                                      cert=self.demo))

    # -- methods

    def test_wrong_methods(self):
        for method, path, allow in (("PUT", "/", "GET, HEAD, POST"), ("DELETE", "/home/home.jsp", "GET, HEAD"),
                                    ("POST", "/home/home.jsp", "GET, HEAD"),
                                    ("POST", "/secur/frontdoor.jsp", "GET, HEAD"),
                                    ("PATCH", AUTHORIZE, "GET, HEAD, POST")):
            with self.subTest(method=method, path=path):
                r = fetch(self.server, method, path, body="")
                p = self.assert_html(r, 405)
                self.assertEqual(p.title, "Method Not Allowed", r)
                self.assertEqual(r.headers.get("allow"), allow, r)


# ---------------------------------------------------------------- the browser


@unittest.skipIf(webdriver.available(), f"browser tests skipped: {webdriver.available()}")
class UiBrowserTest(UiMixin, ServerTestCase):
    """The same journeys in headless Chromium."""

    browser = None

    @classmethod
    def prepare(cls):
        cls.browser = webdriver.Browser()
        cls.base = f"https://localhost:{cls.server.std_port}"

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser:
                cls.browser.close()
        finally:
            super().tearDownClass()

    def setUp(self):
        # A fresh browser state: no session cookie from an earlier test.
        self.b = self.browser
        self.b.get(self.base + "/__admin/health")
        self.b.delete_cookies()

    def explain_browser(self):
        try:
            return f"\nurl: {self.b.current_url()}\nsource:\n{self.b.source()[:3000]}"
        except webdriver.WebDriverError as e:
            return f"\n(browser: {e})"

    def wait_url(self, pred, what):
        url = self.b.wait_for(lambda: pred(self.b.current_url()) and self.b.current_url(), timeout=20)
        self.assertTrue(url, f"waiting for {what}" + self.explain_browser())
        return url

    def fill_login(self, username, password):
        self.b.wait_for(lambda: self.b.find("#username"))
        self.b.find("#username").clear().send_keys(username)
        self.b.find("#password").send_keys(password)
        self.b.find("#Login").click()

    def login(self, username, password):
        self.b.get(self.base + "/")
        self.assertEqual(self.b.title(), "Login | Salesforce", self.explain_browser())
        self.fill_login(username, password)

    def wait_title(self, title):
        got = self.b.wait_for(lambda: self.b.title() == title, timeout=20)
        self.assertTrue(got, f"waiting for the title {title!r}" + self.explain_browser())

    def test_login_lands_on_the_home_page_and_logout_ends_it(self):
        self.login("admin@acme.test", "Admin-123")
        self.wait_url(lambda u: u == self.base + "/home/home.jsp", "the home page")
        self.wait_title("Home | Salesforce")
        shown = {k: self.b.find("#" + k).text() for k in ("username", "userId", "orgName", "orgId", "profile",
                                                          "listener", "clientCertificate")}
        self.assertEqual(shown, {"username": "admin@acme.test", "userId": self.user_id("admin@acme.test"),
                                 "orgName": "Acme", "orgId": ORG_ID, "profile": "System Administrator",
                                 "listener": "standard", "clientCertificate": "none"})
        self.assertEqual(self.b.find("h1").text(), "Logged in")
        cookies = [c for c in self.b.cookies() if c["name"] == "sid"]
        self.assertEqual(len(cookies), 1, cookies)
        self.assertEqual((cookies[0]["httpOnly"], cookies[0]["secure"], cookies[0]["path"],
                          cookies[0].get("sameSite")), (True, True, "/", "Lax"), cookies)
        self.assertRegex(cookies[0]["value"], TOKEN_RE)
        self.assert_entry("POST /", "admin@acme.test", "allowed", "ALLOWED", "Success", newest=False)

        self.b.find("#logout").click()
        self.wait_url(lambda u: u == self.base + "/", "the login page after logout")
        self.wait_title("Login | Salesforce")
        self.assertEqual([c for c in self.b.cookies() if c["name"] == "sid"], [])
        self.b.get(self.base + "/home/home.jsp")
        self.wait_url(lambda u: u == self.base + "/", "the login page for the old session")

    def test_wrong_password_shows_the_error(self):
        self.login("admin@acme.test", "wrong")
        self.b.wait_for(lambda: self.b.find("#error"), timeout=20)
        self.assertEqual(self.b.find("#error").text(), LOGIN_ERROR, self.explain_browser())
        self.assertEqual(self.b.current_url(), self.base + "/")
        self.assertEqual(self.b.title(), "Login | Salesforce")
        self.assertEqual(self.b.find("#username").prop("value"), "admin@acme.test")
        self.assertEqual(self.b.find("#password").prop("value"), "")
        self.assertEqual(self.b.cookies(), [])
        self.assert_entry("POST /", "admin@acme.test", "denied", "INVALID_LOGIN", "Invalid password", newest=False)

    def test_enforce_user_on_the_standard_listener(self):
        self.login("mtls@acme.test", "Mtls-123")
        self.wait_title("Certificate Error")
        self.assertIn("Client certificate error:", self.b.find("h3").text())
        self.assertEqual(self.b.cookies(), [])
        self.assert_entry("POST /", "mtls@acme.test", "denied", "STANDARD_PORT", MUTUAL, newest=False)

    def test_api_only_user(self):
        self.login("api@acme.test", "Api-123")
        self.wait_title("Insufficient Privileges")
        self.assertIn(INSUFFICIENT, self.b.find("p").text())
        self.assertEqual(self.b.cookies(), [])
        self.assert_entry("POST /", "api@acme.test", "denied", "API_ONLY_USER", "Failed: API-only user", newest=False)

    def test_frontdoor_with_an_api_session(self):
        tok = self.password_grant("admin@acme.test", "Admin-123TKN")
        self.b.get(self.base + "/secur/frontdoor.jsp?" + query({"sid": tok}))
        self.wait_url(lambda u: u == self.base + "/home/home.jsp", "the home page")
        self.assertEqual(self.b.find("#username").text(), "admin@acme.test")
        self.assertEqual([c["value"] for c in self.b.cookies() if c["name"] == "sid"], [tok])
        self.assert_entry("GET /secur/frontdoor.jsp", "admin@acme.test", "allowed", "ALLOWED", "Success", newest=False)

    def test_home_without_a_session_shows_the_login_page(self):
        self.b.get(self.base + "/home/home.jsp")
        self.wait_url(lambda u: u == self.base + "/", "the login page")
        self.assertEqual(self.b.title(), "Login | Salesforce")

    def test_authorize_flow_to_the_callback_with_a_code(self):
        self.b.get(self.base + authorize_path(state="abc 123"))
        self.assertEqual(self.b.title(), "Login | Salesforce", self.explain_browser())
        self.fill_login("admin@acme.test", "Admin-123")
        # Nothing listens on the callback: the browser shows its error page, but its URL carries the code.
        url = self.wait_url(lambda u: u.startswith(CALLBACK), "the callback")
        code = self.assert_code_redirect(url, "abc 123")
        self.assert_entry("POST " + AUTHORIZE, "admin@acme.test", "allowed", "ALLOWED", "Success", newest=False)
        self.assert_token_answer(self.redeem(code), "admin@acme.test")

    def test_authorize_unknown_client_shows_the_error(self):
        self.b.get(self.base + authorize_path(client_id="nope"))
        self.wait_title("OAuth Error")
        self.assertEqual(self.b.find("#error").text(), ERR_CLIENT_ID)


if __name__ == "__main__":
    unittest.main()
