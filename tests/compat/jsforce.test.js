'use strict';
/*
 * Client compatibility: jsforce (pinned in package.json) against sfmtls-server.
 *
 * run-jsforce.sh starts two servers and passes them in COMPAT_* variables:
 *   A  defaults: REST MUTUAL_AUTHENTICATION_FAILED is a 401
 *   B  --mutual-auth-failed-status 403
 * Both run the default org (fixtures/default-org.json) with the admin token
 * COMPAT_ADMIN_TOKEN. Each case asserts what a jsforce user sees: the values
 * on the Connection, the records, the errors as jsforce raises them; the last
 * ones read the servers' login history through the admin API.
 *
 * Run with node's built-in runner: node --test jsforce.test.js
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const { createRequire } = require('node:module');

const jsforce = require('jsforce');

const VERSION = '64.0';
const USERNAME = 'mtls@acme.test';
const PASSWORD = 'Mtls-123';
const ACCOUNTS = ['Acme Corp', 'Globex', 'Initech', 'Umbrella'];
const MUTUAL_AUTH_MESSAGE = 'This session could not be mutually authenticated for the use with REST API';
const INVALID_LOGIN_MESSAGE = 'INVALID_LOGIN: Invalid username, password, security token; or user locked out.';

function env(name) {
    const v = process.env[name];
    if (!v)
        throw new Error(`${name} is not set: run this test through run-jsforce.sh`);
    return v;
}

const A = {
    mtlsUrl: env('COMPAT_A_MTLS_URL'),
    standardUrl: env('COMPAT_A_STANDARD_URL'),
    stateDir: env('COMPAT_A_STATE_DIR'),
};
const B = {
    mtlsUrl: env('COMPAT_B_MTLS_URL'),
    standardUrl: env('COMPAT_B_STANDARD_URL'),
    stateDir: env('COMPAT_B_STATE_DIR'),
};
const ADMIN_TOKEN = env('COMPAT_ADMIN_TOKEN');
const ORG = JSON.parse(fs.readFileSync(path.join(env('COMPAT_SOURCE_DIR'), 'fixtures/default-org.json'), 'utf8'));
const ORG_ID = ORG.organization.id;

const read = (dir, file) => fs.readFileSync(path.join(dir, file));
const caA = read(A.stateDir, 'ca.pem');
const caB = read(B.stateDir, 'ca.pem');
// The demo client certificate server A issued at its first start and uploaded
// as a Mutual Authentication Certificate: the leaf, its chain, its key.
const demoCert = read(A.stateDir, 'clients/demo-client.crt');
const demoChain = read(A.stateDir, 'clients/demo-client.chain.pem');
const demoKey = read(A.stateDir, 'clients/demo-client.key');
const demoFingerprint = new crypto.X509Certificate(demoCert).fingerprint256.replace(/:/g, '').toLowerCase();

/*
 * jsforce has no option for a client certificate (jsforce issue #1034 was
 * closed without one): the TLS settings go on the HTTP layer under it.
 * jsforce up to 3.10.16 (the last release for Node 18 and 20) fetches with
 * node-fetch 2, which uses https.globalAgent; later 3.10 releases (Node 22)
 * fetch with undici, and their lib/request exports setDispatcher.
 * Either way every jsforce request of this process presents the demo
 * certificate when a server asks for one (only the mTLS listener asks) and
 * trusts only the dev CAs: no NODE_TLS_REJECT_UNAUTHORIZED=0.
 */
let closeTls = () => {};
function useClientCertificate(tls) {
    const request = require('jsforce/lib/request');
    if (typeof request.setDispatcher === 'function') {
        const undici = createRequire(require.resolve('jsforce'))('undici');
        const dispatcher = new undici.Agent({ connect: { ...tls, allowH2: false } });
        request.setDispatcher(dispatcher);
        closeTls = () => dispatcher.close();
    } else {
        const agent = new https.Agent({ ...tls, keepAlive: true });
        https.globalAgent = agent;
        closeTls = () => agent.destroy();
    }
}

