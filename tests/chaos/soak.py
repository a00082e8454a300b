#!/usr/bin/env python3
"""soak.py: octetd under DURATION seconds (600) of mixed API traffic while a job trains.

One long Fashion-MNIST MLP job trains on one thread (--threads 1). Its pace (optimizer steps/s,
from its own progress timestamps) is measured for QUIET seconds (30) with no traffic, then the
traffic runs: readers (the job list, one job, its epochs and steps, health, metrics, the
OpenAPI document), dry runs and estimates, real submissions that are cancelled at once,
malformed requests (bad JSON, wrong fields, a wrong content type, a body over --max-body,
unknown routes and methods), event-stream clients that connect and vanish after a few events,
and slow clients that send their request one byte a second. Every SLEEP seconds (0.02) each of
the traffic threads sends its next request, so the load is steady, not saturating; the job's
pace is measured again over the traffic's last QUIET seconds. Every 10 s octetd's resident
memory and open file descriptors are sampled.

Prints the requests by kind and status, the samples, and one line per check: no 5xx and no
crash; resident memory and descriptors flat (growth between the first minute's samples and the
last, stated); the job's steps/s within 10% of the quiet figure.

Usage: OCTET_BUILDDIR=BUILD OCTET_SRCDIR=SRC tests/chaos/soak.py [--duration 600]
Exit status: 0 when no 5xx and no crash (the figures are reported either way); 1 otherwise."""
import argparse
import collections
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import test_jobs as tj  # noqa: E402

counts = collections.Counter()
lock = threading.Lock()
stop = threading.Event()


def note(kind, status):
    with lock:
        counts[(kind, status)] += 1


