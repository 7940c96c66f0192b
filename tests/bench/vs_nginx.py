#!/usr/bin/env python3
"""sfmtls against nginx on loopback, in the same run (driven by scripts/bench).

    tests/bench/vs_nginx.py --build-dir BUILD [--rounds 3] [--duration 5] [--quick]
        [--connections 32] [--idle 10000] [--certs 100000] [--nginx /usr/sbin/nginx]
        [--latency-rate 2000] [--latency-connections 16]

One CA directory (sfmtls-ca init: an ECDSA root and intermediate) issues both
peers' server certificates (ECDSA P-256 and RSA-2048, for localhost) and the
client certificates (same key kind as the server key of the case, sent with
their intermediate). sfmtls runs with --tls-cert/--tls-key on that chain,
--ephemeral, --workers = nproc, the client certificates uploaded; nginx with
the same chain, worker_processes = nproc, TLS 1.2 + 1.3, ssl_trusted_certificate
= the root (no CA names sent), ssl_verify_client optional_no_ca (nginx 1.22
refuses plain "optional" without ssl_client_certificate, which would send CA
names; the chain is still verified against the trusted root, and a request
whose $ssl_client_verify is not SUCCESS gets 403, so every counted answer had
a verified chain), keepalive_requests unbounded, session tickets on and no
session-id cache (nginx's defaults, set explicitly; sfmtls too resumes by
ticket only), and `return` of the exact bytes sfmtls answers:

  GET  /services/data/          200, sfmtls's 2,554-byte versions list (the
                                policy path: layer 1, fingerprint lookup, policy)
  POST /services/oauth2/revoke  64 KiB form body token=aaa...; sfmtls reads and
                                parses the whole body and answers 400
                                unsupported_token_type (89 bytes); nginx reads
                                and discards the body and returns the same 400

Cases run alternately (sfmtls then nginx, nginx then sfmtls in the next round),
--rounds times; the table gives medians and min-max. Server CPU is utime+stime
from /proc/PID/stat (sfmtls: the process, all threads; nginx: master and every
worker); loadgen CPU is its rusage (both over the whole loadgen run, warm-up
included). Latency: the kept-alive GET at a fixed, moderate rate
(--latency-rate, 2,000 requests/s over --latency-connections 16 kept-alive
connections; loadgen --rate: open loop, each request's latency runs from its
intended send time, so a stall is not hidden); the table gives the medians
over the rounds of each run's p50 and p99, the same from when each request
actually left (without loadgen's own send lag, which the next row gives), and
a warning says when loadgen did not keep up with the rate (achieved < 95%, or
1% of requests left 1 ms late or more). Resumption: the "resumed handshake" lines are the handshake lines with
loadgen --resume 1 (each connection slot first makes one uncounted full
handshake, then every counted connection offers the ticket of the slot's
previous one); the table gives how many handshakes the server resumed, and a
line where some did not says so (a warning, and its ratio is n/a). The
sfmtls-only line "resumed hs EC TLS1.3, standard" is the TLS 1.3 one on
sfmtls's standard listener (no client certificate).

sfmtls alone: two servers alternated, one with the bench client certificate
only, one with --certs more uploaded through the admin API (4 connections in
parallel; each is a real upload of leaf + intermediate, signed quickly by
`openssl ca -infiles` from one key with distinct serials); then the time from
exec to the ready line, --starts times, on a state dir already set up.
"""

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(SOURCE_DIR, "fixtures", "default-org.json")
# The e2e harness's ready-line reader and pattern.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from sfmtls_e2e import READY_RE as READY, first_line, stop_process  # noqa: E402
TICK = os.sysconf("SC_CLK_TCK")
GET_PATH = "/services/data/"
POST_PATH = "/services/oauth2/revoke"
POST_SIZE = 64 * 1024


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- processes

