"""Harness for the sfmtls end-to-end tests (Python 3.11 stdlib only).

A `Server` runs sfmtls-server on port 0 in a fresh state dir and reads its
ready line; `issue()` makes client certificates with sfmtls-ca from that
server's dev CA; `curl()` and `s_client()` drive real TLS clients and return
what they printed, parsed into HTTP responses where there were any.
`admin()`, `KeepAlive` and `tls_socket()` are Python clients; `new_ca()` and
`make_crl()` build extra PKI. `ServerTestCase` runs one server per class
(`PkiServerTestCase`: with files built before it starts); `E2EAsserts` holds
assertions for any test case.

Binaries come from SFMTLS_SERVER_BIN / SFMTLS_CA_BIN / SFMTLS_SOURCE_DIR
(set by ctest), else from /work/main/build/dev; the org is
$SFMTLS_SOURCE_DIR/fixtures/default-org.json.
"""

import datetime
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get("SFMTLS_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SERVER_BIN = os.environ.get("SFMTLS_SERVER_BIN", os.path.join(SOURCE_DIR, "build/dev/server/sfmtls-server"))
CA_BIN = os.environ.get("SFMTLS_CA_BIN", os.path.join(SOURCE_DIR, "build/dev/ca/sfmtls-ca"))
FIXTURES = os.path.join(SOURCE_DIR, "fixtures/default-org.json")

READY_RE = re.compile(r"^sfmtls ready mtls=https://127\.0\.0\.1:(\d+) standard=https://127\.0\.0\.1:(\d+)$")

# Layer-1 reason -> (alert in --cert-failure=alert mode, sentence of the Certificate Error page).
REASONS = {
    "CERTIFICATE_SELF_SIGNED": ("bad_certificate", "Client certificate is self-signed."),
    "CERTIFICATE_UNTRUSTED": ("unknown_ca", "Client certificate chain is not trusted."),
    "CERTIFICATE_REVOKED": ("certificate_revoked", "Client certificate has been revoked."),
    "CERTIFICATE_EXPIRED": ("certificate_expired", "Client certificate has expired."),
    "CERTIFICATE_NOT_YET_VALID": ("certificate_expired", "Client certificate is not yet valid."),
    "CERTIFICATE_INVALID": ("bad_certificate", "Client certificate is invalid."),
}


def clean_env():
    """The environment minus SFMTLS_* (every server flag reads one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SFMTLS_")}


def run(cmd, timeout=30, **kw):
    """Runs a command; raises with its output when it fails."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env(), **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p.stdout


def tail(text, limit=4000):
    return text if len(text) <= limit else "...\n" + text[-limit:]


def read_text(path):
    with open(path) as f:
        return f.read()


def write_text(path, text):
    """Replaces the file's content in place (same inode, as an editor saving would)."""
    with open(path, "w") as f:
        f.write(text)


def pem_blocks(text):
    """The PEM certificates in text, in order, each with its END line's newline."""
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", text, re.S)


def org_fixture():
    """The default org as a dict, its file paths made absolute: a copy written
    elsewhere (paths in a fixture are relative to the fixture file) still finds them."""
    with open(FIXTURES) as f:
        org = json.load(f)
    base = os.path.dirname(os.path.abspath(FIXTURES))
    for app in org.get("connectedApps", []):
        if "certificate" in app:
            app["certificate"] = os.path.join(base, app["certificate"])
    for c in org.get("mutualAuthCertificates", []):
        if "file" in c:
            c["file"] = os.path.join(base, c["file"])
    return org


def first_line(proc, timeout):
    """The first line `proc` writes on stdout (the ready line), waiting at most
    `timeout` seconds; what came so far when it exits or the time is up."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")



def stop_process(proc, sig=signal.SIGTERM, timeout=15):
    """Sends sig, waits up to timeout seconds, then kills; the exit code, None if it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return None
    return proc.returncode


class ServerError(AssertionError):
    pass


class Server:
    """One sfmtls-server on 127.0.0.1, both listeners on port 0."""

    def __init__(self, *args, ready_timeout=30, env=None, state_dir=None):
        self.args = list(args)
        self.tmp = tempfile.mkdtemp(prefix="sfmtls-e2e-")
        self.state = state_dir or os.path.join(self.tmp, "state")
        self.ca = os.path.join(self.state, "ca.pem")
        self.stderr_path = os.path.join(self.tmp, "server.stderr")
        cmd = [SERVER_BIN, "--fixtures", FIXTURES, "--state-dir", self.state, "--bind", "127.0.0.1",
               "--mtls-port", "0", "--port", "0", *self.args]
        self.cmd = cmd
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                         env={**clean_env(), **(env or {})})
        self.pid = self.proc.pid
        line = self._read_line(ready_timeout)
        m = READY_RE.match(line)
        if not m:
            self.kill()
            msg = f"no ready line from {' '.join(cmd)}\nstdout: {line!r}\n{self.describe()}"
            self.cleanup()
            raise ServerError(msg)
        self.mtls_port, self.std_port = int(m.group(1)), int(m.group(2))

    def _read_line(self, timeout):
        return first_line(self.proc, timeout)

    def stderr_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def describe(self):
        """Server state for failure messages: exit status and the end of stderr."""
        rc = self.proc.poll()
        status = "running" if rc is None else f"exited with {rc}"
        return f"server (pid {self.pid}) {status}; stderr:\n{tail(self.stderr_text(), 3000)}"

    def alive(self):
        return self.proc.poll() is None

    def port(self, listener):
        return self.mtls_port if listener == "mtls" else self.std_port

    def stop(self, timeout=10):
        """SIGTERM, then the exit code (None if it had to be killed)."""
        code = stop_process(self.proc, timeout=timeout)
        self.proc.stdout.close()
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cleanup(self):
        self.kill()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fd_listing(self):
        out = []
        for fd in sorted(os.listdir(f"/proc/{self.pid}/fd"), key=int):
            try:
                out.append(f"{fd} -> {os.readlink(f'/proc/{self.pid}/fd/{fd}')}")
            except OSError:
                pass
        return "\n".join(out)

    def issue(self, name, *flags, key="ec"):
        """sfmtls-ca issue client from this server's dev CA."""
        return issue_client(self.state, self.tmp, name, *flags, key=key)


