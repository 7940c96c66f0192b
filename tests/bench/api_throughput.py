#!/usr/bin/env python3
"""Requests per second of the Salesforce API surfaces over mTLS, measured with
tests/bench/loadgen (a wolfSSL client on keep-alive connections).

    tests/bench/api_throughput.py SERVER_BIN CA_BIN [--runs 3] [--duration 5]
        [--connections 16] [--threads T] [--workers W] [--loadgen PATH]

Starts sfmtls-server on port 0 with a throwaway state dir and --ephemeral,
then, on the mTLS listener with the dev CA's demo client certificate
(<state>/clients/demo-client.chain.pem + .key, uploaded at first start),
measures four cases:

  token    POST /services/oauth2/token, password grant as mtls@acme.test (200)
  query    GET  /services/data/v64.0/query?q=SELECT ... FROM Account ...,
           with a Bearer token fetched once beforehand (200)
  versions GET  /services/data/ (no auth; reference)
  health   GET  /__admin/health (reference: the cost of TLS + HTTP alone)

Each case runs --runs times (the cases interleaved, so a drift of the machine
affects them all alike); the table gives every run's rps and the medians of
rps, p50 and p99, then token/health and query/health. Each run also shows the
CPU (in cores) the server, loadgen and everything else used meanwhile: on a
shared machine "other" above ~0.1 means the figures are skewed. Every login is one
session and one login-history entry, so the token case grows both; it runs
last in each round for that reason.

CA_BIN is taken for the same command line as the other benchmarks; the demo
certificate comes from the server itself. The loadgen binary defaults to
<build>/tests/bench/loadgen next to SERVER_BIN's <build>/server/.
"""

import argparse
import json
import os
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(SOURCE_DIR, "fixtures", "default-org.json")
# The e2e harness's ready-line reader and pattern.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from sfmtls_e2e import READY_RE as READY, first_line, stop_process  # noqa: E402
WORKERS = re.compile(r"ready: (\d+) worker")

TOKEN_BODY = ("grant_type=password&client_id=ck-partner&client_secret=cs-partner"
              "&username=mtls%40acme.test&password=Mtls-123")
QUERY_PATH = "/services/data/v64.0/query?q=SELECT+Id,Name+FROM+Account+WHERE+Industry+!=+'x'+ORDER+BY+Name"


class Server:
    """sfmtls-server on 127.0.0.1, both listeners on port 0, stopped with SIGTERM."""

    def __init__(self, binary, tmp, extra):
        self.state = os.path.join(tmp, "state")
        self.stderr_path = os.path.join(tmp, "server.stderr")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SFMTLS_")}
        self.cmd = [binary, "--fixtures", FIXTURES, "--state-dir", self.state, "--ephemeral",
                    "--bind", "127.0.0.1", "--mtls-port", "0", "--port", "0", *extra]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, env=env)
        line = self._ready_line(30)
        m = READY.match(line)
        if not m:
            self.stop()
            sys.exit(f"no ready line from {' '.join(self.cmd)}: {line!r}\n{self.stderr_text()[-2000:]}")
        self.mtls_port, self.std_port = int(m.group(1)), int(m.group(2))

    def workers(self):
        """The worker count from the log's "ready: N worker(s)" line (it follows the ready line)."""
        for _ in range(50):
            w = WORKERS.search(self.stderr_text())
            if w:
                return int(w.group(1))
            time.sleep(0.1)
        return None

    def _ready_line(self, timeout):
        return first_line(self.proc, timeout)

    def stderr_text(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit status (None if it had to be killed)."""
        return stop_process(self.proc)


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return usable, model


def https(ctx, port, method, path, body=None, headers=None):
    """One request with urllib; (status, body text)."""
    req = urllib.request.Request(f"https://localhost:{port}{path}", data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as res:
            return res.status, res.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


TICK = os.sysconf("SC_CLK_TCK")


def cpu_sample(pid):
    """(machine busy core-seconds, the server's core-seconds, waited-for children's core-seconds)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v[:8]) - v[3] - v[4]) / TICK  # user..steal minus idle and iowait
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, server, ru.ru_utime + ru.ru_stime