/* GET on the admin API of a server, answered as parsed JSON. */
function admin(baseUrl, pathAndQuery) {
    return new Promise((resolve, reject) => {
        const req = https.get(
            new URL(pathAndQuery, baseUrl),
            { ca: [caA, caB], agent: false, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } },
            (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (c) => (body += c));
                res.on('end', () => {
                    if (res.statusCode !== 200)
                        return reject(new Error(`GET ${pathAndQuery}: ${res.statusCode} ${body}`));
                    try {
                        resolve(JSON.parse(body));
                    } catch (e) {
                        reject(new Error(`GET ${pathAndQuery}: not JSON: ${body}`));
                    }
                });
            },
        );
        req.on('error', reject);
    });
}

/* The login history of USERNAME on a server, oldest first. */
async function history(server) {
    const q = `/__admin/login-history?limit=1000&username=${encodeURIComponent(USERNAME)}`;
    const entries = await admin(server.standardUrl, q);
    assert.ok(Array.isArray(entries), `login history is a list: ${JSON.stringify(entries)}`);
    return entries.reverse();
}

/* The entries a test expects in server A's history, in the order it made them. */
const expectedA = [];
function expectA(method, pathname, listener, outcome, reason, status) {
    expectedA.push({ endpoint: `${method} ${pathname}`, listener, outcome, reason, status });
}
const SOAP_PATH = `/services/Soap/u/${VERSION}`;
const REST = `/services/data/v${VERSION}`;

/* The promise's rejection, or a failure naming what it resolved to. */
async function rejection(promise) {
    try {
        const v = await promise;
        assert.fail(`expected an error, got ${JSON.stringify(v)}`);
    } catch (e) {
        if (e instanceof assert.AssertionError)
            throw e;
        return e;
    }
}

function assertAccountRecord(r, name) {
    assert.equal(r.attributes.type, 'Account');
    assert.match(r.Id, /^001[0-9A-Za-z]{15}$/, `an 18-character Account Id: ${r.Id}`);
    assert.equal(r.attributes.url, `${REST}/sobjects/Account/${r.Id}`);
    if (name !== undefined)
        assert.equal(r.Name, name);
}