def issue_client(ca_dir, out_dir, name, *flags, key="ec"):
    """sfmtls-ca issue client --dir ca_dir; the files go to out_dir/name.*"""
    prefix = os.path.join(out_dir, name)
    run([CA_BIN, "issue", "client", "--dir", ca_dir, "--cn", name, "--out", prefix, "--key", key, *flags])
    return Cert(prefix)


def new_ca(parent, name):
    """sfmtls-ca init --dir parent/name: a root and an intermediate; returns the dir."""
    d = os.path.join(parent, name)
    run([CA_BIN, "init", "--dir", d])
    return d


CRL_CONFIG = """
[ ca ]
default_ca = crl
[ crl ]
database = {work}/index.txt
crlnumber = {work}/crlnumber
default_md = sha256
default_crl_days = 30
certificate = {cert}
private_key = {key}
"""

# make_crl(..., *STALE_CRL): a CRL whose nextUpdate is long past (wolfSSL would
# take it as no CRL at all), with no waiting for a fresh one to age.
STALE_CRL = ("-crl_lastupdate", "20240101000000Z", "-crl_nextupdate", "20240102000000Z")


def make_crl(work, cert, key, revoked, *gencrl_args):
    """A CRL (PEM) signed by cert/key listing the certificate files in `revoked`,
    made with `openssl ca` (a test tool, not part of sfmtls) in the new dir work."""
    os.makedirs(work)
    cfg = os.path.join(work, "crl.cnf")
    write_text(cfg, CRL_CONFIG.format(work=work, cert=cert, key=key))
    write_text(os.path.join(work, "index.txt"), "")
    write_text(os.path.join(work, "crlnumber"), "01\n")
    for path in revoked:
        run(["openssl", "ca", "-batch", "-config", cfg, "-revoke", path])
    crl = os.path.join(work, "crl.pem")
    run(["openssl", "ca", "-batch", "-config", cfg, "-gencrl", "-out", crl, *gencrl_args])
    return crl


