"""The REST API under /services/data/ (SPEC section 5) through the real
server on the standard listener, with sessions from the OAuth password grant:
the resource map, latest, unknown versions and paths, limits and the daily
counter, describe global, sObject information and describe, a record's
create / read / update / delete with Salesforce's errors, queries, both
authorization schemes, a missing or bad session, and the reset back to the
fixture."""

import json
import re
import unittest
import urllib.parse

from sfmtls_e2e import ServerTestCase, admin, https

V = "64.0"
LATEST = "67.0"  # the newest version of the default org
BASE = f"/services/data/v{V}"
ADMIN = "rest-admin-token"
JSON_TYPE = "application/json;charset=UTF-8"
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
FIXTURE_ACCOUNTS = ["Acme Corp", "Globex", "Initech", "Umbrella"]
LIMIT_KEYS = {
    "DailyApiRequests", "DailyAsyncApexExecutions", "DailyBulkApiBatches", "DailyBulkV2QueryFileStorageMB",
    "DailyBulkV2QueryJobs", "DailyStreamingApiEvents", "DataStorageMB", "FileStorageMB", "HourlyODataCallout",
    "HourlyPublishedPlatformEvents", "MassEmail", "SingleEmail",
}
LIMIT_RE = re.compile(r"^api-usage=(\d+)/(\d+)$")