describe(`jsforce ${require('jsforce/package.json').version} against sfmtls-server`, { timeout: 300000 }, () => {
    let conn; // logged in by the first test, then pointed at the mTLS listener
    let userId;
    let accountIds;

    before(async () => {
        useClientCertificate({ cert: demoChain, key: demoKey, ca: [caA, caB] });
        const user = await admin(A.standardUrl, `/__admin/users/${encodeURIComponent(USERNAME)}`);
        userId = user.id;
        assert.match(userId, /^005[0-9A-Za-z]{15}$/);
    });

    after(() => closeTls());

    const loggedIn = () => {
        if (!conn || !conn.accessToken)
            throw new Error('no session: the SOAP login test failed');
        return conn;
    };

    it('logs in with SOAP over mTLS (conn.login) and names the standard listener as its instance', async () => {
        const c = new jsforce.Connection({ loginUrl: A.mtlsUrl, version: VERSION });
        expectA('POST', SOAP_PATH, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const info = await c.login(USERNAME, PASSWORD);

        assert.match(c.accessToken, new RegExp(`^${ORG_ID.slice(0, 15)}![A-Za-z0-9._-]{16,}$`),
                     `access token shaped <orgId15>!...: ${c.accessToken}`);
        assert.equal(info.id, userId);
        assert.equal(info.organizationId, ORG_ID);
        assert.equal(info.url, `${A.mtlsUrl}/id/${ORG_ID}/${userId}`);
        assert.deepEqual(c.userInfo, info);
        // SOAP serverUrl names the port-less My Domain of production: here the
        // standard listener, on the default --public-host localhost.
        const standardPort = new URL(A.standardUrl).port;
        assert.equal(c.instanceUrl, `https://localhost:${standardPort}`);

        // What a client of an org with Mutual Authentication does after login
        // (the README's walkthrough): keep the instance host, add the mTLS
        // port (":8443" in production) itself. jsforce has no setting for it:
        // assign conn.instanceUrl.
        const instance = new URL(c.instanceUrl);
        instance.port = new URL(A.mtlsUrl).port;
        c.instanceUrl = instance.origin;
        conn = c;
    });

    it('queries the Accounts over mTLS (conn.query)', async () => {
        const c = loggedIn();
        expectA('GET', `${REST}/query`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const res = await c.query('SELECT Id, Name FROM Account ORDER BY Name');

        assert.equal(res.totalSize, 4);
        assert.equal(res.done, true);
        assert.equal(res.nextRecordsUrl, undefined);
        assert.deepEqual(res.records.map((r) => r.Name), ACCOUNTS);
        res.records.forEach((r, i) => assertAccountRecord(r, ACCOUNTS[i]));
        assert.deepEqual(Object.keys(res.records[0]).sort(), ['Id', 'Name', 'attributes']);
        accountIds = res.records.map((r) => r.Id);
        assert.equal(new Set(accountIds).size, 4, 'distinct Ids');
        // jsforce reads the Sforce-Limit-Info header into conn.limitInfo.
        const usage = c.limitInfo.apiUsage;
        assert.ok(usage, `conn.limitInfo from Sforce-Limit-Info: ${JSON.stringify(c.limitInfo)}`);
        assert.ok(usage.used >= 1 && usage.limit > usage.used, `api-usage ${usage.used}/${usage.limit}`);
    });

    it('retrieves one Account by its 18- and 15-character Id (sobject().retrieve)', async () => {
        const c = loggedIn();
        assert.ok(accountIds, 'the query test gave the Ids');
        const id = accountIds[0];
        expectA('GET', `${REST}/sobjects/Account/${id}`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const rec = await c.sobject('Account').retrieve(id);
        assertAccountRecord(rec, 'Acme Corp');
        assert.equal(rec.Id, id);
        assert.equal(rec.Industry, 'Energy');

        const short = id.slice(0, 15);
        expectA('GET', `${REST}/sobjects/Account/${short}`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const again = await c.sobject('Account').retrieve(short);
        assert.equal(again.Id, id, 'the 18-character Id comes back');
        assert.equal(again.Name, 'Acme Corp');
    });

    it('creates an Account and deletes it (sobject().create / destroy)', async () => {
        const c = loggedIn();
        expectA('POST', `${REST}/sobjects/Account`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const created = await c.sobject('Account').create({ Name: 'Jsforce Compat', Industry: 'Testing' });
        assert.equal(created.success, true);
        assert.deepEqual(created.errors, []);
        assert.match(created.id, /^001[0-9A-Za-z]{15}$/);
        assert.ok(!accountIds.includes(created.id), 'a new Id');

        expectA('GET', `${REST}/sobjects/Account/${created.id}`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const rec = await c.sobject('Account').retrieve(created.id);
        assertAccountRecord(rec, 'Jsforce Compat');
        assert.equal(rec.Industry, 'Testing');

        expectA('GET', `${REST}/query`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const five = await c.query('SELECT Name FROM Account ORDER BY Name');
        assert.deepEqual(five.records.map((r) => r.Name), [...ACCOUNTS, 'Jsforce Compat'].sort());

        expectA('DELETE', `${REST}/sobjects/Account/${created.id}`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const deleted = await c.sobject('Account').destroy(created.id);
        assert.deepEqual(deleted, { id: created.id, success: true, errors: [] });

        expectA('GET', `${REST}/query`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const four = await c.query('SELECT Name FROM Account ORDER BY Name');
        assert.deepEqual(four.records.map((r) => r.Name), ACCOUNTS);
    });

    it('raises MALFORMED_QUERY for a query it cannot parse', async () => {
        const c = loggedIn();
        expectA('GET', `${REST}/query`, 'mtls', 'allowed', 'ALLOWED', 'Success');
        const err = await rejection(c.query('SELECT FROM Account'));
        assert.equal(err.name, 'MALFORMED_QUERY', `${err.name}: ${err.message}`);
        assert.equal(err.errorCode, 'MALFORMED_QUERY');
        // Salesforce's parser message: the query, a caret, "ERROR at Row:R:Column:C", the problem.
        assert.match(err.message, /ERROR at Row:1:Column:\d+/);
    });

    it('raises INVALID_LOGIN for a wrong password (SOAP login fault)', async () => {
        const c = new jsforce.Connection({ loginUrl: A.mtlsUrl, version: VERSION });
        expectA('POST', SOAP_PATH, 'mtls', 'denied', 'INVALID_LOGIN', 'Invalid password');
        const err = await rejection(c.login(USERNAME, 'Wrong-123'));
        // jsforce raises a plain Error with the fault's faultstring.
        assert.equal(err.message, INVALID_LOGIN_MESSAGE);
        assert.ok(!c.accessToken, 'no session on the Connection');
    });

    it('raises MUTUAL_AUTHENTICATION_FAILED for the session on the standard listener (401)', async () => {
        // The same session, used on the instance URL as the login named it,
        // without :8443: the standard listener. The Connection is built from
        // the access token and instance URL only, so jsforce has no password
        // to log in again with: with conn.login's connection, jsforce takes
        // server A's 401 for an expired session, logs in again and retries
        // without end (SPEC section 4; server B's case below is the way out).
        const standardPort = new URL(A.standardUrl).port;
        const c = new jsforce.Connection({
            instanceUrl: `https://localhost:${standardPort}`,
            accessToken: loggedIn().accessToken,
            version: VERSION,
        });
        expectA('GET', `${REST}/query`, 'standard', 'denied', 'STANDARD_PORT', 'Mutual authentication failed');
        const err = await rejection(c.query('SELECT Id, Name FROM Account ORDER BY Name'));
        assert.equal(err.name, 'MUTUAL_AUTHENTICATION_FAILED', `${err.name}: ${err.message}`);
        assert.equal(err.errorCode, 'MUTUAL_AUTHENTICATION_FAILED');
        assert.equal(err.message, MUTUAL_AUTH_MESSAGE);
        assert.deepEqual(err.data, { message: MUTUAL_AUTH_MESSAGE, errorCode: 'MUTUAL_AUTHENTICATION_FAILED' });
    });

    it('with --mutual-auth-failed-status 403, conn.login\'s connection raises MUTUAL_AUTHENTICATION_FAILED once', async () => {
        // Server B: log in on the standard listener (the port-less My Domain);
        // that succeeds for an Enforce user, and the session fails on use. A
        // 403 is no expired session to jsforce: no new login, no retry.
        const c = new jsforce.Connection({ loginUrl: B.standardUrl, version: VERSION });
        await c.login(USERNAME, PASSWORD);
        assert.equal(c.instanceUrl, `https://localhost:${new URL(B.standardUrl).port}`);
        let refreshes = 0;
        c.on('refresh', () => refreshes++);
        const err = await rejection(c.query('SELECT Id, Name FROM Account'));
        assert.equal(err.name, 'MUTUAL_AUTHENTICATION_FAILED', `${err.name}: ${err.message}`);
        assert.equal(err.message, MUTUAL_AUTH_MESSAGE);
        assert.equal(refreshes, 0, 'jsforce did not log in again');

        const seen = (await history(B)).map((e) => [e.endpoint, e.listener, e.outcome, e.reason, e.certificate]);
        assert.deepEqual(seen, [
            [`POST ${SOAP_PATH}`, 'standard', 'allowed', 'ALLOWED', null],
            [`GET ${REST}/query`, 'standard', 'denied', 'STANDARD_PORT', null],
        ]);
    });

    it('shows every call above in server A\'s login history', async () => {
        const entries = await history(A);
        const seen = entries.map(({ endpoint, listener, outcome, reason, status }) => ({
            endpoint, listener, outcome, reason, status,
        }));
        assert.deepEqual(seen, expectedA);
        for (const e of entries) {
            assert.equal(e.username, USERNAME);
            assert.equal(e.remoteAddress, '127.0.0.1');
            assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
            if (e.listener === 'mtls') {
                assert.ok(e.certificate, `the certificate on ${e.endpoint}`);
                assert.equal(e.certificate.fingerprintSha256, demoFingerprint);
                assert.match(e.certificate.subject, /CN=demo-client/);
            } else {
                assert.equal(e.certificate, null);
            }
        }
    });
});
