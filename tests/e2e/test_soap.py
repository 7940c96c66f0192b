"""The partner SOAP API (SPEC section 5, section 4's SOAP answers) through the
real listeners: POST /services/Soap/u/{version}[/{orgId}].

login (its whole answer, element by element; the security token; every
INVALID_LOGIN case compared byte for byte with the fault Salesforce sends),
getUserInfo, query (records as the partner API writes sObjects; query
faults with row and column), logout, bad sessions, unknown versions,
malformed XML, DOCTYPE, the request shapes clients send (jsforce's default
namespace, SoapUI's prefixes), and layer 2: an Enforce user's session on the
standard listener and on the mTLS listener with an uploaded and a
not-uploaded certificate. Every decision is checked in the login history.
"""

import os
import re
import sys
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `python3 -m unittest tests/e2e/test_soap.py`

import sfmtls_e2e as e2e
from sfmtls_e2e import Cert, PkiServerTestCase, admin

V = "64.0"
ORG = "00D000000000001EAA"
ORG15 = ORG[:15]
TOKEN = "soap-admin-token"
TIMEOUT = 1800  # --session-timeout: sessionSecondsValid must say it

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
SOBJECT = "urn:sobject.partner.soap.sforce.com"
FAULT = "urn:fault.partner.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
CONTENT_TYPE = "text/xml; charset=utf-8"

# The LoginFault Salesforce answers a wrong login with, as salesforce-facts.md 6.2 quotes it.
INVALID_LOGIN = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid "
    "username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault "
    'xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid '
    "username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail>"
    "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
# An Enforce user's session used where it cannot be mutually authenticated (salesforce-facts.md 1.3).
MUTUAL = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<soapenv:Body><soapenv:Fault><faultcode>sf:MUTUAL_AUTHENTICATION_FAILED</faultcode>"
    "<faultstring>MUTUAL_AUTHENTICATION_FAILED: This session could not be mutually authenticated for use with "
    'the API</faultstring><detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
    "<sf:exceptionCode>MUTUAL_AUTHENTICATION_FAILED</sf:exceptionCode><sf:exceptionMessage>This session could not "
    "be mutually authenticated for use with the API</sf:exceptionMessage></sf:UnexpectedErrorFault></detail>"
    "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
PREMATURE_EOF = (XML_DECL + '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
                 "<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode>"
                 "<faultstring>Premature end of file.</faultstring></soapenv:Fault></soapenv:Body>"
                 "</soapenv:Envelope>")

LOGIN_RESULT = ["metadataServerUrl", "passwordExpired", "sandbox", "serverUrl", "sessionId", "userId", "userInfo"]
# GetUserInfoResult, in the order real responses list it (salesforce-facts.md 6.2).
USER_INFO = ["accessibilityMode", "chatterExternal", "currencySymbol", "orgAttachmentFileSizeLimit",
             "orgDefaultCurrencyIsoCode", "orgDefaultCurrencyLocale", "orgDisallowHtmlAttachments",
             "orgHasPersonAccounts", "organizationId", "organizationMultiCurrency", "organizationName", "profileId",
             "roleId", "sessionSecondsValid", "userDefaultCurrencyIsoCode", "userEmail", "userFullName", "userId",
             "userLanguage", "userLocale", "userName", "userTimeZone", "userType", "userUiSkin"]
ACCOUNT_NAMES = ["Acme Corp", "Globex", "Initech", "Umbrella"]


def q(ns, name):
    return f"{{{ns}}}{name}"


def names(elem):
    """The child element names of elem, without namespace."""
    return [c.tag.split("}", 1)[-1] for c in elem]


def envelope(op, session=None):
    """jsforce's request shape (its soap.ts): prefix se, an empty Header without a session."""
    header = (f'<se:Header><SessionHeader xmlns="{PARTNER}"><sessionId>{session}</sessionId></SessionHeader>'
              "</se:Header>" if session else "<se:Header/>")
    return f'<se:Envelope xmlns:se="{SOAPENV}">{header}<se:Body>{op}</se:Body></se:Envelope>'


def login_op(username, password):
    return f'<login xmlns="{PARTNER}"><username>{username}</username><password>{password}</password></login>'


class Answer(e2e.Answer):
    def xml(self):
        return ET.fromstring(self.text)