def proc_cpu(pid):
    """utime+stime of one process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


class Sfmtls:
    name = "sfmtls"

    def __init__(self, server_bin, state, cert, key, workers, tmp):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFMTLS_")}
        self.state = state
        self.cmd = [server_bin, "--fixtures", FIXTURES, "--state-dir", state, "--ephemeral", "--bind",
                    "127.0.0.1", "--mtls-port", "0", "--port", "0", "--tls-cert", cert, "--tls-key", key,
                    "--workers", str(workers), "--idle-timeout", "900"]
        self.err = open(os.path.join(tmp, f"sfmtls-{os.path.basename(state)}.stderr"), "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, env=env)
        line = first_line(self.proc, 30)
        self.ready_s = time.monotonic() - t0
        m = READY.match(line)
        if not m:
            self.stop()
            sys.exit(f"no ready line from {' '.join(self.cmd)}: {line!r}")
        self.port, self.std_port = int(m.group(1)), int(m.group(2))
        with open(os.path.join(state, "admin-token")) as f:
            self.token = f.read().strip()

    def pids(self):
        return [self.proc.pid]

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def rss(self):
        return proc_status(self.proc.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.proc.pid, "VmHWM")

    def alive(self):
        return self.proc.poll() is None

    def upload(self, cafile, pems, threads=4):
        """Uploads PEMs through the admin API on the standard listener, `threads` keep-alive
        connections in parallel; returns the count accepted."""
        ctx = ssl.create_default_context(cafile=cafile)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        done = [0] * threads
        errors = []

        def work(t):
            conn = http.client.HTTPSConnection("localhost", self.std_port, context=ctx, timeout=60)
            for i in range(t, len(pems), threads):
                conn.request("POST", "/__admin/mutual-auth-certificates",
                             json.dumps({"label": f"bulk{i}", "pem": pems[i]}), headers)
                res = conn.getresponse()
                body = res.read()
                if res.status != 201:
                    errors.append(f"upload {i}: {res.status} {body[:200]!r}")
                    return
                done[t] += 1
            conn.close()

        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            log(f"  upload stopped: {errors[0]}")
        return sum(done)

    def stop(self):
        stop_process(self.proc)
        self.err.close()


NGINX_CONF = """\
worker_processes {workers};
worker_rlimit_nofile 200000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
master_process on;
events {{ worker_connections 65536; use epoll; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 900s;
    client_body_buffer_size 128k;
    client_max_body_size 2m;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} ssl reuseport;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;
        ssl_verify_client optional_no_ca;  # 1.22 wants ssl_client_certificate (CA names sent) for "optional"
        ssl_verify_depth 2;
        ssl_session_tickets on;  # the default, as sfmtls: resumption by ticket only
        ssl_session_cache none;  # the default: no session-id cache (sfmtls has none either)
        ssl_trusted_certificate {root};
        default_type "application/json;charset=UTF-8";
        if ($ssl_client_verify != SUCCESS) {{ return 403; }}
        location = {get_path} {{ return 200 "{get_body}"; }}
        location = {post_path} {{ return {post_status} "{post_body}"; }}
    }}
}}
"""


def nginx_string(s):
    if "$" in s:
        sys.exit("a body with '$' cannot be put in nginx's return")
    return s.replace("\\", "\\\\").replace('"', '\\"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    name = "nginx"

    def __init__(self, binary, tmp, tag, workers, cert, key, root, get_body, post_status, post_body):
        self.dir = os.path.join(tmp, f"nginx-{tag}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(workers=workers, dir=self.dir, port=self.port, cert=cert, key=key,
                                      root=root, get_path=GET_PATH, get_body=nginx_string(get_body),
                                      post_path=POST_PATH, post_status=post_status,
                                      post_body=nginx_string(post_body)))
        self.err = open(os.path.join(self.dir, "stderr"), "ab")
        self.proc = subprocess.Popen([binary, "-c", conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"nginx exited: {open(os.path.join(self.dir, 'stderr')).read()[-2000:]}")
            if len(children_of(self.proc.pid)) >= workers:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 1).close()
                    break
                except OSError:
                    pass
            time.sleep(0.05)
        else:
            sys.exit("nginx did not start")

    def pids(self):
        return [self.proc.pid, *children_of(self.proc.pid)]

    def cpu(self):
        return sum(proc_cpu(p) for p in self.pids())

    def rss(self):
        return sum(proc_status(p, "VmRSS") for p in self.pids())

    def hwm(self):
        return sum(proc_status(p, "VmHWM") for p in self.pids())

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)  # graceful
        self.err.close()


# ---------------------------------------------------------------- load

class Listener:
    """Another listener of a peer's process (sfmtls's standard one): its own port and name, the
    process's CPU."""

    def __init__(self, peer, name, port):
        self.peer, self.name, self.port = peer, name, port

    def cpu(self):
        return self.peer.cpu()

    def alive(self):
        return self.peer.alive()


