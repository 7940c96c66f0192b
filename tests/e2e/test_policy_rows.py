"""SPEC section 4, row by row: each row's answer through the real listeners
with real certificates, in every shape the row names (REST, SOAP, OAuth, the
UI), with its X-Sfmtls-Reason header and its login-history entry."""

import json
import os
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

from sfmtls_e2e import Cert, PkiServerTestCase, admin, https

V = "64.0"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
CERT_PAGE = ("<html><head><title>Certificate Error</title></head><body bgcolor=#ffffff text=#3198d8><center>"
             "<p><h3>Client certificate error:<i>{}</i></h3></center></body></html>")
MUTUAL_REST = [{"message": "This session could not be mutually authenticated for the use with REST API",
                "errorCode": "MUTUAL_AUTHENTICATION_FAILED"}]
MUTUAL_SOAP = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
               "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
               "xmlns:sf=\"urn:fault.partner.soap.sforce.com\" "
               "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault>"
               "<faultcode>sf:MUTUAL_AUTHENTICATION_FAILED</faultcode>"
               "<faultstring>MUTUAL_AUTHENTICATION_FAILED: This session could not be mutually authenticated "
               "for use with the API</faultstring>"
               "<detail><sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\">"
               "<sf:exceptionCode>MUTUAL_AUTHENTICATION_FAILED</sf:exceptionCode>"
               "<sf:exceptionMessage>This session could not be mutually authenticated for use with the API"
               "</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>"
               "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def soap_envelope(op, session=None):
    header = (f"<se:Header><SessionHeader xmlns=\"urn:partner.soap.sforce.com\"><sessionId>{session}</sessionId>"
              "</SessionHeader></se:Header>" if session else "<se:Header/>")
    return (f"<se:Envelope xmlns:se=\"{SOAPENV}\">{header}<se:Body>{op}</se:Body></se:Envelope>")