class SoapApi(PkiServerTestCase):
    """The default org; mtls@acme.test has Enforce, the demo certificate is uploaded."""

    server_args = ("--admin-token", TOKEN, "--session-timeout", str(TIMEOUT))

    @classmethod
    def prepare(cls):
        cls.demo = Cert(os.path.join(cls.server.state, "clients", "demo-client"))
        cls.stranger = cls.server.issue("stranger")  # passes layer 1, never uploaded

    # ---- clients

    def post(self, body, path=f"/services/Soap/u/{V}", listener="standard", cert=None, method="POST",
             headers=None):
        hdrs = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""', **(headers or {})}
        a = e2e.https(self.server, method, path, body=body, headers=hdrs, listener=listener, cert=cert)
        a.__class__ = Answer
        return a

    def login(self, username, password, **kw):
        return self.post(envelope(login_op(username, password)), **kw)

    def session(self, username, password, **kw):
        a = self.login(username, password, **kw)
        self.assertEqual(a.status, 200, a)
        return a.xml().find(f".//{q(PARTNER, 'sessionId')}").text

    def call(self, op, session, **kw):
        return self.post(envelope(op, session), **kw)

    def user_info(self, session, **kw):
        return self.call(f'<getUserInfo xmlns="{PARTNER}"/>', session, **kw)

    def query(self, soql, session, op="query", **kw):
        text = soql.replace("&", "&amp;").replace("<", "&lt;")
        return self.call(f'<{op} xmlns="{PARTNER}"><queryString>{text}</queryString></{op}>', session, **kw)

    def history(self, limit=1):
        st, _, data = admin(self.server, "GET", f"/__admin/login-history?limit={limit}", token=TOKEN)
        self.assertEqual(st, 200, data)
        return data

    def user_id(self, username):
        st, _, data = admin(self.server, "GET", f"/__admin/users/{username}", token=TOKEN)
        self.assertEqual(st, 200, data)
        return data["id"]

    # ---- assertions

    def assert_entry(self, a, listener, username, outcome, reason, status, endpoint=f"POST /services/Soap/u/{V}",
                     cert=None):
        e = self.history()[0]
        msg = f"{e}\nfor {a}"
        self.assertEqual((e["listener"], e["username"], e["outcome"], e["reason"], e["status"], e["endpoint"]),
                         (listener, username, outcome, reason, status, endpoint), msg)
        if cert is None:
            self.assertIsNone(e["certificate"], msg)
        else:
            self.assertEqual(e["certificate"]["fingerprintSha256"], cert.fingerprint, msg)

    def assert_fault(self, a, code, reason=None, detail="UnexpectedErrorFault", faultcode=None):
        """HTTP 500, text/xml, a partner fault `code` with its detail; returns the detail element."""
        self.assertEqual(a.status, 500, a)
        self.assertTrue(a.headers.get("content-type", "").lower().startswith("text/xml"), a)
        self.assertEqual(a.headers.get("x-sfmtls-reason"), reason, a)
        self.assertIn(f'xmlns:sf="{FAULT}"', a.text)
        fault = a.xml().find(f"{q(SOAPENV, 'Body')}/{q(SOAPENV, 'Fault')}")
        self.assertIsNotNone(fault, a)
        self.assertEqual(names(fault), ["faultcode", "faultstring", "detail"], a)
        self.assertEqual(fault.findtext("faultcode"), faultcode or f"sf:{code}", a)
        d = fault.find("detail")[0]
        self.assertEqual(d.tag, q(FAULT, detail), a)
        self.assertEqual(d.get(q(XSI, "type")), f"sf:{detail}", a)
        self.assertEqual(d.findtext(q(FAULT, "exceptionCode")), code, a)
        message = d.findtext(q(FAULT, "exceptionMessage"))
        self.assertTrue(message, a)
        self.assertEqual(fault.findtext("faultstring"), f"{code}: {message}", a)
        return d

    def assert_query_fault(self, a, code, detail):
        d = self.assert_fault(a, code, None, detail)
        self.assertEqual(names(d), ["exceptionCode", "exceptionMessage", "row", "column"], a)
        row, col = int(d.findtext(q(FAULT, "row"))), int(d.findtext(q(FAULT, "column")))
        m = re.search(r"ERROR at Row:(\d+):Column:(\d+)", d.findtext(q(FAULT, "exceptionMessage")))
        if m:
            self.assertEqual((row, col), (int(m.group(1)), int(m.group(2))), a)
        return d

    def assert_exact(self, a, status, body, reason=None):
        """The whole body, apart from the XML declaration, is `body`."""
        self.assertEqual(a.status, status, a)
        self.assertEqual(a.headers.get("x-sfmtls-reason"), reason, a)
        text = a.text[len(XML_DECL):] if a.text.startswith(XML_DECL) else a.text
        self.assertEqual(text, body)

    def assert_user_info(self, info, username, a):
        self.assertEqual(names(info), USER_INFO, a)
        for child in info:
            self.assertEqual(child.tag.split("}")[0], "{" + PARTNER, a)
        get = lambda n: info.findtext(q(PARTNER, n))  # noqa: E731
        self.assertEqual(get("organizationId"), ORG, a)
        self.assertEqual(get("organizationName"), "Acme", a)
        self.assertEqual(get("userName"), username, a)
        self.assertEqual(get("userEmail"), username, a)
        self.assertEqual(get("userId"), self.user_id(username), a)
        self.assertRegex(get("profileId"), r"^00e[0-9A-Za-z]{15}$", a)
        self.assertEqual(get("sessionSecondsValid"), str(TIMEOUT), a)
        self.assertTrue(get("userFullName"), a)
        self.assertEqual(get("userType"), "Standard", a)
        self.assertEqual((get("userLanguage"), get("userLocale")), ("en_US", "en_US"), a)
        self.assertEqual(get("orgDefaultCurrencyIsoCode"), "USD", a)
        for nil in ("roleId", "userDefaultCurrencyIsoCode"):
            self.assertEqual(info.find(q(PARTNER, nil)).get(q(XSI, "nil")), "true", a)
        for flag in ("accessibilityMode", "chatterExternal", "orgDisallowHtmlAttachments", "orgHasPersonAccounts",
                     "organizationMultiCurrency"):
            self.assertEqual(get(flag), "false", a)

    # ---- login

    def test_login_answers_the_partner_login_result(self):
        a = self.login("admin@acme.test", "Admin-123TKN")
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.headers.get("content-type"), CONTENT_TYPE, a)
        self.assertIsNone(a.headers.get("x-sfmtls-reason"), a)
        # Unprefixed results in the default namespace, as jsforce's patterns read them.
        self.assertTrue(a.text.startswith(
            XML_DECL + f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns="{PARTNER}" xmlns:xsi="{XSI}">'
            "<soapenv:Body><loginResponse><result><metadataServerUrl>"), a)
        root = a.xml()
        self.assertEqual(root.tag, q(SOAPENV, "Envelope"), a)
        self.assertEqual([c.tag for c in root], [q(SOAPENV, "Body")], a)
        body = root[0]
        self.assertEqual([c.tag for c in body], [q(PARTNER, "loginResponse")], a)
        result = body[0]
        self.assertEqual([c.tag for c in result], [q(PARTNER, "result")], a)
        result = result[0]
        self.assertEqual(names(result), LOGIN_RESULT, a)
        get = lambda n: result.findtext(q(PARTNER, n))  # noqa: E731
        base = f"https://localhost:{self.server.std_port}"
        self.assertEqual(get("metadataServerUrl"), f"{base}/services/Soap/m/{V}/{ORG15}", a)
        self.assertEqual(get("serverUrl"), f"{base}/services/Soap/u/{V}/{ORG15}", a)
        self.assertEqual(get("passwordExpired"), "false", a)
        self.assertEqual(get("sandbox"), "false", a)
        self.assertRegex(get("sessionId"), rf"^{ORG15}![0-9A-Za-z._]+$", a)
        self.assertEqual(get("userId"), self.user_id("admin@acme.test"), a)
        self.assert_user_info(result.find(q(PARTNER, "userInfo")), "admin@acme.test", a)
        # jsforce's own reading of it.
        self.assertEqual(re.search(r"<sessionId>([^<]+)</sessionId>", a.text).group(1), get("sessionId"))
        self.assertEqual(re.search(r"<serverUrl>([^<]+)</serverUrl>", a.text).group(1), get("serverUrl"))
        self.assert_entry(a, "standard", "admin@acme.test", "allowed", "ALLOWED", "Success")
        # The session is a real one.
        self.assertEqual(self.user_info(get("sessionId")).status, 200)

    def test_login_needs_the_security_token_when_the_user_has_one(self):
        a = self.login("admin@acme.test", "Admin-123")
        self.assert_fault(a, "LOGIN_MUST_USE_SECURITY_TOKEN", "SECURITY_TOKEN_REQUIRED", "LoginFault")
        self.assert_entry(a, "standard", "admin@acme.test", "denied", "SECURITY_TOKEN_REQUIRED",
                          "Failed: API security token required")
        # A user without a token logs in with the password alone.
        self.assertEqual(self.login("user@acme.test", "User-123").status, 200)

    def test_wrong_logins_are_salesforces_invalid_login_fault(self):
        for username, password, status in (("user@acme.test", "User-1234", "Invalid password"),
                                           ("admin@acme.test", "Admin-123XXX", "Invalid password"),
                                           ("nobody@acme.test", "User-123", "Invalid login")):
            with self.subTest(username=username, password=password):
                a = self.login(username, password)
                self.assert_exact(a, 500, INVALID_LOGIN, "INVALID_LOGIN")
                self.assertTrue(a.headers.get("content-type", "").lower().startswith("text/xml"), a)
                self.assert_entry(a, "standard", username, "denied", "INVALID_LOGIN", status)

    def test_inactive_user_is_invalid_login(self):
        st, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": False}, token=TOKEN)
        self.assertEqual(st, 200, data)
        try:
            a = self.login("user@acme.test", "User-123")
            self.assert_exact(a, 500, INVALID_LOGIN, "INVALID_LOGIN")
            self.assert_entry(a, "standard", "user@acme.test", "denied", "INVALID_LOGIN", "User is inactive")
        finally:
            st, _, data = admin(self.server, "PATCH", "/__admin/users/user@acme.test", {"active": True},
                                token=TOKEN)
            self.assertEqual(st, 200, data)

    def test_request_shapes_clients_send(self):
        # jsforce, byte for byte (its request as recorded against a real org).
        jsforce = ('<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body>'
                   '<login xmlns="urn:partner.soap.sforce.com"><username>user@acme.test</username>'
                   "<password>User-123</password></login></se:Body></se:Envelope>")
        # Salesforce's own documentation sample: a prefix on every partner element.
        prefixed = (f'<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="{SOAPENV}">'
                    f'<soapenv:Body><n1:login xmlns:n1="{PARTNER}"><n1:username>user@acme.test</n1:username>'
                    "<n1:password>User-123</n1:password></n1:login></soapenv:Body></soapenv:Envelope>")
        # SoapUI: the operation prefixed, the parameters unqualified, pretty-printed.
        soapui = (f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:urn="{PARTNER}">\n  <soapenv:Header/>\n'
                  "  <soapenv:Body>\n    <urn:login>\n      <username>user@acme.test</username>\n"
                  "      <password>User-123</password>\n    </urn:login>\n  </soapenv:Body>\n</soapenv:Envelope>")
        for label, body in (("jsforce", jsforce), ("prefixed", prefixed), ("soapui", soapui)):
            with self.subTest(label):
                a = self.post(body, headers={"SOAPAction": ""})
                self.assertEqual(a.status, 200, a)
                self.assertEqual(a.xml().findtext(f".//{q(PARTNER, 'userName')}"), "user@acme.test", a)
        # login's parameters are a sequence: the password first is a wrong login.
        a = self.post(envelope(f'<login xmlns="{PARTNER}"><password>User-123</password>'
                               "<username>user@acme.test</username></login>"))
        self.assert_exact(a, 500, INVALID_LOGIN, "INVALID_LOGIN")

    def test_both_paths_and_the_server_url_work(self):
        a = self.login("user@acme.test", "User-123", path=f"/services/Soap/u/{V}/{ORG15}")
        self.assertEqual(a.status, 200, a)
        result = a.xml().find(f".//{q(PARTNER, 'result')}")
        server_url = result.findtext(q(PARTNER, "serverUrl"))
        sid = result.findtext(q(PARTNER, "sessionId"))
        self.assert_entry(a, "standard", "user@acme.test", "allowed", "ALLOWED", "Success",
                          f"POST /services/Soap/u/{V}/{ORG15}")
        # A client then calls the serverUrl it was given.
        path = server_url.split(f":{self.server.std_port}", 1)[1]
        self.assertEqual(path, f"/services/Soap/u/{V}/{ORG15}")
        for p in (path, f"/services/Soap/u/{V}/{ORG}", f"/services/Soap/u/{V}"):
            with self.subTest(p):
                a = self.user_info(sid, path=p)
                self.assertEqual(a.status, 200, a)

    # ---- session calls

    def test_get_user_info(self):
        sid = self.session("user@acme.test", "User-123")
        a = self.user_info(sid)
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.headers.get("content-type"), CONTENT_TYPE, a)
        root = a.xml()
        self.assertEqual([c.tag for c in root], [q(SOAPENV, "Header"), q(SOAPENV, "Body")], a)
        limit = root[0].find(f"{q(PARTNER, 'LimitInfoHeader')}/{q(PARTNER, 'limitInfo')}")
        self.assertEqual(names(limit), ["current", "limit", "type"], a)
        self.assertEqual(limit.findtext(q(PARTNER, "type")), "API REQUESTS", a)
        self.assertGreaterEqual(int(limit.findtext(q(PARTNER, "current"))), 1, a)
        response = root[1][0]
        self.assertEqual(response.tag, q(PARTNER, "getUserInfoResponse"), a)
        self.assertEqual(names(response), ["result"], a)
        self.assert_user_info(response[0], "user@acme.test", a)
        self.assert_entry(a, "standard", "user@acme.test", "allowed", "ALLOWED", "Success")

    def test_a_bad_session_is_invalid_session_id(self):
        for sid in ("00D000000000001!nope", "x" * 500, None):
            with self.subTest(sid=sid and sid[:20]):
                a = self.user_info(sid)
                self.assert_fault(a, "INVALID_SESSION_ID", "INVALID_SESSION")
                self.assert_entry(a, "standard", None, "denied", "INVALID_SESSION", "Session expired or invalid")
        # A logout ends the session.
        sid = self.session("user@acme.test", "User-123")
        a = self.call(f'<logout xmlns="{PARTNER}"/>', sid)
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.xml().find(q(SOAPENV, "Body"))[0].tag, q(PARTNER, "logoutResponse"), a)
        self.assert_fault(self.user_info(sid), "INVALID_SESSION_ID", "INVALID_SESSION")

    def test_query_returns_partner_sobjects(self):
        sid = self.session("admin@acme.test", "Admin-123TKN")
        a = self.query("SELECT Id, Name FROM Account ORDER BY Name", sid)
        self.assertEqual(a.status, 200, a)
        self.assertIn(f'xmlns:sf="{SOBJECT}"', a.text)
        root = a.xml()
        response = root.find(q(SOAPENV, "Body"))[0]
        self.assertEqual(response.tag, q(PARTNER, "queryResponse"), a)
        result = response[0]
        self.assertEqual(result.get(q(XSI, "type")), "QueryResult", a)
        self.assertEqual(names(result), ["done", "queryLocator"] + ["records"] * 4 + ["size"], a)
        self.assertEqual(result.findtext(q(PARTNER, "done")), "true", a)
        self.assertEqual(result.find(q(PARTNER, "queryLocator")).get(q(XSI, "nil")), "true", a)
        self.assertEqual(result.findtext(q(PARTNER, "size")), "4", a)
        got = []
        for rec in result.findall(q(PARTNER, "records")):
            self.assertEqual(rec.get(q(XSI, "type")), "sf:sObject", a)
            # sf:type, the sObject's Id, then the selected fields: a selected Id twice, as Salesforce writes it.
            self.assertEqual([c.tag for c in rec], [q(SOBJECT, n) for n in ("type", "Id", "Id", "Name")], a)
            self.assertEqual(rec[0].text, "Account", a)
            self.assertRegex(rec[1].text, r"^001[0-9A-Za-z]{15}$", a)
            self.assertEqual(rec[1].text, rec[2].text, a)
            got.append(rec[3].text)
        self.assertEqual(got, ACCOUNT_NAMES, a)
        self.assert_entry(a, "standard", "admin@acme.test", "allowed", "ALLOWED", "Success")

        # Without Id: the sObject's Id is nil; a null field is nil too.
        a = self.query("SELECT Name, AnnualRevenue FROM Account WHERE Name = 'Umbrella'", sid)
        self.assertEqual(a.status, 200, a)
        rec = a.xml().find(f".//{q(PARTNER, 'records')}")
        self.assertEqual([c.tag for c in rec], [q(SOBJECT, n) for n in ("type", "Id", "Name", "AnnualRevenue")], a)
        self.assertEqual(rec[1].get(q(XSI, "nil")), "true", a)
        self.assertEqual(rec[2].text, "Umbrella", a)
        self.assertEqual(rec[3].get(q(XSI, "nil")), "true", a)
        self.assertIn('<sf:AnnualRevenue xsi:nil="true"/>', a.text)

        # COUNT(): no records, the count in size; queryAll answers the same way.
        a = self.query("SELECT COUNT() FROM Contact", sid, op="queryAll")
        self.assertEqual(a.status, 200, a)
        result = a.xml().find(f".//{q(PARTNER, 'queryAllResponse')}/{q(PARTNER, 'result')}")
        self.assertEqual(names(result), ["done", "queryLocator", "size"], a)
        self.assertEqual(result.findtext(q(PARTNER, "size")), "2", a)

    def test_query_errors_are_query_faults(self):
        sid = self.session("admin@acme.test", "Admin-123TKN")
        self.assert_query_fault(self.query("SELEC Id FROM Account", sid), "MALFORMED_QUERY", "MalformedQueryFault")
        self.assert_query_fault(self.query("SELECT Nope FROM Account", sid), "INVALID_FIELD", "InvalidFieldFault")
        self.assert_query_fault(self.query("SELECT Id FROM Nope", sid), "INVALID_TYPE", "InvalidSObjectFault")
        # The session is checked first.
        self.assert_fault(self.query("SELEC", "00D000000000001!nope"), "INVALID_SESSION_ID", "INVALID_SESSION")

    # ---- versions, methods, malformed requests

    def test_unknown_version_is_unsupported_api_version(self):
        for path in ("/services/Soap/u/99.0", "/services/Soap/u/20.0", "/services/Soap/u/abc",
                     f"/services/Soap/u/{V}/00D000000000002AAA"):
            with self.subTest(path):
                a = self.login("admin@acme.test", "Admin-123TKN", path=path)
                d = self.assert_fault(a, "UNSUPPORTED_API_VERSION", "NOT_FOUND")
                self.assertEqual(d.findtext(q(FAULT, "exceptionMessage")), "Invalid Api version specified on URL")
                self.assert_entry(a, "standard", "admin@acme.test", "denied", "NOT_FOUND", "Not found",
                                  f"POST {path}")
                a = self.user_info("00D000000000001!nope", path=path)
                self.assert_fault(a, "UNSUPPORTED_API_VERSION", "NOT_FOUND")

    def test_other_methods_are_405(self):
        a = self.post("", method="GET")
        self.assertEqual(a.status, 405, a)
        self.assertEqual(a.headers.get("allow"), "POST", a)
        self.assertEqual(a.xml().findtext(f".//{q(SOAPENV, 'Fault')}/faultcode"), "soapenv:Client", a)

    def test_malformed_requests_are_faults(self):
        a = self.post("")
        self.assert_exact(a, 500, PREMATURE_EOF[len(XML_DECL):])
        a = self.post(f'<se:Envelope xmlns:se="{SOAPENV}"><se:Body><login xmlns="{PARTNER}"></se:Body>')
        d = self.assert_fault(a, "UNKNOWN_EXCEPTION", faultcode="UNKNOWN_EXCEPTION")
        self.assertRegex(d.findtext(q(FAULT, "exceptionMessage")), r"^mismatched tag at line 1, column \d+$")
        # Not an envelope, no Body, an empty Body, an operation this endpoint does not have.
        for body, message in (
                (login_op("a", "b"), f"Element {{{PARTNER}}}login invalid at this location"),
                (f'<se:Envelope xmlns:se="{SOAPENV}"><se:Header/></se:Envelope>',
                 f"Element {{{SOAPENV}}}Body is missing from the request."),
                (f'<se:Envelope xmlns:se="{SOAPENV}"><se:Body/></se:Envelope>', "The SOAP Body holds no operation."),
                (envelope(f'<describeGlobal xmlns="{PARTNER}"/>'),
                 f"No operation available for request {{{PARTNER}}}describeGlobal"),
                (envelope('<login xmlns="urn:enterprise.soap.sforce.com"/>'),
                 "No operation available for request {urn:enterprise.soap.sforce.com}login")):
            with self.subTest(message):
                a = self.post(body)
                self.assertEqual(a.status, 500, a)
                fault = a.xml().find(f"{q(SOAPENV, 'Body')}/{q(SOAPENV, 'Fault')}")
                self.assertEqual(names(fault), ["faultcode", "faultstring"], a)
                self.assertEqual(fault.findtext("faultcode"), "soapenv:Client", a)
                self.assertEqual(fault.findtext("faultstring"), message, a)
                # Not a decision on anyone: recorded as an allowed request without a user.
                e = self.history()[0]
                self.assertEqual((e["username"], e["outcome"], e["endpoint"]),
                                 (None, "allowed", f"POST /services/Soap/u/{V}"), e)

    def test_doctype_is_refused(self):
        bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                          for i in range(1, 10))
                + f']><se:Envelope xmlns:se="{SOAPENV}"><se:Body><login xmlns="{PARTNER}"><username>&lol9;'
                  "</username><password>x</password></login></se:Body></se:Envelope>")
        xxe = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
               + envelope(login_op("&e;", "x")))
        for label, body in (("billion laughs", bomb), ("external entity", xxe)):
            with self.subTest(label):
                start = time.monotonic()
                a = self.post(body)
                self.assertLess(time.monotonic() - start, 5, a)
                d = self.assert_fault(a, "UNKNOWN_EXCEPTION", faultcode="UNKNOWN_EXCEPTION")
                self.assertIn("DOCTYPE is disallowed", d.findtext(q(FAULT, "exceptionMessage")), a)
                self.assertNotIn("root:", a.text)
        self.assertTrue(self.server.alive(), self.server.describe())

    # ---- layer 2: an Enforce user

    def test_enforce_user_session_on_the_standard_listener_is_mutual_authentication_failed(self):
        a = self.login("mtls@acme.test", "Mtls-123")
        self.assertEqual(a.status, 200, a)  # the login there succeeds [obs]
        self.assert_entry(a, "standard", "mtls@acme.test", "allowed", "ALLOWED", "Success")
        sid = a.xml().findtext(f".//{q(PARTNER, 'sessionId')}")
        a = self.user_info(sid)
        self.assert_exact(a, 500, MUTUAL, "STANDARD_PORT")
        self.assert_entry(a, "standard", "mtls@acme.test", "denied", "STANDARD_PORT", "Mutual authentication failed")
        a = self.query("SELECT Id FROM Account", sid)
        self.assert_exact(a, 500, MUTUAL, "STANDARD_PORT")

    def test_enforce_user_on_the_mtls_listener(self):
        # With the uploaded demo certificate: allowed, login and calls.
        sid = self.session("mtls@acme.test", "Mtls-123", listener="mtls", cert=self.demo)
        self.assert_entry(None, "mtls", "mtls@acme.test", "allowed", "ALLOWED", "Success", cert=self.demo)
        a = self.user_info(sid, listener="mtls", cert=self.demo)
        self.assertEqual(a.status, 200, a)
        self.assert_user_info(a.xml().find(f".//{q(PARTNER, 'result')}"), "mtls@acme.test", a)
        self.assert_entry(a, "mtls", "mtls@acme.test", "allowed", "ALLOWED", "Success", cert=self.demo)
        # A certificate that passes layer 1 but is not uploaded: the same fault as on the standard listener.
        a = self.user_info(sid, listener="mtls", cert=self.stranger)
        self.assert_exact(a, 500, MUTUAL, "CERTIFICATE_NOT_UPLOADED")
        self.assert_entry(a, "mtls", "mtls@acme.test", "denied", "CERTIFICATE_NOT_UPLOADED",
                          "Mutual authentication failed", cert=self.stranger)
        a = self.login("mtls@acme.test", "Mtls-123", listener="mtls", cert=self.stranger)
        self.assert_exact(a, 500, MUTUAL, "CERTIFICATE_NOT_UPLOADED")
        self.assert_entry(a, "mtls", "mtls@acme.test", "denied", "CERTIFICATE_NOT_UPLOADED",
                          "Mutual authentication failed", cert=self.stranger)
        # No certificate at all: the Certificate Error page.
        a = self.user_info(sid, listener="mtls")
        self.assertEqual((a.status, a.headers.get("x-sfmtls-reason")), (400, "NO_CLIENT_CERTIFICATE"), a)
        self.assertIn("Client certificate error:<i>No client certificate provided.</i>", a.text)
        self.assert_entry(a, "mtls", "mtls@acme.test", "denied", "NO_CLIENT_CERTIFICATE",
                          "Mutual authentication failed")
        # A user without Enforce needs no certificate there.
        sid = self.session("user@acme.test", "User-123", listener="mtls")
        self.assertEqual(self.user_info(sid, listener="mtls", cert=self.stranger).status, 200)


if __name__ == "__main__":
    unittest.main()