class Cert:
    """PREFIX.crt (leaf), PREFIX.key, PREFIX.chain.pem (leaf + issuer); rest: the chain after the leaf."""

    def __init__(self, prefix):
        self.crt, self.key, self.chain = prefix + ".crt", prefix + ".key", prefix + ".chain.pem"
        for path in (self.crt, self.key, self.chain):
            if not os.path.exists(path):
                raise AssertionError(f"sfmtls-ca did not write {path}")
        # What s_client must add with -cert_chain: the chain file after the leaf.
        blocks = pem_blocks(read_text(self.chain))
        self.rest = None
        if len(blocks) > 1:
            self.rest = prefix + ".rest.pem"
            with open(self.rest, "w") as f:
                f.write("".join(blocks[1:]))
        self.chain_count = len(blocks)
        with open(self.crt) as f:
            pem = f.read()
        self.fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
        facts = run(["openssl", "x509", "-in", self.crt, "-noout", "-nameopt", "RFC2253", "-subject", "-issuer",
                     "-serial", "-startdate", "-enddate"])
        f = dict(line.split("=", 1) for line in facts.splitlines() if "=" in line)
        self.subject, self.issuer, self.serial = f["subject"], f["issuer"], f["serial"]
        self.not_before = parse_openssl_time(f["notBefore"])
        self.not_after = parse_openssl_time(f["notAfter"])


def parse_openssl_time(text):
    return datetime.datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)


def parse_iso_utc(text):
    """ISO 8601 UTC ("2026-01-02T03:04:05Z", optional fraction) -> datetime, or None."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)", text or "")
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------- HTTP parsing

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers} {self.body[:300]!r}>"


STATUS_RE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})[^\r\n]*\r?\n")


def parse_http(data, raw_chunked):
    """Every HTTP response in a client's output, in order.

    raw_chunked: the output holds chunked bodies as sent (s_client) rather
    than decoded (curl).
    """
    out, pos = [], 0
    while True:
        m = STATUS_RE.search(data, pos)
        if not m:
            return out
        end = data.find(b"\r\n\r\n", m.start())
        if end < 0:
            return out
        headers = {}
        for line in data[m.end():end].split(b"\r\n"):
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
        start = end + 4
        if "content-length" in headers:
            stop = start + int(headers["content-length"])
            body, pos = data[start:stop], stop
        elif "chunked" in headers.get("transfer-encoding", "") and raw_chunked:
            body, pos = b"", start
            while True:
                nl = data.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(data[pos:nl].split(b";")[0] or b"0", 16)
                body += data[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
                if size == 0:
                    break
        else:
            nxt = STATUS_RE.search(data, start)
            stop = nxt.start() if nxt else len(data)
            body, pos = data[start:stop], stop
        out.append(Response(int(m.group(1)), headers, body.decode("utf-8", errors="replace")))


# ---------------------------------------------------------------- clients

class ClientResult:
    """What a client printed: rc, stdout, stderr, the HTTP responses."""

    def __init__(self, cmd, rc, out, err, responses, timed_out=False):
        self.cmd, self.rc, self.out, self.err = cmd, rc, out, err
        self.responses, self.timed_out = responses, timed_out
        self.text = out + "\n" + err

    def __str__(self):
        t = " (TIMED OUT)" if self.timed_out else ""
        return (f"\n$ {' '.join(self.cmd)}\nrc={self.rc}{t}\n--- stdout:\n{tail(_readable(self.out))}\n"
                f"--- stderr:\n{tail(self.err)}")

    def has_alert(self, alert):
        """True if a received alert ("unknown_ca") appears as OpenSSL's error ("alert unknown ca") or -msg prints it."""
        low = "\n".join(line for line in self.text.lower().splitlines() if not line.startswith(">>>"))
        return alert in low or alert.replace("_", " ") in low


def _readable(text):
    """s_client output without hex dumps (-msg) and PEM bodies."""
    text = re.sub(r"(?m)^ {4}(?:[0-9a-f]{2} ?)+\n", "", text)
    return re.sub(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", "[certificate]", text, flags=re.S)


def _run_client(cmd, stdin_data, timeout, raw_chunked):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=clean_env())
    timed_out = False
    try:
        out, err = p.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        p.kill()
        out, err = p.communicate()
    return ClientResult(cmd, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                        parse_http(out, raw_chunked), timed_out)