class PolicyRows(PkiServerTestCase):
    """The default org: mtls@acme.test has Enforce; the demo certificate is uploaded."""

    server_args = ("--admin-token", "rows-admin-token")

    @classmethod
    def prepare(cls):
        cls.demo = Cert(os.path.join(cls.server.state, "clients", "demo-client"))
        # Passes layer 1 (the dev CA issued it) but was never uploaded.
        cls.stranger = cls.server.issue("stranger")
        cls.expired = cls.server.issue("expired", "--expired")

    # ---- clients

    def call(self, method, path, *, listener="mtls", cert=None, token=None, form=None, body=None, headers=None,
             scheme="Bearer"):
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"{scheme} {token}"
        if form is not None:
            body = urllib.parse.urlencode(form)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        return https(self.server, method, path, body=body, headers=hdrs, listener=listener, cert=cert)

    def oauth_password(self, username, password, **kw):
        return self.call("POST", "/services/oauth2/token", form={
            "grant_type": "password", "client_id": "ck-partner", "client_secret": "cs-partner",
            "username": username, "password": password}, **kw)

    def token(self, username, password, **kw):
        a = self.oauth_password(username, password, **kw)
        self.assertEqual(a.status, 200, a)
        return a.json()["access_token"]

    def soap(self, op, session=None, **kw):
        return self.call("POST", f"/services/Soap/u/{V}", body=soap_envelope(op, session),
                         headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'}, **kw)

    def soap_login(self, username, password, **kw):
        return self.soap(f"<login xmlns=\"urn:partner.soap.sforce.com\"><username>{username}</username>"
                         f"<password>{password}</password></login>", **kw)

    def soap_session(self, username, password, **kw):
        a = self.soap_login(username, password, **kw)
        self.assertEqual(a.status, 200, a)
        return ET.fromstring(a.text).find(".//{urn:partner.soap.sforce.com}sessionId").text

    def last_entry(self):
        st, _, data = admin(self.server, "GET", "/__admin/login-history?limit=1", token="rows-admin-token")
        self.assertEqual(st, 200, data)
        self.assertEqual(len(data), 1, data)
        return data[0]

    # ---- assertions

    def assert_entry(self, answer, listener, username, outcome, reason, status, endpoint, cert=None):
        e = self.last_entry()
        msg = f"{e}\nfor {answer}"
        self.assertEqual(e["listener"], listener, msg)
        self.assertEqual(e["username"], username, msg)
        self.assertEqual(e["outcome"], outcome, msg)
        self.assertEqual(e["reason"], reason, msg)
        self.assertEqual(e["status"], status, msg)
        self.assertEqual(e["endpoint"], endpoint, msg)
        if cert is None:
            self.assertIsNone(e["certificate"], msg)
        else:
            self.assertEqual(e["certificate"]["fingerprintSha256"], cert.fingerprint, msg)

    def assert_denied(self, a, status, reason, ctype):
        self.assertEqual(a.status, status, a)
        self.assertEqual(a.headers.get("x-sfmtls-reason"), reason, a)
        self.assertTrue(a.headers.get("content-type", "").startswith(ctype), a)

    def assert_cert_page(self, a, reason, sentence):
        self.assert_denied(a, 400, reason, "text/html")
        self.assertEqual(a.text, CERT_PAGE.format(sentence))

    def assert_soap_fault(self, a, code, reason):
        self.assert_denied(a, 500, reason, "text/xml")
        root = ET.fromstring(a.text)
        fault = root.find(f"{{{SOAPENV}}}Body/{{{SOAPENV}}}Fault")
        self.assertIsNotNone(fault, a)
        self.assertEqual(fault.findtext("faultcode"), f"sf:{code}", a)
        self.assertTrue(fault.findtext("faultstring").startswith(f"{code}: "), a)
        self.assertIn('xmlns:sf="urn:fault.partner.soap.sforce.com"', a.text)

    # ---- row 1: the certificate failed layer 1

    def test_row01_layer1_failure_is_the_certificate_error_page(self):
        tok = self.token("admin@acme.test", "Admin-123TKN", listener="standard")
        a = self.call("GET", f"/services/data/v{V}/limits", cert=self.expired, token=tok)
        self.assert_cert_page(a, "CERTIFICATE_EXPIRED", "Client certificate has expired.")
        self.assert_entry(a, "mtls", None, "denied", "CERTIFICATE_EXPIRED", "Mutual authentication failed",
                          f"GET /services/data/v{V}/limits", self.expired)
        # Before anything else: even a login or an unknown path gets the page.
        for path in ("/services/oauth2/token", "/nowhere", "/"):
            a = self.call("POST", path, cert=self.expired, form={"grant_type": "password"})
            self.assert_cert_page(a, "CERTIFICATE_EXPIRED", "Client certificate has expired.")

    # ---- row 2: an API path with an unknown version

    def test_row02_unknown_version_is_not_found(self):
        tok = self.token("admin@acme.test", "Admin-123TKN", listener="standard")
        a = self.call("GET", "/services/data/v20.0/limits", listener="standard", token=tok)
        self.assert_denied(a, 404, "NOT_FOUND", "application/json")
        self.assertEqual(a.json(), [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
        self.assert_entry(a, "standard", None, "denied", "NOT_FOUND", "Not found", "GET /services/data/v20.0/limits")
        a = self.call(
            "POST", "/services/Soap/u/20.0", listener="standard",
            body=soap_envelope("<login xmlns=\"urn:partner.soap.sforce.com\"><username>admin@acme.test</username>"
                               "<password>Admin-123TKN</password></login>"),
            headers={"Content-Type": "text/xml"})
        self.assert_soap_fault(a, "UNSUPPORTED_API_VERSION", "NOT_FOUND")

    # ---- row 3: a bad, revoked or expired session

    def test_row03_bad_session_is_invalid_session_id(self):
        a = self.call("GET", f"/services/data/v{V}/sobjects", listener="standard", token="00D000000000001!nope")
        self.assert_denied(a, 401, "INVALID_SESSION", "application/json")
        self.assertEqual(a.json(), INVALID_SESSION)
        self.assert_entry(a, "standard", None, "denied", "INVALID_SESSION", "Session expired or invalid",
                          f"GET /services/data/v{V}/sobjects")
        a = self.call("GET", f"/services/data/v{V}/sobjects", listener="standard")
        self.assertEqual((a.status, a.json()), (401, INVALID_SESSION))
        a = self.soap("<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>", session="00D!bogus",
                      listener="standard")
        self.assert_soap_fault(a, "INVALID_SESSION_ID", "INVALID_SESSION")
        # Revoked: the token worked, then stops working.
        tok = self.token("user@acme.test", "User-123", listener="standard")
        self.assertEqual(self.call("GET", f"/services/data/v{V}/", listener="standard", token=tok).status, 200)
        r = self.call("POST", "/services/oauth2/revoke", listener="standard", form={"token": tok})
        self.assertEqual(r.status, 200, r)
        a = self.call("GET", f"/services/data/v{V}/", listener="standard", token=tok)
        self.assertEqual((a.status, a.json()), (401, INVALID_SESSION))

    def test_row03_deactivation_ends_the_users_sessions_for_good(self):
        tok = self.token("user@acme.test", "User-123", listener="standard")
        path = f"/services/data/v{V}/sobjects"
        self.assertEqual(self.call("GET", path, listener="standard", token=tok).status, 200)
        for active in (False, True):
            st, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": active},
                                token="rows-admin-token")
            self.assertEqual(st, 200, data)
        a = self.call("GET", path, listener="standard", token=tok)
        self.assert_denied(a, 401, "INVALID_SESSION", "application/json")
        self.assertEqual(a.json(), INVALID_SESSION)
        self.assert_entry(a, "standard", None, "denied", "INVALID_SESSION", "Session expired or invalid",
                          f"GET {path}")

    # ---- row 4: wrong user, password, inactive user

    def test_row04_bad_credentials(self):
        a = self.oauth_password("admin@acme.test", "wrong", listener="standard")
        self.assert_denied(a, 400, "INVALID_LOGIN", "application/json")
        self.assertEqual(a.json(), {"error": "invalid_grant", "error_description": "authentication failure"})
        self.assertEqual(a.headers.get("cache-control"), "no-store", a)
        self.assert_entry(a, "standard", "admin@acme.test", "denied", "INVALID_LOGIN", "Invalid password",
                          "POST /services/oauth2/token")
        a = self.oauth_password("nobody@acme.test", "x", listener="standard")
        self.assertEqual(a.json()["error"], "invalid_grant", a)
        self.assert_entry(a, "standard", "nobody@acme.test", "denied", "INVALID_LOGIN", "Invalid login",
                          "POST /services/oauth2/token")
        a = self.soap_login("user@acme.test", "wrong", listener="standard")
        self.assert_soap_fault(a, "INVALID_LOGIN", "INVALID_LOGIN")
        self.assertIn("<sf:LoginFault xsi:type=\"sf:LoginFault\">", a.text)
        self.assertIn("<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out."
                      "</faultstring>", a.text)

    def test_row04_inactive_user(self):
        st, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": False},
                            token="rows-admin-token")
        self.assertEqual(st, 200, data)
        try:
            a = self.oauth_password("user@acme.test", "User-123", listener="standard")
            self.assert_denied(a, 400, "INVALID_LOGIN", "application/json")
            self.assertEqual(a.json(), {"error": "invalid_grant", "error_description": "authentication failure"})
            self.assert_entry(a, "standard", "user@acme.test", "denied", "INVALID_LOGIN", "User is inactive",
                              "POST /services/oauth2/token")
        finally:
            admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": True}, token="rows-admin-token")

    # ---- row 5: right password, security token missing

    def test_row05_security_token_required(self):
        a = self.oauth_password("admin@acme.test", "Admin-123", listener="standard")
        self.assert_denied(a, 400, "SECURITY_TOKEN_REQUIRED", "application/json")
        self.assertEqual(a.json(), {"error": "invalid_grant", "error_description": "authentication failure"})
        self.assert_entry(a, "standard", "admin@acme.test", "denied", "SECURITY_TOKEN_REQUIRED",
                          "Failed: API security token required", "POST /services/oauth2/token")
        a = self.soap_login("admin@acme.test", "Admin-123", listener="standard")
        self.assert_soap_fault(a, "LOGIN_MUST_USE_SECURITY_TOKEN", "SECURITY_TOKEN_REQUIRED")

    # ---- row 6: an API call by a user without ApiEnabled

    def test_row06_api_disabled(self):
        tok = self.token("noapi@acme.test", "NoApi-123", listener="standard")  # the login succeeds
        a = self.call("GET", f"/services/data/v{V}/sobjects", listener="standard", token=tok)
        self.assert_denied(a, 403, "API_DISABLED", "application/json")
        self.assertEqual(a.json(), [{"message": "The REST API is not enabled for this Organization.",
                                     "errorCode": "API_DISABLED_FOR_ORG"}])
        self.assert_entry(a, "standard", "noapi@acme.test", "denied", "API_DISABLED", "Failed: API disabled",
                          f"GET /services/data/v{V}/sobjects")
        sid = self.soap_session("noapi@acme.test", "NoApi-123", listener="standard")
        a = self.soap("<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>", session=sid, listener="standard")
        self.assert_soap_fault(a, "API_DISABLED_FOR_ORG", "API_DISABLED")
        self.assertIn("API_DISABLED_FOR_ORG: API is not enabled for this Organization or Partner", a.text)

    # ---- row 7: an Enforce user on the standard listener

    def test_row07_enforce_user_on_the_standard_listener(self):
        # The login there succeeds [obs]; the session fails on use.
        a = self.oauth_password("mtls@acme.test", "Mtls-123", listener="standard")
        self.assertEqual(a.status, 200, a)
        self.assert_entry(a, "standard", "mtls@acme.test", "allowed", "ALLOWED", "Success",
                          "POST /services/oauth2/token")
        tok = a.json()["access_token"]
        a = self.call("GET", f"/services/data/v{V}/query?q=SELECT+Name+FROM+Account", listener="standard", token=tok)
        self.assert_denied(a, 401, "STANDARD_PORT", "application/json")
        self.assertEqual(a.json(), MUTUAL_REST)
        self.assert_entry(a, "standard", "mtls@acme.test", "denied", "STANDARD_PORT", "Mutual authentication failed",
                          f"GET /services/data/v{V}/query")
        sid = self.soap_session("mtls@acme.test", "Mtls-123", listener="standard")
        a = self.soap("<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>", session=sid, listener="standard")
        self.assert_soap_fault(a, "MUTUAL_AUTHENTICATION_FAILED", "STANDARD_PORT")
        self.assertEqual(a.text, MUTUAL_SOAP)
        # The UI: the Certificate Error page.
        a = self.call("GET", f"/secur/frontdoor.jsp?sid={urllib.parse.quote(tok)}", listener="standard")
        self.assert_denied(a, 400, "STANDARD_PORT", "text/html")
        self.assertIn("<title>Certificate Error</title>", a.text)

    # ---- row 8: an Enforce user on the mTLS listener without a certificate

    def test_row08_no_client_certificate(self):
        tok = self.token("mtls@acme.test", "Mtls-123", listener="standard")
        a = self.call("GET", f"/services/data/v{V}/sobjects", token=tok)
        self.assert_cert_page(a, "NO_CLIENT_CERTIFICATE", "No client certificate provided.")
        self.assert_entry(a, "mtls", "mtls@acme.test", "denied", "NO_CLIENT_CERTIFICATE",
                          "Mutual authentication failed", f"GET /services/data/v{V}/sobjects")
        # The login there too [emu].
        a = self.oauth_password("mtls@acme.test", "Mtls-123")
        self.assert_cert_page(a, "NO_CLIENT_CERTIFICATE", "No client certificate provided.")
        a = self.soap_login("mtls@acme.test", "Mtls-123")
        self.assert_cert_page(a, "NO_CLIENT_CERTIFICATE", "No client certificate provided.")
        # A user without Enforce may come without one [SF].
        tok = self.token("api@acme.test", "Api-123")
        self.assertEqual(self.call("GET", f"/services/data/v{V}/sobjects", token=tok).status, 200)

    # ---- row 9: an Enforce user, a certificate that is not uploaded

    def test_row09_certificate_not_uploaded(self):
        tok = self.token("mtls@acme.test", "Mtls-123", listener="standard")
        a = self.call("GET", f"/services/data/v{V}/sobjects", cert=self.stranger, token=tok)
        self.assert_denied(a, 401, "CERTIFICATE_NOT_UPLOADED", "application/json")
        self.assertEqual(a.json(), MUTUAL_REST)
        self.assert_entry(a, "mtls", "mtls@acme.test", "denied", "CERTIFICATE_NOT_UPLOADED",
                          "Mutual authentication failed", f"GET /services/data/v{V}/sobjects", self.stranger)
        a = self.oauth_password("mtls@acme.test", "Mtls-123", cert=self.stranger)
        self.assert_denied(a, 400, "CERTIFICATE_NOT_UPLOADED", "application/json")
        self.assertEqual(a.json(), {"error": "invalid_grant", "error_description": "mutual authentication failed"})
        sid = self.soap_session("mtls@acme.test", "Mtls-123", listener="standard")
        a = self.soap("<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>", session=sid, cert=self.stranger)
        self.assert_soap_fault(a, "MUTUAL_AUTHENTICATION_FAILED", "CERTIFICATE_NOT_UPLOADED")
        self.assertEqual(a.text, MUTUAL_SOAP)

    # ---- row 10: an API-only user in the UI

    def test_row10_api_only_user_in_the_ui(self):
        a = self.call("POST", "/", listener="standard", form={"un": "api@acme.test", "pw": "Api-123"})
        self.assert_denied(a, 403, "API_ONLY_USER", "text/html")
        self.assertIn("Insufficient Privileges", a.text)
        self.assertIn("You do not have the level of access necessary to perform the operation you requested.", a.text)
        self.assert_entry(a, "standard", "api@acme.test", "denied", "API_ONLY_USER", "Failed: API-only user",
                          "POST /")
        tok = self.token("api@acme.test", "Api-123", listener="standard")
        a = self.call("GET", f"/secur/frontdoor.jsp?sid={urllib.parse.quote(tok)}", listener="standard")
        self.assert_denied(a, 403, "API_ONLY_USER", "text/html")

    # ---- row 11: limits without View Setup and Configuration

    def test_row11_limits_needs_view_setup(self):
        tok = self.token("user@acme.test", "User-123", listener="standard")
        a = self.call("GET", f"/services/data/v{V}/limits", listener="standard", token=tok)
        self.assert_denied(a, 403, "INSUFFICIENT_ACCESS", "application/json")
        self.assertEqual(a.json()[0]["errorCode"], "INSUFFICIENT_ACCESS", a)
        self.assert_entry(a, "standard", "user@acme.test", "denied", "INSUFFICIENT_ACCESS", "Insufficient access",
                          f"GET /services/data/v{V}/limits")

    # ---- row 12: everything else

    def test_row12_allowed(self):
        # The Enforce user with the uploaded certificate, on 8443: every surface.
        tok = self.token("mtls@acme.test", "Mtls-123", cert=self.demo)
        self.assert_entry(None, "mtls", "mtls@acme.test", "allowed", "ALLOWED", "Success",
                          "POST /services/oauth2/token", self.demo)
        a = self.call("GET", f"/services/data/v{V}/query?q=SELECT+Name+FROM+Account+ORDER+BY+Name", cert=self.demo,
                      token=tok)
        self.assertEqual(a.status, 200, a)
        self.assertIsNone(a.headers.get("x-sfmtls-reason"), a)
        self.assertEqual([r["Name"] for r in a.json()["records"]], ["Acme Corp", "Globex", "Initech", "Umbrella"])
        self.assert_entry(a, "mtls", "mtls@acme.test", "allowed", "ALLOWED", "Success",
                          f"GET /services/data/v{V}/query", self.demo)
        sid = self.soap_session("mtls@acme.test", "Mtls-123", cert=self.demo)
        a = self.soap("<getUserInfo xmlns=\"urn:partner.soap.sforce.com\"/>", session=sid, cert=self.demo)
        self.assertEqual(a.status, 200, a)
        # Users without Enforce: either listener, with or without a certificate [SF].
        tok = self.token("admin@acme.test", "Admin-123TKN", listener="standard")
        for kw in ({"listener": "standard"}, {}, {"cert": self.stranger}):
            a = self.call("GET", f"/services/data/v{V}/limits", token=tok, scheme="OAuth", **kw)
            self.assertEqual(a.status, 200, f"{kw}: {a}")


class MutualAuthFailedStatus403(PkiServerTestCase):
    """--mutual-auth-failed-status 403 changes the REST status of rows 7 and 9 only."""

    server_args = ("--mutual-auth-failed-status", "403")

    def test_rows_7_and_9_answer_403(self):
        t = PolicyRows.call
        stranger = self.server.issue("stranger")
        form = {"grant_type": "password", "client_id": "ck-partner", "client_secret": "cs-partner",
                "username": "mtls@acme.test", "password": "Mtls-123"}
        a = t(self, "POST", "/services/oauth2/token", listener="standard", form=form)
        self.assertEqual(a.status, 200, a)
        tok = a.json()["access_token"]
        for kw, reason in (({"listener": "standard"}, "STANDARD_PORT"), ({"cert": stranger}, "CERTIFICATE_NOT_UPLOADED")):
            a = t(self, "GET", f"/services/data/v{V}/sobjects", token=tok, **kw)
            self.assertEqual(a.status, 403, a)
            self.assertEqual(a.headers.get("x-sfmtls-reason"), reason, a)
            self.assertEqual(a.json(), MUTUAL_REST)


if __name__ == "__main__":
    unittest.main()
