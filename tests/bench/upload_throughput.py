#!/usr/bin/env python3
"""Upload throughput of the admin API: N distinct client certificates uploaded
one after another over one kept-alive HTTPS connection, with the state on disk
(each 201 waits for its SQLite commit) and with --ephemeral (in memory).

    tests/bench/upload_throughput.py SERVER_BIN CA_BIN [N]
"""

import http.client
import json
import math
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

READY = re.compile(r"sfmtls ready mtls=https://127\.0\.0\.1:(\d+) standard=https://127\.0\.0\.1:(\d+)")


def start(server, state, *args):
    proc = subprocess.Popen([server, "--state-dir", state, "--bind", "127.0.0.1", "--mtls-port", "0", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = READY.match(proc.stdout.readline())
    if not m:
        proc.kill()
        sys.exit("no ready line")
    return proc, int(m.group(2))


def upload_all(state, port, pems):
    ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.pem"))
    with open(os.path.join(state, "admin-token")) as f:
        token = f.read().strip()
    conn = http.client.HTTPSConnection("localhost", port, context=ctx)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    times = []
    t0 = time.perf_counter()
    for i, pem in enumerate(pems):
        t = time.perf_counter()
        conn.request("POST", "/__admin/mutual-auth-certificates", json.dumps({"label": f"c{i}", "pem": pem}), headers)
        res = conn.getresponse()
        body = res.read()
        if res.status != 201:
            sys.exit(f"upload {i}: {res.status} {body[:200]!r}")
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    conn.close()
    p99 = sorted(times)[math.ceil(len(times) * 0.99) - 1]  # nearest rank
    return len(pems) / total, statistics.median(times) * 1e3, p99 * 1e3


def main():
    server, ca = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    tmp = tempfile.mkdtemp(prefix="sfmtls-upload-")
    try:
        state = os.path.join(tmp, "state")
        proc, _ = start(server, state)
        proc.terminate()
        proc.wait()

        def issue(i):
            prefix = os.path.join(tmp, f"c{i}")
            subprocess.run([ca, "issue", "client", "--dir", state, "--cn", f"c{i}", "--out", prefix],
                           check=True, stdout=subprocess.DEVNULL)
            with open(prefix + ".chain.pem") as f:
                return f.read()

        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            pems = list(pool.map(issue, range(n)))
        for label, args in (("on disk (WAL, synchronous)", ()), ("--ephemeral (in memory)", ("--ephemeral",))):
            proc, port = start(server, state, "--reset", *args)
            rate, p50, p99 = upload_all(state, port, pems)
            proc.terminate()
            proc.wait()
            print(f"{label:28} {n} uploads: {rate:7.0f} uploads/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