def tls_flags_curl(tls):
    return {None: [], "1.2": ["--tlsv1.2", "--tls-max", "1.2"], "1.3": ["--tlsv1.3", "--tls-max", "1.3"]}[tls]


def curl(port, *paths, ca, cert=None, key=None, tls=None, extra=(), timeout=20):
    """curl on one connection to every path (curl reuses it).

    cert: a file with the leaf (sends the leaf only) or the chain file
    (sends leaf + intermediate).
    """
    cmd = ["curl", "-sS", "-i", "--max-time", "10", "--cacert", ca, *tls_flags_curl(tls), *extra]
    if cert:
        cmd += ["--cert", cert, "--key", key]
    cmd += [f"https://127.0.0.1:{port}{p}" for p in paths]
    return _run_client(cmd, None, timeout, raw_chunked=False)


def s_client(port, path="/__admin/tls-info", *, ca, cert=None, key=None, chain=None, tls=None,
             sess_out=None, sess_in=None, msg=False, extra=(), timeout=20):
    """openssl s_client: handshake, then one `GET path` with Connection: close.

    cert/key: the leaf (s_client sends only the first certificate of -cert);
    chain: more certificates to send after it (-cert_chain).
    """
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
           "-CAfile", ca, "-ign_eof"]
    if tls:
        cmd.append("-tls1_2" if tls == "1.2" else "-tls1_3")
    if cert:
        cmd += ["-cert", cert, "-key", key]
    if chain:
        cmd += ["-cert_chain", chain]
    if sess_out:
        cmd += ["-sess_out", sess_out]
    if sess_in:
        cmd += ["-sess_in", sess_in]
    if msg:
        cmd.append("-msg")
    cmd += list(extra)
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    return _run_client(cmd, request, timeout, raw_chunked=True)


# ---------------------------------------------------------------- raw sockets

_HELLO = None


def client_hello():
    """The bytes of a real TLS ClientHello (made once with the ssl module)."""
    global _HELLO
    if _HELLO is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        _HELLO = outg.read()
    return _HELLO