def kept_up(res):
    """An open-loop (--rate) run kept its schedule: 95% of the rate, under 1% of requests late."""
    return (res["rate_achieved"] >= 0.95 * res["rate_target"] and res["late"] <= 0.01 * max(1, res["sent"])
            and res["unsent"] <= 0.01 * max(1, res["scheduled"]))


def all_resumed(res):
    return res["handshakes_run"] > 0 and res["resumed"] == res["handshakes_run"]


class Loadgen:
    def __init__(self, binary, ca, connections, threads, duration):
        self.binary, self.ca = binary, ca
        self.connections, self.threads, self.duration = connections, threads, duration
        self.shown = set()

    def run(self, peer, label, client, *, tls="1.3", keepalive=1, method="GET", path=GET_PATH, body=None,
            expect=200, connections=None, rate=None, resume=0):
        conns = connections or self.connections
        cmd = [self.binary, "--host", "127.0.0.1", "--port", str(peer.port), "--ca", self.ca,
               "--server-name", "localhost", "--tls", tls,
               "--connections", str(conns), "--threads", str(min(self.threads, conns)),
               "--duration", f"{self.duration:g}", "--keepalive", str(keepalive), "--method", method,
               "--path", path, "--expect-status", str(expect)]
        if client:
            cmd += ["--cert", client[0], "--key", client[1]]
        if rate:
            cmd += ["--rate", f"{rate:g}"]
        if resume:
            cmd += ["--resume", "1"]
        if body:
            cmd += ["--body-file", body, "--content-type", "application/x-www-form-urlencoded"]
        if (label, peer.name) not in self.shown:
            self.shown.add((label, peer.name))
            log(f"    [{label} / {peer.name}] {' '.join(cmd)}")
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s0 = peer.cpu()
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.duration + 120)
        wall = time.monotonic() - t0
        s1 = peer.cpu()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if not lines:
            sys.exit(f"loadgen printed no result (exit {p.returncode}): {' '.join(cmd)}\n{p.stderr}")
        res = json.loads(lines[-1])
        n = max(1, res["requests"])
        res["server_us"] = (s1 - s0) / n * 1e6
        res["server_cores"] = (s1 - s0) / wall
        res["loadgen_cores"] = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) / wall
        bad = res["errors"] + res["status_mismatch"]
        if bad:
            log(f"    ! {label} / {peer.name}: {res['errors']} errors, {res['status_mismatch']} status "
                f"mismatches: {p.stderr.strip()[:300]}")
        if rate and not kept_up(res):
            log(f"    ! {label} / {peer.name}: loadgen did not keep up with {rate:g}/s: {res['rate_achieved']:.0f}/s "
                f"sent, {res['late']} of {res['sent']} requests left 1 ms late or more (send lag p99 "
                f"{res['lag_p99_ms']:.3f} ms), {res['unsent']} never left: the latencies (from the intended send "
                f"times) include the generator's own delay (a busy machine?) or a backlog")
        if resume and not all_resumed(res):
            log(f"    ! NOT RESUMED: {label} / {peer.name}: only {res['resumed']} of {res['handshakes_run']} "
                f"handshakes resumed ({res['resume_offered']} offered a ticket): this run measured full handshakes")
        if not peer.alive():
            sys.exit(f"{peer.name} exited during {label}")
        return res


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs, fmt):
    return f"{fmt.format(min(xs))}-{fmt.format(max(xs))}" if xs else "-"


# ---------------------------------------------------------------- certificates

def ca_run(ca_bin, *args):
    subprocess.run([ca_bin, *args], check=True, stdout=subprocess.DEVNULL)


