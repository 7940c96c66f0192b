#!/usr/bin/env python3
"""Prints sfmtls-server's RSS idle and with N open mTLS connections.

usage: rss_connections.py SERVER_BIN CA_BIN [N]

Starts the server on port 0 with a throwaway state dir, opens N connections
to the mTLS listener with a client certificate (full handshake, one request
each, then held open), and reads VmRSS from /proc before and after.
"""
import os
import resource
import shutil
import signal
import ssl
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    server_bin, ca_bin = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    state = tempfile.mkdtemp(prefix="sfmtls-rss-")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    proc = subprocess.Popen(
        [server_bin, "--fixtures", os.path.join(src, "fixtures", "default-org.json"),
         "--state-dir", state, "--bind", "127.0.0.1", "--mtls-port", "0", "--port", "0",
         "--idle-timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        if "mtls=https://127.0.0.1:" not in line:
            sys.exit(f"no ready line from {server_bin}")
        port = int(line.split("mtls=https://127.0.0.1:")[1].split()[0])
        prefix = os.path.join(state, "bench-client")
        subprocess.run([ca_bin, "issue", "client", "--dir", state, "--cn", "bench", "--out", prefix],
                       check=True, stdout=subprocess.DEVNULL)
        ctx = ssl.create_default_context(cafile=os.path.join(state, "ca.pem"))
        ctx.load_cert_chain(prefix + ".chain.pem", prefix + ".key")
        time.sleep(0.5)
        idle = rss_kib(proc.pid)
        conns = []
        t0 = time.time()
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
            s.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = s.recv(4096)
            if b" 200 " not in data:
                sys.exit(f"health over mTLS: {data[:200]!r}")
            conns.append(s)
        elapsed = time.time() - t0
        time.sleep(0.5)
        loaded = rss_kib(proc.pid)
        print(f"idle RSS: {idle / 1024:.1f} MiB")
        print(f"RSS with {n} open mTLS connections: {loaded / 1024:.1f} MiB "
              f"({(loaded - idle) / n:.1f} KiB per connection; opened in {elapsed:.1f} s)")
        for s in conns:
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