def wait_for_eof(sock, timeout):
    """Seconds until the peer closed (EOF or reset), or None after timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except socket.timeout:
            return None
        except OSError:  # ECONNRESET and friends: closed too
            return time.monotonic() - start


def reset_close(sock):
    """Close with RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def poll_until(pred, timeout, interval=0.05):
    """Calls pred() until it returns truthy or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------- test base


class E2EAsserts:
    """Assertions for any test case (a unittest.TestCase mixin)."""

    def assert_error(self, resp, status, code, what=""):
        """resp, an admin() answer (status, headers, data), is the error
        [{"errorCode": code, "message": "..."}] with that status, in JSON."""
        st, headers, data = resp
        msg = f"{what}: {resp}"
        self.assertEqual(st, status, msg)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), msg)
        self.assertIsInstance(data, list, msg)
        self.assertEqual(len(data), 1, msg)
        self.assertEqual(set(data[0]), {"errorCode", "message"}, msg)
        self.assertEqual(data[0]["errorCode"], code, msg)
        self.assertIsInstance(data[0]["message"], str, msg)
        self.assertTrue(data[0]["message"], msg)

    def assert_start_fails(self, args, needle, state_dir=None, timeout=15):
        """sfmtls-server with args (the default org, port 0) exits non-zero,
        prints no ready line, and says `needle`; returns the CompletedProcess."""
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [SERVER_BIN, "--fixtures", FIXTURES, "--state-dir", state_dir or os.path.join(tmp, "state"),
                   "--bind", "127.0.0.1", "--mtls-port", "0", "--port", "0", *args]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())
            except subprocess.TimeoutExpired as e:
                self.fail(f"{' '.join(cmd)} still running after {timeout} s (stdout: {e.stdout!r})")
        msg = f"$ {' '.join(cmd)}\nrc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        self.assertNotEqual(p.returncode, 0, msg)
        self.assertNotIn("sfmtls ready", p.stdout, msg)
        self.assertIn(needle, p.stdout + p.stderr, msg)
        return p


class ServerTestCase(E2EAsserts, unittest.TestCase):
    """One server per class (server_args, server_env; state_dir, else a fresh
    one), stopped with SIGTERM at the end."""

    server_args = ()
    server_env = None
    state_dir = None
    server = None

    @classmethod
    def before_start(cls):
        """Per-class setup before the server starts; returns more server args."""
        return ()

    @classmethod
    def setUpClass(cls):
        more = cls.before_start()
        cls.server = Server(*cls.server_args, *more, env=cls.server_env, state_dir=cls.state_dir)
        try:
            cls.prepare()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def prepare(cls):
        """Per-class setup after the server started (certificates...)."""

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        if srv is None:
            return
        try:
            was_alive = srv.alive()
            rc = srv.stop()
            if not was_alive or rc != 0:
                raise AssertionError(f"server did not exit 0 on SIGTERM (rc={rc}, alive before: {was_alive})\n"
                                     f"{srv.describe()}")
        finally:
            srv.cleanup()

    # -- helpers

    def explain(self, result):
        """A failure message: what the client printed, and the server if it died."""
        s = str(result)
        if not self.server.alive():
            s += "\n" + self.server.describe()
        return s

    def curl(self, listener, *paths, cert=None, chain=True, tls=None, **kw):
        """curl to a listener; cert: a Cert sent with its chain (chain=True) or bare."""
        c = k = None
        if cert is not None:
            c, k = (cert.chain if chain else cert.crt), cert.key
        return curl(self.server.port(listener), *paths, ca=self.server.ca, cert=c, key=k, tls=tls, **kw)

    def s_client(self, listener, path="/__admin/tls-info", cert=None, chain=True, **kw):
        c = k = ch = None
        if cert is not None:
            c, k, ch = cert.crt, cert.key, (cert.rest if chain else None)
        return s_client(self.server.port(listener), path, ca=self.server.ca, cert=c, key=k, chain=ch, **kw)

    def response(self, result, index=0, count=None):
        """The index-th HTTP response in a client's output (fails showing the output)."""
        if count is not None:
            self.assertEqual(len(result.responses), count, f"expected {count} HTTP responses" + self.explain(result))
        self.assertGreater(len(result.responses), index, "missing HTTP response" + self.explain(result))
        return result.responses[index]

    def json_of(self, result, index=0, status=200):
        r = self.response(result, index)
        self.assertEqual(r.status, status, self.explain(result))
        try:
            return r.json()
        except ValueError:
            self.fail(f"body is not JSON: {r.body!r}" + self.explain(result))

    def assert_tls_info(self, info, result, listener, tls):
        msg = f"tls-info: {info}" + self.explain(result)
        self.assertEqual(info.get("listener"), listener, msg)
        if tls:
            self.assertEqual(info.get("tlsVersion"), "TLSv" + tls, msg)
        else:
            self.assertIn(info.get("tlsVersion"), ("TLSv1.2", "TLSv1.3"), msg)
        # Salesforce's suites, by their IANA names (SPEC section 2).
        allowed = {
            "TLSv1.3": {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_AES_128_CCM_SHA256",
                        "TLS_AES_128_CCM_8_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
            "TLSv1.2": {f"TLS_ECDHE_{k}_WITH_AES_{b}_{m}" for k in ("RSA", "ECDSA")
                        for b, m in (("256", "GCM_SHA384"), ("128", "GCM_SHA256"),
                                     ("256", "CBC_SHA384"), ("128", "CBC_SHA256"))},
        }
        self.assertIn(info.get("cipher"), allowed.get(info.get("tlsVersion"), set()), msg)
        self.assertIn("resumed", info, msg)
        self.assertIn("clientCertificate", info, msg)

    def assert_cert_facts(self, cc, cert, result, chain_length, reason):
        """clientCertificate of tls-info against the leaf's own facts (from openssl)."""
        msg = f"clientCertificate: {cc}" + self.explain(result)
        self.assertIsInstance(cc, dict, msg)
        self.assertEqual(cc.get("fingerprintSha256"), cert.fingerprint, msg)
        self.assertEqual(cc.get("subject"), cert.subject, msg)
        self.assertEqual(cc.get("issuer"), cert.issuer, msg)
        serial = cc.get("serialNumber") or ""
        self.assertRegex(serial, r"^[0-9A-F]+$", msg)
        self.assertEqual(int(serial, 16), int(cert.serial, 16), msg)
        self.assertEqual(parse_iso_utc(cc.get("notBefore")), cert.not_before, msg)
        self.assertEqual(parse_iso_utc(cc.get("notAfter")), cert.not_after, msg)
        self.assertEqual(cc.get("chainLength"), chain_length, msg)
        self.assertIs(cc.get("chainVerified"), reason is None, msg)
        self.assertIn("reason", cc, msg)
        self.assertEqual(cc.get("reason"), reason, msg)

    def assert_curl_alert(self, res, alert):
        """curl failed with the alert, and got no HTTP answer.

        curl 7.88 reports a certificate_expired alert received *during* the
        handshake (TLS 1.2) as exit 60 "SSL certificate verification failed",
        without the alert's name (it does the same against openssl s_server).
        """
        msg = f"expected alert {alert}" + self.explain(res)
        self.assertNotEqual(res.rc, 0, msg)
        self.assertEqual(res.responses, [], msg)
        curl_quirk = (alert == "certificate_expired" and res.rc == 60
                      and "SSL certificate verification failed" in res.err)
        self.assertTrue(res.has_alert(alert) or curl_quirk, msg)

    def assert_s_client_alert(self, res, alert):
        """s_client (run with msg=True) received the alert, and no HTTP answer."""
        msg = f"expected alert {alert}" + self.explain(res)
        self.assertEqual(res.responses, [], msg)
        self.assertTrue(res.has_alert(alert), msg)

    def assert_cert_page(self, resp, reason, result):
        """The Certificate Error page for a layer-1 reason."""
        msg = f"response: {resp}" + self.explain(result)
        self.assertEqual(resp.status, 400, msg)
        self.assertTrue(resp.headers.get("content-type", "").startswith("text/html"), msg)
        self.assertEqual(resp.headers.get("x-sfmtls-reason"), reason, msg)
        self.assertIn("<title>Certificate Error</title>", resp.body, msg)
        self.assertIn(f"Client certificate error:<i>{REASONS[reason][1]}</i>", resp.body, msg)

    def assert_versions(self, result):
        versions = self.json_of(result)
        expected = []
        for i, v in enumerate(range(31, 68)):
            season = ("Summer", "Winter", "Spring")[i % 3]
            year = 14 + (i + 2) // 3
            expected.append({"label": f"{season} '{year:02d}", "url": f"/services/data/v{v}.0", "version": f"{v}.0"})
        self.assertEqual(versions, expected, self.explain(result))


class PkiServerTestCase(ServerTestCase):
    """Builds files in cls.pki (a fresh dir, removed at the end) before the
    server starts: build_pki(pki) returns more server args (and may set
    cls.state_dir)."""

    @classmethod
    def build_pki(cls, pki):
        return ()

    @classmethod
    def before_start(cls):
        return cls.build_pki(cls.pki)

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="sfmtls-e2e-pki-")
        try:
            super().setUpClass()
        except BaseException:
            shutil.rmtree(cls.pki, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.pki, ignore_errors=True)

    def check_page(self, cert, reason):
        """Page mode: the Certificate Error page for reason, and tls-info saying why."""
        res = self.curl("mtls", "/services/data/", "/__admin/tls-info", cert=cert)
        self.assert_cert_page(self.response(res, 0), reason, res)
        cc = self.json_of(res, 1)["clientCertificate"]
        self.assertEqual((cc or {}).get("reason"), reason, f"{cc}" + self.explain(res))

    def check_alert(self, cert, reason):
        """Alert mode: curl and s_client both get the reason's alert."""
        alert = REASONS[reason][0]
        self.assert_curl_alert(self.curl("mtls", "/services/data/", cert=cert), alert)
        self.assert_s_client_alert(self.s_client("mtls", "/services/data/", cert=cert, msg=True), alert)