OPENSSL_CA_CNF = """\
[ca]
default_ca = d
[d]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
new_certs_dir = {dir}/out
certificate = {cadir}/intermediate.pem
private_key = {cadir}/intermediate.key
default_md = sha256
default_days = 30
policy = p
unique_subject = no
copy_extensions = none
x509_extensions = ext
[p]
commonName = supplied
[ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""


def bulk_certificates(cadir, tmp, n, jobs=2, batch=2000):
    """n distinct client certificates signed by the CA's intermediate: one P-256 key and CSR, signed n
    times with distinct serials by `openssl ca -infiles` (thousands per process, instead of one process
    per certificate). Returns their PEMs (leaf only)."""
    if n <= 0:
        return []
    base = os.path.join(tmp, "bulk")
    os.makedirs(base, exist_ok=True)
    key, csr = os.path.join(base, "k.pem"), os.path.join(base, "c.csr")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-subj", "/O=sfmtls/CN=bulk", "-out", csr], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    batches = [(i, min(batch, n - i)) for i in range(0, n, batch)]
    results = [None] * len(batches)

    def sign(k):
        start, count = batches[k]
        d = os.path.join(base, f"b{k}")
        os.makedirs(os.path.join(d, "out"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write(f"{0x5EED00000000 + start:012X}\n")
        cnf = os.path.join(d, "ca.cnf")
        with open(cnf, "w") as f:
            f.write(OPENSSL_CA_CNF.format(dir=d, cadir=cadir))
        out = os.path.join(d, "all.pem")
        p = subprocess.run(["openssl", "ca", "-config", cnf, "-batch", "-notext", "-out", out, "-infiles",
                            *([csr] * count)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            results[k] = []
            log(f"  openssl ca failed (batch {k}): {p.stderr.strip()[-300:]}")
            return
        pems = []
        for name in sorted(os.listdir(os.path.join(d, "out"))):  # one file per serial
            with open(os.path.join(d, "out", name)) as f:
                text = f.read()
            pems.append(text[text.index("-----BEGIN CERTIFICATE-----"):])
        shutil.rmtree(d, ignore_errors=True)
        results[k] = pems

    pending = list(range(len(batches)))
    while pending:
        ts = [threading.Thread(target=sign, args=(k,)) for k in pending[:jobs]]
        pending = pending[jobs:]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return [p for r in results for p in r]


# ---------------------------------------------------------------- idle connections

def idle_rss(peer, cafile, client, n):
    """Opens n mTLS connections (TLS 1.3, one GET each, held open); returns (KiB per connection,
    opened, seconds)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.load_cert_chain(client[0], client[1])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    time.sleep(0.3)
    before = peer.rss()
    conns = []
    t0 = time.monotonic()
    req = f"GET {GET_PATH} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    try:
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", peer.port), 10), server_hostname="localhost")
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            if b" 200 " not in data.split(b"\r\n", 1)[0]:
                s.close()
                log(f"    ! {peer.name}: connection {len(conns) + 1} answered {data[:120]!r}")
                break
            head, _, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(rest) < need:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
            conns.append(s)
    except OSError as e:
        log(f"    ! {peer.name}: stopped after {len(conns)} connections: {e}")
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    after = peer.rss()
    alive = len(conns)
    for s in conns:
        s.close()
    return (after - before) / max(1, alive), alive, elapsed


# ---------------------------------------------------------------- main

def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return len(os.sched_getaffinity(0)), model