def stamp(j):
    """A job's updated_at in seconds (the store writes it with every progress update)."""
    u = j["updated_at"]
    return time.mktime(time.strptime(u[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + u[19:].rstrip("Z"))


def pace(srv, jid, seconds):
    j0 = srv.job(jid)
    time.sleep(seconds)
    j1 = srv.job(jid)
    dt = stamp(j1) - stamp(j0)
    if dt <= 0:
        print("pace: no progress written in %.0f s (%s -> %s)" % (seconds, j0["updated_at"], j1["updated_at"]))
    return (j1["steps_done"] - j0["steps_done"]) / dt if dt > 0 else 0.0


def proc_figures(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def traffic(srv, jid, rng, sleep):
    small = tj.mlp_spec(epochs=1, train=200, evals=100, hidden=(16,), name="soak")
    kinds = ["read", "read", "read", "dry_run", "estimate", "submit_cancel", "malformed", "malformed", "sse"]
    while not stop.is_set():
        kind = rng.choice(kinds)
        try:
            if kind == "read":
                path = rng.choice(["/api/v1/jobs", "/api/v1/jobs/%d" % jid, "/api/v1/jobs/%d/epochs" % jid,
                                   "/api/v1/jobs/%d/steps?limit=100" % jid, "/api/v1/health", "/api/v1/metrics",
                                   "/api/v1/openapi.json", "/api/v1/jobs?status=running&limit=5", "/"])
                note(kind, srv.get(path, check=False).status)
            elif kind == "dry_run":
                note(kind, srv.post("/api/v1/jobs?dry_run=1", small, check=False).status)
            elif kind == "estimate":
                note(kind, srv.post("/api/v1/estimate", small, check=False).status)
            elif kind == "submit_cancel":
                r = srv.post("/api/v1/jobs", small, check=False)
                note(kind, r.status)
                if r.status == 201:
                    note("cancel", srv.post("/api/v1/jobs/%d/cancel" % r.json["id"], check=False).status)
            elif kind == "malformed":
                m = rng.randrange(6)
                if m == 0:
                    r = srv.request("POST", "/api/v1/jobs", body=b"{\"model\": ", check=False)
                elif m == 1:
                    r = srv.post("/api/v1/jobs", dict(small, optimizer={"name": "adamw", "lr": -1}), check=False)
                elif m == 2:
                    r = srv.request("POST", "/api/v1/jobs", body=b"x=1", ctype="text/plain", check=False)
                elif m == 3:
                    r = srv.request("POST", "/api/v1/jobs", body=b"[" * 70000, check=False)
                elif m == 4:
                    r = srv.get("/api/v1/no/such/route", check=False)
                else:
                    r = srv.request("PATCH", "/api/v1/jobs/%d" % jid, body=b"{}", check=False)
                note("malformed", r.status)
            else:
                with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                    s.sendall(b"GET /api/v1/jobs/%d/events HTTP/1.1\r\nHost: x\r\n\r\n" % jid)
                    got = s.recv(4096)
                    note("sse_vanish", int(got.split(b" ")[1]) if got.startswith(b"HTTP/1.1") else 0)
        except Exception as e:  # a refused or reset connection is a failure to serve
            note(kind, "exception " + type(e).__name__)
        time.sleep(sleep)


def slow_client(srv):
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=120) as s:
                for b in b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n":
                    if stop.is_set():
                        return
                    s.sendall(bytes([b]))
                    time.sleep(1.0)
                reply = s.recv(64)
                note("slow", int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1") else 0)
        except Exception as e:
            note("slow", "exception " + type(e).__name__)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", 600)))
    ap.add_argument("--quiet", type=float, default=float(os.environ.get("QUIET", 30)))
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--slow", type=int, default=3)
    ap.add_argument("--sleep", type=float, default=0.02)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="octet-soak-")
    srv = tj.Octetd(root).start()
    tj.OPENAPI = None  # many answers here are errors on purpose; statuses are what is counted
    jid = srv.submit(tj.long_spec(epochs=1000, name="trains through the soak"))
    while srv.job(jid)["steps_done"] == 0:
        time.sleep(0.2)
    quiet = pace(srv, jid, a.quiet)
    samples = [(0.0,) + proc_figures(srv.proc.pid)]
    workers = [threading.Thread(target=traffic, args=(srv, jid, random.Random(i), a.sleep)) for i in range(a.threads)]
    workers += [threading.Thread(target=slow_client, args=(srv,)) for _ in range(a.slow)]
    t0 = time.time()
    for w in workers:
        w.start()
    busy = None
    while time.time() - t0 < a.duration:
        left = a.duration - (time.time() - t0)
        if busy is None and left <= a.quiet + 1:
            busy = pace(srv, jid, a.quiet)
            continue
        time.sleep(min(10.0, max(0.1, left if busy is not None else left - a.quiet - 1)))
        if not srv.alive():
            break
        samples.append((time.time() - t0,) + proc_figures(srv.proc.pid))
    stop.set()
    for w in workers:
        w.join(150)
    alive = srv.alive()
    print("| kind | status | requests |")
    print("|---|---|---:|")
    for (kind, status), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print("| %s | %s | %d |" % (kind, status, n))
    total = sum(counts.values())
    bad = sum(n for (k, s), n in counts.items() if not isinstance(s, int) or s >= 500 or s == 0)
    print("\n%d requests in %.0f s (%.0f/s); octetd alive at the end: %s" % (total, a.duration, total / a.duration, alive))
    print("samples (s, RSS MiB, open fds): " + "; ".join("%.0f %.1f %d" % (t, r / 2**20, f) for t, r, f in samples))
    early = [s for s in samples if 0 < s[0] <= 60] or samples[:2]
    late = samples[-3:]
    rss_growth = (max(s[1] for s in late) - max(s[1] for s in early)) / 2**20
    fd_growth = max(s[2] for s in late) - max(s[2] for s in early)
    print("resident memory from the first minute to the end: %+.1f MiB; open descriptors: %+d" % (rss_growth, fd_growth))
    busy = busy or 0.0
    change = 100.0 * (busy - quiet) / quiet if quiet else 0.0
    print("job pace: %.1f steps/s quiet, %.1f under the traffic (%+.0f%%), target within 10%%: %s"
          % (quiet, busy, change, "met" if change >= -10 else "missed"))
    print("5xx, refused or reset answers: %d; crash: %s" % (bad, "no" if alive else "YES"))
    if alive:
        srv.stop()
    return 0 if bad == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