# ---------------------------------------------------------------- Python clients, the admin API

FROM_STATE = object()  # admin(token=...): read <state-dir>/admin-token


def admin_token(server):
    """The token the server generated into <state-dir>/admin-token."""
    with open(os.path.join(server.state, "admin-token")) as f:
        return f.read().strip()


def tls_context(ca, cert=None, tls=None):
    """A fresh client SSLContext trusting `ca`; cert: a Cert presented with its
    chain; tls: "1.2" or "1.3" to pin the version."""
    ctx = ssl.create_default_context(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(cert.chain, cert.key)
    if tls:
        v = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[tls]
        ctx.minimum_version = ctx.maximum_version = v
    return ctx


def tls_socket(server, cert=None, listener="mtls", timeout=10):
    """A TLS connection (ssl.SSLSocket, handshake done) to a listener, presenting cert's chain."""
    sock = socket.create_connection(("127.0.0.1", server.port(listener)), timeout=timeout)
    try:
        return tls_context(server.ca, cert).wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


class KeepAlive(http.client.HTTPSConnection):
    """A keep-alive connection to 127.0.0.1 that can offer a TLS session; it
    never reconnects by itself (auto_open off once connected), so every
    request really goes over the one connection."""

    def __init__(self, port, ctx, session=None, timeout=20):
        super().__init__("127.0.0.1", port, timeout=timeout, context=ctx)
        self.offer = session

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host, session=self.offer)
        self.auto_open = 0

    def get(self, path):
        """GET path -> (status, lowercase headers, body text)."""
        self.request("GET", path)
        r = self.getresponse()
        body = r.read().decode("utf-8", errors="replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body


class Answer:
    """One HTTP answer: status, lowercase headers, every Set-Cookie, the body
    as text (`text`, also `body`)."""

    def __init__(self, status, headers, cookies, text):
        self.status, self.headers, self.cookies, self.text = status, headers, cookies, text

    @property
    def body(self):
        return self.text

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers} cookies={self.cookies} {self.text[:800]!r}>"