def version_of(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def fetch(cafile, client, port, method, path, body=None):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.load_cert_chain(*client)
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    conn.request(method, path, body, headers)
    res = conn.getresponse()
    data = res.read()
    ctype = res.getheader("Content-Type")
    conn.close()
    return res.status, data, ctype


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--quick", action="store_true", help="fewer cases, 1 s each, small counts: a smoke run")
    ap.add_argument("--connections", type=int, default=32, help="loadgen connections (default 32)")
    ap.add_argument("--threads", type=int, default=0, help="loadgen threads (default: nproc)")
    ap.add_argument("--idle", type=int, default=10000, help="idle mTLS connections for the RSS case")
    ap.add_argument("--certs", type=int, default=100000, help="uploaded certificates for the flatness case")
    ap.add_argument("--starts", type=int, default=9, help="starts timed for start-to-ready")
    ap.add_argument("--latency-rate", type=float, default=2000,
                    help="requests/s in all for the latency line (open loop; default 2000)")
    ap.add_argument("--latency-connections", type=int, default=16,
                    help="kept-alive connections for the latency line (default 16)")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    args = ap.parse_args()
    if args.quick:
        args.duration = 1
        args.rounds = max(1, min(args.rounds, 3)) if "--rounds" in sys.argv else 1
        if "--idle" not in sys.argv:
            args.idle = 500
        if "--certs" not in sys.argv:
            args.certs = 2000
        if "--starts" not in sys.argv:
            args.starts = 3
    build = os.path.abspath(args.build_dir)
    server_bin = os.path.join(build, "server", "sfmtls-server")
    ca_bin = os.path.join(build, "ca", "sfmtls-ca")
    loadgen_bin = os.path.join(build, "tests", "bench", "loadgen")
    floor_bin = os.path.join(build, "tests", "bench", "crypto_floor")
    for path in (server_bin, ca_bin, loadgen_bin, floor_bin, args.nginx):
        if not os.access(path, os.X_OK):
            sys.exit(f"not an executable: {path}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cores, model = machine()
    workers = cores
    threads = args.threads or cores
    t_start = time.monotonic()

    log(f"machine: {cores} cores (nproc), {model}; RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    log(f"sfmtls: {version_of([server_bin, '--version'])}  ({server_bin}, --workers {workers})")
    log(f"nginx: {version_of([args.nginx, '-V'])}, worker_processes {workers}")
    log(f"loadgen: {args.connections} connections, {threads} threads, {args.duration:g} s per run, "
        f"{args.rounds} rounds, peers alternated (first peer swaps each round); latency at "
        f"{args.latency_rate:g} requests/s on {args.latency_connections} kept-alive connections")

    tmp = tempfile.mkdtemp(prefix="sfmtls-vs-nginx-")
    peers = []
    try:
        cadir = os.path.join(tmp, "ca")
        ca_run(ca_bin, "init", "--dir", cadir, "--key", "ec")
        root = os.path.join(cadir, "ca.pem")
        certs = {}
        for kind, keyarg in (("ec", "ec"), ("rsa", "rsa2048")):
            srv = os.path.join(tmp, f"server-{kind}")
            ca_run(ca_bin, "issue", "server", "--dir", cadir, "--cn", "localhost", "--san", "localhost", "--san",
                   "127.0.0.1", "--key", keyarg, "--out", srv)
            cli = os.path.join(tmp, f"client-{kind}")
            ca_run(ca_bin, "issue", "client", "--dir", cadir, "--cn", f"bench-{kind}", "--key", keyarg, "--out", cli)
            certs[kind] = {"server": (srv + ".chain.pem", srv + ".key"), "client": (cli + ".chain.pem", cli + ".key")}
        log("certificates: one sfmtls-ca root + intermediate (ECDSA P-256); server and client leaves ECDSA P-256 "
            "or RSA-2048 as the case says; clients send leaf + intermediate")

        # The crypto floor of the ECDSA handshake, with the wolfSSL build sfmtls links, measured
        # while nothing else of this run is going.
        fl = subprocess.run([floor_bin, "--seconds", "0.5" if args.quick else "2"], capture_output=True,
                            text=True, timeout=120)
        if fl.returncode != 0:
            sys.exit(f"crypto_floor failed: {fl.stderr}")
        floor = json.loads(fl.stdout.strip().splitlines()[-1])
        log(f"crypto floor of a full ECDSA P-256 mTLS handshake (this wolfSSL build, one core): sign "
            f"{floor['sign_us']:.1f} + key share {floor['keygen_us']:.1f} + ECDH {floor['ecdh_us']:.1f} + "
            f"{floor['verifies']} x verify {floor['verify_us']:.1f} = {floor['floor_us']:.1f} us")

        def new_state(tag):
            d = os.path.join(tmp, f"state-{tag}")
            os.makedirs(d)
            for f in ("ca.pem", "ca.key", "intermediate.pem", "intermediate.key"):
                shutil.copy(os.path.join(cadir, f), d)
            return d

        post_file = os.path.join(tmp, "post-64k")
        with open(post_file, "w") as f:
            f.write("token=" + "a" * (POST_SIZE - 6))
        with open(post_file) as f:
            post_body = f.read()

        loadgen = Loadgen(loadgen_bin, root, args.connections, threads, args.duration)

        def measure(label, peers_, rounds, cases):
            """cases: [(case label, kwargs)]; each case alternates the peers every round."""
            rows = {c: {p.name: [] for p in peers_} for c, _ in cases}
            for r in range(rounds):
                order = peers_ if r % 2 == 0 else list(reversed(peers_))
                for c, kw in cases:
                    for p in order:
                        res = loadgen.run(p, c, **kw)
                        rows[c][p.name].append(res)
                        extra = ""
                        if kw.get("rate"):
                            extra += f"  sent {res['rate_achieved']:.0f}/s, {res['late']} late"
                        if kw.get("resume"):
                            extra += f"  resumed {res['resumed']}/{res['handshakes_run']}"
                        log(f"  round {r + 1} {c:30} {p.name:14} {res['rps']:9.0f}/s  p50 {res['p50_ms']:7.3f} ms  "
                            f"p99 {res['p99_ms']:7.3f} ms  server {res['server_us']:7.1f} us/req "
                            f"({res['server_cores']:.2f} cores)  loadgen {res['loadgen_cores']:.2f} cores  "
                            f"errors {res['errors'] + res['status_mismatch']}{extra}")
            return rows

        all_rows = {}
        latency_case = f"latency GET @{args.latency_rate:g}/s"
        for kind in ("ec", "rsa"):
            srv = certs[kind]["server"]
            client = certs[kind]["client"]
            log(f"\n== {kind.upper()} server key: starting both peers")
            s = Sfmtls(server_bin, new_state(kind), srv[0], srv[1], workers, tmp)
            peers.append(s)
            n = s.upload(root, [open(client[0]).read()], threads=1)
            if n != 1:
                sys.exit("the bench client certificate could not be uploaded")
            st, get_body, ctype = fetch(root, client, s.port, "GET", GET_PATH)
            if st != 200:
                sys.exit(f"sfmtls GET {GET_PATH}: {st} {get_body[:200]!r}")
            pst, pbody, _ = fetch(root, client, s.port, "POST", POST_PATH, post_body.encode())
            ng = Nginx(args.nginx, tmp, kind, workers, srv[0], srv[1], root, get_body.decode(), pst, pbody.decode())
            peers.append(ng)
            nst, nbody, nctype = fetch(root, client, ng.port, "GET", GET_PATH)
            npst, npbody, _ = fetch(root, client, ng.port, "POST", POST_PATH, post_body.encode())
            if (nst, len(nbody), npst, len(npbody)) != (st, len(get_body), pst, len(pbody)):
                sys.exit(f"nginx does not answer like sfmtls: GET {nst} {len(nbody)} B vs {st} {len(get_body)} B, "
                         f"POST {npst} {len(npbody)} B vs {pst} {len(pbody)} B")
            if kind == "ec":
                log(f"  answers (both peers, same bytes): GET {GET_PATH} -> {st}, {len(get_body)} B body, {ctype}; "
                    f"POST {POST_PATH} with a {POST_SIZE} B form body -> {pst}, {len(pbody)} B body")
            pair = [s, ng]
            cases = [(f"handshake {kind.upper()} TLS1.3", dict(client=client, tls="1.3", keepalive=0)),
                     (f"handshake {kind.upper()} TLS1.2", dict(client=client, tls="1.2", keepalive=0))]
            if args.quick:
                cases = cases[:1]
            if kind == "ec":
                cases += [("keep-alive GET", dict(client=client)),
                          ("keep-alive POST 64KiB", dict(client=client, method="POST", path=POST_PATH,
                                                         body=post_file, expect=pst)),
                          (latency_case, dict(client=client, connections=args.latency_connections,
                                              rate=args.latency_rate)),
                          ("resumed handshake EC TLS1.3", dict(client=client, tls="1.3", keepalive=0, resume=1)),
                          ("resumed handshake EC TLS1.2", dict(client=client, tls="1.2", keepalive=0, resume=1))]
            all_rows.update(measure(kind, pair, args.rounds, cases))
            if kind == "ec":
                # sfmtls only: its standard listener (no client certificate), under the same name so
                # that the table puts it in the sfmtls column
                std = Listener(s, "sfmtls", s.std_port)
                all_rows.update(measure(kind, [std], args.rounds,
                                        [("resumed hs EC TLS1.3, standard", dict(client=None, tls="1.3",
                                                                                 keepalive=0, resume=1))]))
            log(f"  peak RSS (VmHWM) after the {kind.upper()} cases: sfmtls {s.hwm() / 1024:.1f} MiB, "
                f"nginx {ng.hwm() / 1024:.1f} MiB (sum over master + {workers} workers)")
            all_rows[f"peak RSS {kind.upper()}"] = {"sfmtls": s.hwm() / 1024, "nginx": ng.hwm() / 1024}
            if kind == "ec":
                for p in (s, ng):
                    per, opened, secs = idle_rss(p, root, client, args.idle)
                    log(f"  idle RSS {p.name}: {per:.1f} KiB per connection with {opened} open "
                        f"(opened in {secs:.1f} s)")
                    all_rows.setdefault("idle", {})[p.name] = (per, opened)
            for p in (ng, s):
                p.stop()
                peers.remove(p)

        # sfmtls alone: 1 vs N uploaded certificates, two servers alternated; start-to-ready
        log(f"\n== sfmtls alone: handshakes with 1 and with {args.certs} uploaded certificates")
        client = certs["ec"]["client"]
        srv = certs["ec"]["server"]
        t0 = time.monotonic()
        pems = bulk_certificates(cadir, tmp, args.certs)
        log(f"  {len(pems)} certificates signed by openssl ca (one key, distinct serials) in "
            f"{time.monotonic() - t0:.1f} s")
        one = Sfmtls(server_bin, new_state("one"), srv[0], srv[1], workers, tmp)
        one.name = "sfmtls 1 cert"
        peers.append(one)
        many = Sfmtls(server_bin, new_state("many"), srv[0], srv[1], workers, tmp)
        many.name = f"sfmtls {args.certs} certs"
        peers.append(many)
        for p in (one, many):
            p.upload(root, [open(client[0]).read()], threads=1)
        t0 = time.monotonic()
        with open(os.path.join(cadir, "intermediate.pem")) as f:
            inter = f.read()  # an upload must carry its chain
        uploaded = many.upload(root, [p + inter for p in pems], threads=4)
        up_s = time.monotonic() - t0
        log(f"  uploaded {uploaded} of {len(pems)} through the admin API in {up_s:.1f} s "
            f"({uploaded / max(up_s, 1e-9):.0f}/s, 4 connections)")
        many.name = f"sfmtls {uploaded + 1} certs"
        flat = measure("flat", [one, many], args.rounds,
                       [("handshake EC TLS1.3 (flat)", dict(client=client, tls="1.3", keepalive=0))])
        for p in (one, many):
            p.stop()
            peers.remove(p)
        starts = []
        st_dir = new_state("starts")
        for _ in range(args.starts):
            p = Sfmtls(server_bin, st_dir, srv[0], srv[1], workers, tmp)
            starts.append(p.ready_s * 1000)
            p.stop()
        log(f"  start to ready line: {', '.join(f'{x:.1f}' for x in starts)} ms")

        # ---------------------------------------------------------------- table
        log(f"\n== results: medians of {args.rounds} round(s), min-max in brackets "
            f"({args.duration:g} s per run, {args.connections} connections)")
        hdr = f"{'case':32}{'sfmtls':>30}{'nginx':>30}{'sfmtls/nginx':>14}"
        log(hdr)
        log("-" * len(hdr))
        summary = []

        def line(label, a, b, fmt, unit, ratio_name=None, ratio=True, valid=True, note=""):
            """One table row: medians [min-max] of a (sfmtls) and b (nginx, or none); the ratio goes
            into the summary under ratio_name (with the note after it), n/a when not valid."""
            ma, mb = med(a), med(b)
            r = ma / mb if b and mb and valid else float("nan")
            sa = f"{fmt.format(ma)} {unit} [{spread(a, fmt)}]"
            sb = f"{fmt.format(mb)} {unit} [{spread(b, fmt)}]" if b else "-"
            sr = ("n/a" if r != r else f"{r:.2f}") if b and ratio else ""
            log(f"{label:32}{sa:>30}{sb:>30}{sr:>14}")
            if ratio_name and b:
                summary.append(f"{ratio_name} {'n/a' if r != r else f'{r:.2f}'}{note}")

        for c, byp in all_rows.items():
            if c.startswith("peak") or c == "idle":
                continue
            ra, rb = byp["sfmtls"], byp.get("nginx", [])
            a = [r["rps"] for r in ra]
            b = [r["rps"] for r in rb]
            short = c.replace("handshake ", "hs ").replace("keep-alive ", "ka ")
            if c.startswith("latency"):
                behind = [p for p, rs in (("sfmtls", ra), ("nginx", rb)) if any(not kept_up(r) for r in rs)]
                note = " (loadgen behind)" if behind else ""
                line(c + " p50", [r["p50_ms"] for r in ra], [r["p50_ms"] for r in rb], "{:.3f}", "ms", "p50",
                     note=note)
                line(c + " p99", [r["p99_ms"] for r in ra], [r["p99_ms"] for r in rb], "{:.3f}", "ms", "p99",
                     note=note)
                line("  p50 from actual send", [r["service_p50_ms"] for r in ra], [r["service_p50_ms"] for r in rb],
                     "{:.3f}", "ms")
                line("  p99 from actual send", [r["service_p99_ms"] for r in ra], [r["service_p99_ms"] for r in rb],
                     "{:.3f}", "ms")
                line("  send lag p99 (loadgen)", [r["lag_p99_ms"] for r in ra], [r["lag_p99_ms"] for r in rb],
                     "{:.3f}", "ms", ratio=False)
                line("  rate sent", [r["rate_achieved"] for r in ra], [r["rate_achieved"] for r in rb], "{:.0f}",
                     "/s", ratio=False)
                line("  loadgen CPU", [r["loadgen_cores"] for r in ra], [r["loadgen_cores"] for r in rb], "{:.2f}",
                     "cores", ratio=False)
                if behind:
                    log(f"  ! loadgen did not keep up with the rate for {', '.join(behind)} (1% of requests or more "
                        f"left 1 ms late, or < 95% of the rate): those latencies include its own delay or a backlog")
                continue
            resumed = c.startswith("resumed")
            valid = True
            if resumed:
                counts = {}
                for p, rs in (("sfmtls", ra), ("nginx", rb)):
                    if rs:
                        counts[p] = (sum(r["resumed"] for r in rs), sum(r["handshakes_run"] for r in rs))
                failed = [p for p, (n, of) in counts.items() if of == 0 or n != of]
                valid = not failed
                line(c, a, b, "{:.0f}", "/s", short, valid=valid)
                line("  server CPU per handshake", [r["server_us"] for r in ra], [r["server_us"] for r in rb],
                     "{:.1f}", "us", short + " cpu", valid=valid)
                sa = "{}/{}".format(*counts["sfmtls"])
                sb = "{}/{}".format(*counts["nginx"]) if "nginx" in counts else "-"
                log(f"{'  resumed/handshakes':32}{sa:>30}{sb:>30}")
                if failed:
                    log(f"  ! NOT RESUMED on {', '.join(failed)}: the line above measured full handshakes "
                        f"(ratio n/a)")
            else:
                line(c, a, b, "{:.0f}", "/s", short)
                line("  server CPU per request", [r["server_us"] for r in ra], [r["server_us"] for r in rb],
                     "{:.1f}", "us", short + " cpu")
                if c == "handshake EC TLS1.3":
                    fa = [r["server_us"] / floor["floor_us"] for r in ra]
                    log(f"{'  CPU / crypto floor':32}{med(fa):>24.2f} x [{spread(fa, '{:.2f}')}]"
                        f"   (floor {floor['floor_us']:.1f} us)")
                    summary.append(f"hs EC TLS1.3 cpu/floor {med(fa):.2f}")
            line("  loadgen CPU", [r["loadgen_cores"] for r in ra], [r["loadgen_cores"] for r in rb], "{:.2f}",
                 "cores", ratio=False)
        for kind in ("EC", "RSA"):
            k = f"peak RSS {kind}"
            if k in all_rows:
                line(f"peak RSS (VmHWM), {kind} run", [all_rows[k]["sfmtls"]], [all_rows[k]["nginx"]], "{:.1f}",
                     "MiB", f"peakRSS{kind}")
        if "idle" in all_rows:
            (pa, na), (pb, nb) = all_rows["idle"]["sfmtls"], all_rows["idle"]["nginx"]
            line(f"RSS per idle conn ({na}/{nb})", [pa], [pb], "{:.1f}", "KiB", "idleRSS")
        c = "handshake EC TLS1.3 (flat)"
        a = [r["rps"] for r in flat[c][one.name]]
        b = [r["rps"] for r in flat[c][many.name]]
        log(f"{'sfmtls hs EC1.3, 1 cert':32}{med(a):>12.0f} /s [{spread(a, '{:.0f}')}]")
        log(f"{'sfmtls hs EC1.3, ' + str(uploaded + 1) + ' certs':32}{med(b):>12.0f} /s [{spread(b, '{:.0f}')}]"
            f"   ratio {med(b) / med(a):.3f}")
        # Server CPU per handshake is steadier than the rate on a shared machine.
        cpu_one = [r["server_us"] for r in flat[c][one.name]]
        cpu_many = [r["server_us"] for r in flat[c][many.name]]
        log(f"{'  server CPU per handshake':32}{med(cpu_one):>10.1f} us vs {med(cpu_many):.1f} us"
            f"   ratio {med(cpu_many) / med(cpu_one):.3f}")
        summary.append(f"flat rate {med(b) / med(a):.3f} cpu {med(cpu_many) / med(cpu_one):.3f}")
        log(f"{'sfmtls start to ready':32}{med(starts):>12.1f} ms [{spread(starts, '{:.1f}')}] "
            f"(median of {len(starts)})")
        log(f"\ntotal time {time.monotonic() - t_start:.0f} s")
        log("sfmtls/nginx (medians; rates >1 and CPU/latency/RSS <1 favour sfmtls): " + ", ".join(summary))
    finally:
        for p in peers:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