def run_loadgen(cmd, server_pid):
    """Runs loadgen: its JSON result, its stderr, and the CPU (in cores) used during the run by the
    server, by loadgen, and by everything else on the machine (other work skews the figures)."""
    before = cpu_sample(server_pid)
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    after = cpu_sample(server_pid)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        sys.exit(f"loadgen printed no result (exit {p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    busy, server, loadgen = ((a - b) / wall for a, b in zip(after, before))
    return json.loads(lines[-1]), p.stderr.strip(), (server, loadgen, max(0.0, busy - server - loadgen))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("server_bin")
    ap.add_argument("ca_bin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="loadgen threads (default: min(cores, connections))")
    ap.add_argument("--workers", type=int, default=0, help="server --workers (default: the server's own)")
    ap.add_argument("--loadgen", default=None)
    args = ap.parse_args()

    server_bin = os.path.abspath(args.server_bin)
    loadgen = args.loadgen or os.path.join(os.path.dirname(os.path.dirname(server_bin)), "tests", "bench",
                                           "loadgen")
    for path in (server_bin, args.ca_bin, loadgen):
        if not os.access(path, os.X_OK):
            sys.exit(f"not an executable: {path}")
    cores, model = machine()
    threads = args.threads or max(1, min(cores, args.connections))

    tmp = tempfile.mkdtemp(prefix="sfmtls-api-bench-")
    server = None
    try:
        server = Server(server_bin, tmp, ["--workers", str(args.workers)] if args.workers else [])
        state = server.state
        ca = os.path.join(state, "ca.pem")
        chain = os.path.join(state, "clients", "demo-client.chain.pem")
        key = os.path.join(state, "clients", "demo-client.key")
        body_file = os.path.join(tmp, "token-body")
        with open(body_file, "w") as f:
            f.write(TOKEN_BODY)

        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(chain, key)
        status, text = https(ctx, server.mtls_port, "POST", "/services/oauth2/token", TOKEN_BODY.encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            sys.exit(f"token request answered {status}: {text[:300]}")
        token = json.loads(text)["access_token"]

        cases = [
            ("health", "GET", "/__admin/health", [], []),
            ("versions", "GET", "/services/data/", [], []),
            ("query", "GET", QUERY_PATH, ["--header", f"Authorization: Bearer {token}"], []),
            ("token", "POST", "/services/oauth2/token", [],
             ["--body-file", body_file, "--content-type", "application/x-www-form-urlencoded"]),
        ]
        # each case answers 200 once before it is measured
        for name, method, path, hdr, _ in cases:
            headers = dict([hdr[1].split(": ", 1)]) if hdr else {}
            data = TOKEN_BODY.encode() if method == "POST" else None
            if data:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            status, text = https(ctx, server.mtls_port, method, path, data, headers)
            if status != 200:
                sys.exit(f"{name}: {method} {path} answered {status}: {text[:300]}")

        print(f"machine: {cores} cores usable (nproc), {model}")
        print(f"server: {server_bin} --workers {server.workers() or '?'}"
              f"{' (its default)' if not args.workers else ''}, --ephemeral, mTLS listener, "
              f"client certificate demo-client")
        print(f"loadgen: {args.connections} keep-alive connections, {threads} threads, "
              f"{args.duration:g} s per run, {args.runs} runs per case")
        results = {name: [] for name, *_ in cases}
        for run in range(args.runs):
            for name, method, path, hdr, body in cases:
                cmd = [loadgen, "--host", "127.0.0.1", "--port", str(server.mtls_port), "--ca", ca,
                       "--cert", chain, "--key", key, "--connections", str(args.connections),
                       "--threads", str(threads), "--duration", f"{args.duration:g}", "--method", method,
                       "--path", path, *hdr, *body, "--expect-status", "200"]
                if run == 0:
                    print(f"  {name}: {' '.join(a if ' ' not in a else repr(a) for a in cmd)}")
                res, err, (cpu_server, cpu_loadgen, cpu_other) = run_loadgen(cmd, server.proc.pid)
                results[name].append(res)
                trouble = res["errors"] or res["status_mismatch"]
                print(f"run {run + 1} {name:8} {res['rps']:9.0f} rps  p50 {res['p50_ms']:7.3f} ms  "
                      f"p99 {res['p99_ms']:7.3f} ms  max {res['max_ms']:8.3f} ms  errors {res['errors']}  "
                      f"mismatch {res['status_mismatch']}  cpu: server {cpu_server:.2f} loadgen {cpu_loadgen:.2f} "
                      f"other {cpu_other:.2f}{'  <-- ' + err if trouble and err else ''}")
                if not server.alive():
                    sys.exit(f"the server exited during {name}:\n{server.stderr_text()[-3000:]}")

        print()
        head = "".join(f"{'run ' + str(i + 1):>10}" for i in range(args.runs))
        print(f"{'case':10}{head}{'median rps':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        medians = {}
        for name, *_ in cases:
            rs = results[name]
            medians[name] = statistics.median(r["rps"] for r in rs)
            runs = "".join(f"{r['rps']:10.0f}" for r in rs)
            errors = sum(r["errors"] + r["status_mismatch"] for r in rs)
            print(f"{name:10}{runs}{medians[name]:12.0f}{statistics.median(r['p50_ms'] for r in rs):9.3f}"
                  f"{statistics.median(r['p99_ms'] for r in rs):9.3f}{errors:8d}")
        if medians["health"]:
            print(f"\ntoken/health {medians['token'] / medians['health']:.3f}   "
                  f"query/health {medians['query'] / medians['health']:.3f}")

        log = server.stderr_text()
        levels = {}
        for line in log.splitlines():
            parts = line.split(" ", 2)
            if len(parts) > 1:
                levels[parts[1]] = levels.get(parts[1], 0) + 1
        rc = server.stop()
        print(f"server log lines by level: {levels}; exit status after SIGTERM: {rc}")
        for line in log.splitlines():
            if " warn" in line or " error" in line:
                print(f"  first warning/error: {line[:300]}")
                break
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