def https(server, method, path, *, body=None, headers=None, listener="standard", cert=None, timeout=20):
    """One request on a new connection to 127.0.0.1 -> Answer; redirects are
    not followed. body: str or bytes; cert: a Cert presented with its chain."""
    conn = http.client.HTTPSConnection("127.0.0.1", server.port(listener), timeout=timeout,
                                       context=tls_context(server.ca, cert))
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.headers.get_all("Set-Cookie") or [],
                      raw.decode("utf-8", errors="replace"))
    finally:
        conn.close()


def get_statuses(server, paths, listener="standard"):
    """GET each path in turn on one keep-alive connection -> their statuses."""
    conn = KeepAlive(server.port(listener), tls_context(server.ca))
    try:
        return [conn.get(p)[0] for p in paths]
    finally:
        conn.close()


def admin(server, method, path, body=None, token=FROM_STATE, *, listener="standard", headers=None, cert=None,
          timeout=20):
    """One request on a new connection -> (status, headers, data).

    body: a dict/list (sent as JSON), str or bytes (sent as is), or None.
    token: FROM_STATE (the state dir's admin-token file), a string (sent as
    "Bearer <token>"), or None (no Authorization header; pass one in
    `headers` to send something else). headers: a dict with lowercase keys.
    data: None for an empty body, else the parsed JSON, else the body text.
    cert: a Cert to present (with its chain), for the mTLS listener.
    """
    hdrs = {}
    if token is FROM_STATE:
        token = admin_token(server)
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        body = body.encode()
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    hdrs.update(headers or {})
    conn = http.client.HTTPSConnection("127.0.0.1", server.port(listener), timeout=timeout,
                                       context=tls_context(server.ca, cert))
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        rh = {k.lower(): v for k, v in r.getheaders()}
        status = r.status
    finally:
        conn.close()
    text = raw.decode("utf-8", errors="replace")
    if not raw:
        return status, rh, None
    try:
        return status, rh, json.loads(text)
    except ValueError:
        return status, rh, text