class Rest(ServerTestCase):
    server_args = ("--admin-token", ADMIN)

    @classmethod
    def prepare(cls):
        cls.login = None

    # ---- clients

    def call(self, method, path, *, token=None, scheme="Bearer", body=None, headers=None, query=None):
        """One request on a new connection to the standard listener."""
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"{scheme} {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return https(self.server, method, path, body=body, headers=hdrs)

    def oauth(self, username, password):
        a = self.call("POST", "/services/oauth2/token", body=urllib.parse.urlencode({
            "grant_type": "password", "client_id": "ck-partner", "client_secret": "cs-partner",
            "username": username, "password": password}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(a.status, 200, a)
        return a.json()

    def admin_token(self):
        """A session of admin@acme.test (System Administrator: ApiEnabled, ViewSetup), from one login."""
        if Rest.login is None:
            Rest.login = self.oauth("admin@acme.test", "Admin-123TKN")
        return Rest.login["access_token"]

    def get(self, path, **kw):
        return self.call("GET", path, token=self.admin_token(), **kw)

    def ok_json(self, a, status=200):
        """A REST answer: status, JSON type, the limit header; its body."""
        self.assertEqual(a.status, status, a)
        self.assertEqual(a.headers.get("content-type"), JSON_TYPE, a)
        self.assertRegex(a.headers.get("sforce-limit-info", ""), LIMIT_RE, a)
        return a.json()

    def assert_rest_error(self, a, status, code, message=None):
        """The error array with one entry, exactly; returns the message."""
        body = self.ok_json(a, status)
        self.assertIsInstance(body, list, a)
        self.assertEqual(len(body), 1, a)
        self.assertEqual(set(body[0]), {"message", "errorCode"}, a)
        self.assertEqual(body[0]["errorCode"], code, a)
        if message is not None:
            self.assertEqual(body[0]["message"], message, a)
        return body[0]["message"]

    def query(self, soql, path="query"):
        return self.ok_json(self.get(f"{BASE}/{path}", query={"q": soql}))

    def account_names(self):
        body = self.query("SELECT Name FROM Account ORDER BY Name")
        return [r["Name"] for r in body["records"]]

    def account_id(self, name):
        body = self.query(f"SELECT Id FROM Account WHERE Name = '{name}'")
        self.assertEqual(body["totalSize"], 1, body)
        return body["records"][0]["Id"]

    def history(self, **filters):
        q = urllib.parse.urlencode({"limit": 1, **filters})
        st, _, data = admin(self.server, "GET", f"/__admin/login-history?{q}", token=ADMIN)
        self.assertEqual(st, 200, data)
        return data[0] if data else None

    def assert_entry(self, answer, username, outcome, reason, endpoint):
        e = self.history()
        msg = f"{e}\nfor {answer}"
        self.assertEqual(e["listener"], "standard", msg)
        self.assertEqual(e["username"], username, msg)
        self.assertEqual(e["outcome"], outcome, msg)
        self.assertEqual(e["reason"], reason, msg)
        self.assertEqual(e["endpoint"], endpoint, msg)

    # ---- the resource map and versions

    def test_resource_map_names_what_is_served(self):
        tok = self.admin_token()
        for path in (f"{BASE}/", BASE):
            a = self.call("GET", path, token=tok)
            body = self.ok_json(a)
            self.assertEqual(body, {
                "sobjects": f"{BASE}/sobjects", "query": f"{BASE}/query", "queryAll": f"{BASE}/queryAll",
                "limits": f"{BASE}/limits",
                # The identity URL: the one the token answer named.
                "identity": Rest.login["id"],
            }, a)
        self.assertRegex(Rest.login["id"],
                         r"^https://localhost:\d+/id/00D000000000001EAA/005[0-9A-Za-z]{12}[A-Z0-5]{3}$")
        self.assert_entry(a, "admin@acme.test", "allowed", "ALLOWED", f"GET {BASE}")

    def test_latest_is_the_newest_version(self):
        a = self.get("/services/data/latest/")
        body = self.ok_json(a)
        self.assertEqual(body["sobjects"], f"/services/data/v{LATEST}/sobjects", a)
        body = self.ok_json(self.get("/services/data/latest/query", query={"q": "SELECT Id FROM Contact"}))
        self.assertEqual(body["totalSize"], 2, body)
        for r in body["records"]:
            self.assertEqual(r["attributes"]["url"], f"/services/data/v{LATEST}/sobjects/Contact/{r['Id']}", body)
        self.ok_json(self.get("/services/data/latest/limits"))

    def test_unknown_version_is_404_before_the_session(self):
        for tok in (self.admin_token(), None, "junk"):
            for path in ("/services/data/v20.0/", "/services/data/v99.0/limits", "/services/data/v64/",
                         "/services/data/foo", "/services/data/latestx/sobjects"):
                a = self.call("GET", path, token=tok)
                self.assertEqual(a.status, 404, a)
                self.assertEqual(a.json(), NOT_FOUND, a)
                self.assertEqual(a.headers.get("x-sfmtls-reason"), "NOT_FOUND", a)
                self.assertNotIn("sforce-limit-info", a.headers, a)
        self.assert_entry(a, None, "denied", "NOT_FOUND", "GET /services/data/latestx/sobjects")

    def test_unknown_resource_is_404(self):
        for path in ("nope", "sobjects/Account/describe/more", "sobjects//Account", "Limits", "sobjects/Nope",
                     "sobjects/Nope/describe", "query/01gD0000002HU6KIAW-2000"):
            for method in ("GET", "POST", "PUT"):
                a = self.call(method, f"{BASE}/{path}", token=self.admin_token())
                self.assert_rest_error(a, 404, "NOT_FOUND", NOT_FOUND[0]["message"])

    # ---- limits

    def test_limits_keys_and_the_daily_counter(self):
        a = self.get(f"{BASE}/limits/")
        first = self.ok_json(a)
        self.assertLessEqual(LIMIT_KEYS, set(first), a)
        for key, v in first.items():
            self.assertEqual(set(v), {"Max", "Remaining"}, key)
            self.assertIsInstance(v["Max"], int, key)
            self.assertLessEqual(v["Remaining"], v["Max"], key)
        daily = first["DailyApiRequests"]
        # The header counts the call it comes with, as limits does.
        used, mx = map(int, LIMIT_RE.match(a.headers["sforce-limit-info"]).groups())
        self.assertEqual((used, mx), (daily["Max"] - daily["Remaining"], daily["Max"]), a)
        self.assertGreaterEqual(used, 1)

        # Three calls, then limits: four fewer remaining.
        self.ok_json(self.get(f"{BASE}/sobjects"))
        self.ok_json(self.get(BASE))
        self.assert_rest_error(self.get(f"{BASE}/nope"), 404, "NOT_FOUND")
        a = self.get(f"{BASE}/limits")
        second = self.ok_json(a)["DailyApiRequests"]
        self.assertEqual(second, {"Max": daily["Max"], "Remaining": daily["Remaining"] - 4}, a)
        self.assertEqual(a.headers["sforce-limit-info"], f"api-usage={used + 4}/{mx}", a)

        # A refused call is no API call.
        self.assertEqual(self.call("GET", f"{BASE}/limits", token="junk").status, 401)
        third = self.ok_json(self.get(f"{BASE}/limits"))["DailyApiRequests"]
        self.assertEqual(third["Remaining"], second["Remaining"] - 1)

    def test_limits_needs_view_setup(self):
        tok = self.oauth("user@acme.test", "User-123")["access_token"]
        a = self.call("GET", f"{BASE}/limits", token=tok)
        self.assertEqual(a.status, 403, a)
        body = a.json()
        self.assertEqual(len(body), 1, a)
        self.assertEqual(body[0]["errorCode"], "INSUFFICIENT_ACCESS", a)
        self.assertEqual(a.headers.get("x-sfmtls-reason"), "INSUFFICIENT_ACCESS", a)
        self.assert_entry(a, "user@acme.test", "denied", "INSUFFICIENT_ACCESS", f"GET {BASE}/limits")
        # The rest of the API is open to the same session.
        self.ok_json(self.call("GET", f"{BASE}/sobjects", token=tok))

    # ---- describe

    def test_describe_global(self):
        body = self.ok_json(self.get(f"{BASE}/sobjects/"))
        self.assertEqual(body["encoding"], "UTF-8")
        self.assertEqual(body["maxBatchSize"], 200)
        self.assertEqual([s["name"] for s in body["sobjects"]], ["Account", "Contact"])
        account = body["sobjects"][0]
        self.assertEqual(account["label"], "Account")
        self.assertEqual(account["labelPlural"], "Accounts")
        self.assertEqual(account["keyPrefix"], "001")
        self.assertEqual(body["sobjects"][1]["keyPrefix"], "003")
        self.assertIs(account["custom"], False)
        for flag in ("queryable", "createable", "updateable", "deletable", "retrieveable"):
            self.assertIs(account[flag], True, flag)
        self.assertIn("searchable", account)
        self.assertEqual(account["urls"], {
            "sobject": f"{BASE}/sobjects/Account", "describe": f"{BASE}/sobjects/Account/describe",
            "rowTemplate": f"{BASE}/sobjects/Account/{{ID}}"})

    def test_sobject_basic_information(self):
        for type_ in ("Account", "account"):
            body = self.ok_json(self.get(f"{BASE}/sobjects/{type_}"))
            self.assertEqual(set(body), {"objectDescribe", "recentItems"})
            self.assertEqual(body["recentItems"], [])
            self.assertEqual(body["objectDescribe"]["name"], "Account")
            self.assertEqual(body["objectDescribe"]["keyPrefix"], "001")

    def test_describe_fields(self):
        body = self.ok_json(self.get(f"{BASE}/sobjects/Account/describe"))
        self.assertEqual(body["name"], "Account")
        self.assertEqual(body["keyPrefix"], "001")
        fields = {f["name"]: f for f in body["fields"]}
        self.assertEqual([f["name"] for f in body["fields"]], ["Id", "Name", "Industry", "AnnualRevenue", "Type"])
        self.assertEqual({n: f["type"] for n, f in fields.items()},
                         {"Id": "id", "Name": "string", "Industry": "string", "AnnualRevenue": "double",
                          "Type": "string"})
        for f in body["fields"]:
            for key in ("label", "nillable", "createable", "updateable", "filterable", "sortable", "soapType"):
                self.assertIn(key, f, f)
        self.assertIs(fields["Id"]["createable"], False)
        self.assertIs(fields["Id"]["updateable"], False)
        self.assertIs(fields["Id"]["nillable"], False)
        self.assertEqual(fields["Id"]["soapType"], "tns:ID")
        self.assertIs(fields["Name"]["nameField"], True)
        self.assertIs(fields["Industry"]["createable"], True)
        self.assertEqual(fields["AnnualRevenue"]["soapType"], "xsd:double")
        self.assertEqual(fields["AnnualRevenue"]["label"], "Annual Revenue")

        contact = self.ok_json(self.get(f"{BASE}/sobjects/contact/describe"))
        self.assertEqual(contact["name"], "Contact")
        self.assertEqual([f["name"] for f in contact["fields"]], ["Id", "Name", "Email", "Title"])

    # ---- records

    def test_crud_round_trip(self):
        tok = self.admin_token()
        a = self.call("POST", f"{BASE}/sobjects/Account", token=tok, body={"Name": "Hooli", "industry": "Tech"})
        created = self.ok_json(a, 201)
        self.assertEqual(set(created), {"id", "success", "errors"}, a)
        self.assertIs(created["success"], True)
        self.assertEqual(created["errors"], [])
        rid = created["id"]
        self.assertRegex(rid, r"^001[0-9A-Za-z]{12}[A-Z0-5]{3}$")
        url = f"{BASE}/sobjects/Account/{rid}"

        a = self.call("GET", url, token=tok)
        self.assertEqual(self.ok_json(a), {
            "attributes": {"type": "Account", "url": url}, "Id": rid, "Name": "Hooli", "Industry": "Tech",
            "AnnualRevenue": None, "Type": None}, a)
        self.assertEqual(list(a.json()), ["attributes", "Id", "Name", "Industry", "AnnualRevenue", "Type"])

        a = self.call("PATCH", url, token=tok, body={"Industry": "Software", "AnnualRevenue": 12.5})
        self.assertEqual(a.status, 204, a)
        self.assertEqual(a.text, "", a)
        self.assertRegex(a.headers.get("sforce-limit-info", ""), LIMIT_RE, a)

        # The 15-character id; ?fields= picks fields, Id comes along.
        a = self.call("GET", f"{BASE}/sobjects/Account/{rid[:15]}", token=tok, query={"fields": "industry,AnnualRevenue"})
        self.assertEqual(self.ok_json(a), {
            "attributes": {"type": "Account", "url": url}, "Industry": "Software", "AnnualRevenue": 12.5,
            "Id": rid}, a)
        self.assertIn("Hooli", self.account_names())

        a = self.call("DELETE", url, token=tok)
        self.assertEqual(a.status, 204, a)
        self.assertEqual(a.text, "", a)
        for method in ("GET", "DELETE"):
            self.assert_rest_error(self.call(method, url, token=tok), 404, "NOT_FOUND",
                                   "The requested resource does not exist")
        self.assert_rest_error(self.call("PATCH", url, token=tok, body={"Name": "x"}), 404, "NOT_FOUND",
                               "The requested resource does not exist")
        self.assertNotIn("Hooli", self.account_names())

    def test_write_errors(self):
        tok = self.admin_token()
        acme = self.account_id("Acme Corp")
        before = self.account_names()
        post = f"{BASE}/sobjects/Account"

        msg = self.assert_rest_error(self.call("POST", post, token=tok, body="xyz"), 400, "JSON_PARSER_ERROR")
        self.assertEqual(msg, "Unexpected character ('x' (code 120)): expected a valid value (number, String, "
                              "array, object, 'true', 'false' or 'null') at [line:1, column:2]")
        self.assert_rest_error(self.call("POST", post, token=tok, body=""), 400, "JSON_PARSER_ERROR")
        self.assert_rest_error(self.call("PATCH", f"{post}/{acme}", token=tok, body="{\"Name\": }"), 400,
                               "JSON_PARSER_ERROR")
        self.assert_rest_error(self.call("POST", post, token=tok, body={"Name": "x", "Nope__c": 1}), 400,
                               "INVALID_FIELD", "No such column 'Nope__c' on sobject of type Account")
        self.assert_rest_error(self.call("PATCH", f"{post}/{acme}", token=tok, body={"Bogus": 1}), 400,
                               "INVALID_FIELD", "No such column 'Bogus' on sobject of type Account")
        self.assert_rest_error(self.call("POST", post, token=tok, body={"Id": acme, "Name": "x"}), 400,
                               "INVALID_FIELD", "The Id field should not be specified in the sobject data.")
        self.assert_rest_error(self.call("POST", post, token=tok, body={"Name": {"a": 1}}), 400,
                               "JSON_PARSER_ERROR")
        self.assert_rest_error(self.call("POST", f"{BASE}/sobjects/Widget__c", token=tok, body={"Name": "x"}),
                               404, "NOT_FOUND", "The requested resource does not exist")
        self.assert_rest_error(self.call("GET", f"{post}/{acme}", token=tok, query={"fields": "Name,Nope"}), 400,
                               "INVALID_FIELD",
                               "No such column 'Nope' on entity 'Account'. If you are attempting to use a custom "
                               "field, be sure to append the '__c' after the custom field name. Please reference "
                               "your WSDL or the describe call for the appropriate names.")
        # Not an id at all: read as an external id value.
        self.assert_rest_error(self.call("GET", f"{post}/bogus", token=tok), 404, "NOT_FOUND",
                               "Provided external ID field does not exist or is not accessible: bogus")
        # A Contact's id is no Account.
        contact = self.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
        self.assert_rest_error(self.call("GET", f"{post}/{contact}", token=tok), 404, "NOT_FOUND",
                               "The requested resource does not exist")

        a = self.call("PUT", post, token=tok, body={"Name": "x"})
        self.assert_rest_error(a, 405, "METHOD_NOT_ALLOWED", "HTTP Method 'PUT' not allowed. Allowed are HEAD,GET,POST")
        self.assertEqual(a.headers.get("allow"), "HEAD,GET,POST", a)
        a = self.call("POST", f"{post}/{acme}", token=tok, body={"Name": "x"})
        self.assert_rest_error(a, 405, "METHOD_NOT_ALLOWED",
                               "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE")
        self.assertEqual(a.headers.get("allow"), "HEAD,GET,PATCH,DELETE", a)
        for path in ("limits", "query", "sobjects", "sobjects/Account/describe", ""):
            a = self.call("DELETE", f"{BASE}/{path}", token=tok)
            self.assert_rest_error(a, 405, "METHOD_NOT_ALLOWED",
                                   "HTTP Method 'DELETE' not allowed. Allowed are HEAD,GET")
            self.assertEqual(a.headers.get("allow"), "HEAD,GET", a)

        self.assertEqual(self.account_names(), before)
        body = self.ok_json(self.get(f"{post}/{acme}"))
        self.assertEqual((body["Name"], body["Industry"]), ("Acme Corp", "Energy"))

    def test_head_is_get_without_a_body(self):
        a = self.call("HEAD", f"{BASE}/sobjects", token=self.admin_token())
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.text, "", a)
        self.assertRegex(a.headers.get("sforce-limit-info", ""), LIMIT_RE, a)

    # ---- query

    def test_queries(self):
        body = self.query("SELECT Id, Name FROM Account ORDER BY Name")
        self.assertEqual(body["totalSize"], 4)
        self.assertIs(body["done"], True)
        self.assertEqual([r["Name"] for r in body["records"]], FIXTURE_ACCOUNTS)
        for r in body["records"]:
            self.assertEqual(list(r), ["attributes", "Id", "Name"], r)
            self.assertEqual(r["attributes"], {"type": "Account", "url": f"{BASE}/sobjects/Account/{r['Id']}"})

        body = self.query("select name, industry from account where Industry = 'Energy'")
        self.assertEqual(body["totalSize"], 1)
        self.assertEqual(body["records"][0]["Name"], "Acme Corp")
        self.assertEqual(body["records"][0]["Industry"], "Energy")

        body = self.query("SELECT Name FROM Account WHERE Type IN ('Customer', 'Partner') ORDER BY Name DESC LIMIT 2")
        self.assertEqual([r["Name"] for r in body["records"]], ["Umbrella", "Initech"])

        self.assertEqual(self.query("SELECT COUNT() FROM Contact"), {"totalSize": 2, "done": True, "records": []})
        self.assertEqual(self.query("SELECT Name FROM Account ORDER BY Name", "queryAll")["totalSize"], 4)

    def test_query_errors(self):
        self.assert_rest_error(self.get(f"{BASE}/query"), 400, "MALFORMED_QUERY",
                               "A query string has to be specified")
        self.assert_rest_error(self.get(f"{BASE}/query", query={"q": ""}), 400, "MALFORMED_QUERY",
                               "A query string has to be specified")
        self.assert_rest_error(self.get(f"{BASE}/query", query={"q": "SELECT Id FROM Account WHERE"}), 400,
                               "MALFORMED_QUERY",
                               "\nSELECT Id FROM Account WHERE\n                           ^\n"
                               "ERROR at Row:1:Column:28\nunexpected token: <EOF>")
        self.assert_rest_error(self.get(f"{BASE}/query", query={"q": "SELECT Foo FROM Account"}), 400,
                               "INVALID_FIELD",
                               "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\n"
                               "No such column 'Foo' on entity 'Account'. If you are attempting to use a custom "
                               "field, be sure to append the '__c' after the custom field name. Please reference "
                               "your WSDL or the describe call for the appropriate names.")
        self.assert_rest_error(self.get(f"{BASE}/queryAll", query={"q": "SELECT Id FROM Foo"}), 400,
                               "INVALID_TYPE",
                               "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\n"
                               "sObject type 'Foo' is not supported. If you are attempting to use a custom object, "
                               "be sure to append the '__c' after the entity name. Please reference your WSDL or "
                               "the describe call for the appropriate names.")

    # ---- sessions

    def test_bearer_and_oauth_schemes(self):
        tok = self.admin_token()
        for scheme in ("Bearer", "OAuth"):
            body = self.ok_json(self.call("GET", f"{BASE}/sobjects/Account", token=tok, scheme=scheme))
            self.assertEqual(body["objectDescribe"]["name"], "Account")

    def test_no_or_bad_session_is_401(self):
        tok = self.admin_token()
        cases = [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer 00D000000000001!nope"},
            {"Authorization": f"Basic {tok}"},
            {"Authorization": f"Bearer {tok}x"},
        ]
        for path in (f"{BASE}/", f"{BASE}/limits", f"{BASE}/sobjects/Account", f"{BASE}/nope"):
            for headers in cases:
                a = self.call("GET", path, headers=headers)
                self.assertEqual(a.status, 401, f"{headers} {a}")
                self.assertEqual(a.text, '[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]',
                                 a)
                self.assertEqual(a.headers.get("x-sfmtls-reason"), "INVALID_SESSION", a)
                self.assertNotIn("sforce-limit-info", a.headers, a)
        self.assert_entry(a, None, "denied", "INVALID_SESSION", f"GET {BASE}/nope")

    # ---- reset

    def test_reset_restores_the_fixture(self):
        tok = self.admin_token()
        created = self.ok_json(self.call("POST", f"{BASE}/sobjects/Account", token=tok, body={"Name": "Temp"}),
                               201)["id"]
        globex = self.account_id("Globex")
        initech = self.account_id("Initech")
        self.assertEqual(self.call("PATCH", f"{BASE}/sobjects/Account/{globex}", token=tok,
                                   body={"Name": "Globex 2"}).status, 204)
        self.assertEqual(self.call("DELETE", f"{BASE}/sobjects/Account/{initech}", token=tok).status, 204)
        self.assertEqual(self.account_names(), ["Acme Corp", "Globex 2", "Temp", "Umbrella"])

        st, _, data = admin(self.server, "POST", "/__admin/reset", token=ADMIN)
        self.assertEqual(st, 204, data)
        # The reset ends every session too: log in again.
        self.assertEqual(self.call("GET", f"{BASE}/sobjects", token=tok).status, 401)
        Rest.login = None
        self.assertEqual(self.account_names(), FIXTURE_ACCOUNTS)
        # The fixture's records keep their ids; the created one is gone.
        self.assertEqual(self.account_id("Globex"), globex)
        self.assertEqual(self.account_id("Initech"), initech)
        self.assert_rest_error(self.get(f"{BASE}/sobjects/Account/{created}"), 404, "NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
