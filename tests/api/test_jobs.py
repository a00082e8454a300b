#!/usr/bin/env python3
"""test_jobs.py: the job service of a real octetd, driven over HTTP with Python's standard
library only.

Each test starts what it needs: the built ./octetd on 127.0.0.1 with --port 0, a fresh data
directory and SQLite file, a bearer token. Jobs train for real on Debian's Fashion-MNIST and
fortunes (subsets), on the CPU, one thread (--threads 1, so runs are repeatable on a loaded
machine).
What is checked:

  * an MLP job on fashion-mnist and a tiny DistilBERT job on fortunes-lang run to succeeded, and
    their epochs, steps and memory agree with what octet-train prints for the same spec;
  * the live event stream: every epoch once and in order, and a reconnect with Last-Event-ID
    misses nothing and repeats nothing;
  * adamw, adamw8bit and adafactor on one spec: /memory's optimizer state is the engine's exact
    layout, computed here from the model's shapes (8-bit about a quarter of AdamW's);
  * cancel (queued and running), delete, idempotency keys, the bearer token on every write,
    every error status, filters and paging, /metrics, /datasets uploads;
  * a catalogue of hostile submissions, each a 4xx naming the right field, the server alive and
    the jobs table unchanged afterwards;
  * restart persistence, SIGTERM during training (checkpoint, requeue, resume) and SIGKILL
    during training (resume from the newest checkpoint): every epoch recorded once, and the
    final weights byte for byte those of an uninterrupted run;
  * the thread policy: W workers x max(1, CPUs / W) threads per job unless --threads says
    otherwise, logged at start-up and applied by the workers; a bad --threads is exit 2.

Every JSON reply is validated against the server's own /openapi.json (its status must be
documented for the operation, its body must match the schema), and every documented operation
must have been exercised by the end. Prints one line per test and a Check-style summary line;
exit 0 when all pass, 1 otherwise, 77 when the data these tests train on is not installed.
"""

import hashlib
import http.client
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SRC = os.environ.get("OCTET_SRCDIR") or "."
BUILD = os.environ.get("OCTET_BUILDDIR") or "."
TOKEN = "test-token-7f3a"
FASHION = "/usr/share/datasets/fashion-mnist"
FORTUNES = "/usr/share/games/fortunes"

# ------------------------------------------------------------------ the OpenAPI check


class Openapi:
    """Validates replies against the served OpenAPI document and records which operations ran."""

    def __init__(self, doc):
        self.doc = doc
        self.schemas = doc["components"]["schemas"]
        self.templates = []
        for tpl in doc["paths"]:
            rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(tpl)) + "$"
            self.templates.append((tpl, re.compile(rx)))
        self.seen = set()

    def operation(self, method, path):
        path = path.split("?")[0]
        assert path.startswith("/api/v1"), path
        sub = path[len("/api/v1"):]
        for tpl, rx in self.templates:
            if rx.match(sub):
                item = self.doc["paths"][tpl]
                m = method.lower() if method != "HEAD" else "get"
                if m in item:
                    return tpl, m, item[m]
                return tpl, m, None
        return None, None, None

    def check(self, method, path, status, ctype, body):
        tpl, m, op = self.operation(method, path)
        if op is None:
            assert status in (404, 405), "%s %s: %d for an undocumented operation" % (method, path, status)
            return
        self.seen.add((tpl, m))
        resp = op["responses"].get(str(status))
        assert resp is not None, "%s %s answered %d, which its operation does not document" % (method, path, status)
        content = resp.get("content")
        if not content or method == "HEAD" or status == 204:
            return
        if "application/json" in content:
            assert ctype.startswith("application/json"), "%s %s: Content-Type %s" % (method, path, ctype)
            self.validate(json.loads(body), content["application/json"]["schema"], "%s %s %d" % (method, path, status))

    def validate(self, v, schema, where):
        if "$ref" in schema:
            return self.validate(v, self.schemas[schema["$ref"].split("/")[-1]], where)
        if "oneOf" in schema:
            errors = []
            for alt in schema["oneOf"]:
                try:
                    self.validate(v, alt, where)
                    return
                except AssertionError as e:
                    errors.append(str(e))
            raise AssertionError("%s: matches no alternative: %s" % (where, "; ".join(errors)))
        t = schema.get("type")
        if t is not None:
            types = t if isinstance(t, list) else [t]
            assert any(self.is_type(v, x) for x in types), "%s: %r is not %s" % (where, v, t)
        if "enum" in schema:
            assert v in schema["enum"], "%s: %r not in %s" % (where, v, schema["enum"])
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in schema:
                assert v >= schema["minimum"], "%s: %r < %r" % (where, v, schema["minimum"])
            if "maximum" in schema:
                assert v <= schema["maximum"], "%s: %r > %r" % (where, v, schema["maximum"])
        if isinstance(v, dict):
            props = schema.get("properties", {})
            for k in schema.get("required", []):
                assert k in v, "%s: missing %s in %s" % (where, k, sorted(v))
            for k, x in v.items():
                if k in props:
                    self.validate(x, props[k], where + "." + k)
                else:
                    assert schema.get("additionalProperties", True) is not False, "%s: unexpected %s" % (where, k)
        if isinstance(v, list) and "items" in schema:
            for i, x in enumerate(v):
                self.validate(x, schema["items"], "%s[%d]" % (where, i))

    @staticmethod
    def is_type(v, t):
        return {"object": isinstance(v, dict), "array": isinstance(v, list), "string": isinstance(v, str),
                "boolean": isinstance(v, bool), "null": v is None,
                "integer": isinstance(v, int) and not isinstance(v, bool),
                "number": isinstance(v, (int, float)) and not isinstance(v, bool)}[t]


OPENAPI = None

# ------------------------------------------------------------------ the server


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def json(self):
        return json.loads(self.body)

    def error(self):
        e = self.json["error"]
        return e["code"], e["field"], e["message"]


class Octetd:
    """One octetd process with its own data directory and database under `root`."""

    def __init__(self, root, *extra, token=TOKEN, threads="1"):
        self.root = root
        self.threads = threads  # --threads; None: octetd's default
        self.data = os.path.join(root, "data")
        self.db = os.path.join(root, "octet.db")
        self.extra = list(extra)
        self.token = token
        self.proc = None
        self.port = None

    def start(self):
        exe = os.path.join(BUILD, "octetd")
        cmd = [exe, "--listen", "127.0.0.1", "--port", "0", "--db", self.db, "--data-dir", self.data,
               "--web-dir", os.path.join(SRC, "web"), "--schema-dir", os.path.join(SRC, "schema"),
               "--token", self.token] + (["--threads", self.threads] if self.threads else []) + self.extra
        log = open(os.path.join(self.root, "octetd.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        log.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.search(r"listening on http://[^/]+:(\d+)/", line)
        assert m, "octetd did not start: %r (log in %s)" % (line, self.root)
        self.port = int(m.group(1))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig and waits; returns the exit status (None when it had to be killed)."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.proc.stdout.close()

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        with open(os.path.join(self.root, "octetd.log"), errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, auth=True, ctype="application/json", check=True):
        hdrs = dict(headers or {})
        if auth and self.token:
            hdrs.setdefault("Authorization", "Bearer " + self.token)
        if body is not None:
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode()
            if ctype is not None:
                hdrs.setdefault("Content-Type", ctype)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            reply = Reply(r.status, r.getheaders(), r.read())
        finally:
            conn.close()
        if check and OPENAPI is not None and path.startswith("/api/v1"):
            OPENAPI.check(method, path, reply.status, reply.header("Content-Type") or "", reply.body)
        return reply

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def job(self, jid):
        r = self.get("/api/v1/jobs/%d" % jid)
        assert r.status == 200, r.body
        return r.json

    def submit(self, spec, headers=None, expect=201):
        r = self.post("/api/v1/jobs", spec, headers=headers)
        assert r.status == expect, "submit: %d %s" % (r.status, r.body[:400])
        return r.json["id"]

    def wait(self, jid, statuses=("succeeded", "failed", "cancelled"), timeout=300):
        end = time.time() + timeout
        while time.time() < end:
            j = self.job(jid)
            if j["status"] in statuses:
                return j
            time.sleep(0.1)
        raise AssertionError("job %d still %s after %d s" % (jid, self.job(jid)["status"], timeout))

    def events(self, jid, last_id=None, stop_after=None, timeout=300):
        """Reads job jid's event stream until it ends (or after stop_after events)."""
        hdrs = {} if last_id is None else {"Last-Event-ID": str(last_id)}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request("GET", "/api/v1/jobs/%d/events" % jid, headers=hdrs)
        r = conn.getresponse()
        assert r.status == 200, r.read()
        assert r.getheader("Content-Type").startswith("text/event-stream")
        OPENAPI.check("GET", "/api/v1/jobs/%d/events" % jid, 200, r.getheader("Content-Type"), b"")
        out, cur = [], {}
        try:
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line == "":
                    if "data" in cur:
                        out.append({"id": int(cur["id"]), "event": cur["event"], "data": json.loads(cur["data"])})
                        if stop_after and len(out) >= stop_after:
                            break
                    cur = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    cur[k] = v
        finally:
            conn.close()
        return out

    def count_jobs(self):
        db = sqlite3.connect(self.db)
        try:
            return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            db.close()

    def checkpoint_dir(self, jid):
        return os.path.join(self.data, "checkpoints", str(jid))

    def final_weights(self, jid):
        d = self.checkpoint_dir(jid)
        names = sorted(os.listdir(d), key=lambda n: int(n.split("-")[1]))
        with open(os.path.join(d, names[-1], "model.safetensors"), "rb") as f:
            return names[-1], hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------------ specs


def mlp_spec(opt="adamw", epochs=2, train=1000, evals=200, hidden=(64, 32), log_every=5, name="mlp", **training):
    t = {"epochs": epochs, "batch_size": 32, "log_every": log_every, "seed": 7, "device": "cpu"}
    t.update(training)
    return {"name": name, "model": {"arch": "mlp", "hidden": list(hidden), "num_labels": 10},
            "dataset": {"name": "fashion-mnist", "train_limit": train, "eval_limit": evals},
            "optimizer": {"name": opt, "lr": 1e-3}, "training": t}


def long_spec(epochs=20, name="long"):
    """An MLP job that takes seconds an epoch: long enough to be caught while it runs."""
    return mlp_spec("adamw", epochs=epochs, train=20000, evals=500, hidden=(512, 256), log_every=50, name=name)


def bert_spec(dataset=None, name="bert"):
    ds = dataset or {"name": "fortunes-lang", "max_length": 32, "train_limit": 64, "eval_limit": 32}
    return {"name": name,
            "model": {"arch": "distilbert", "preset": "distilbert-tiny", "config": {"n_layers": 1}},
            "dataset": ds,
            "optimizer": {"name": "adamw8bit", "lr": 1e-3, "min_8bit_size": 1024},
            "training": {"epochs": 2, "batch_size": 16, "log_every": 1, "seed": 3, "device": "cpu"}}


# ------------------------------------------------------------------ helpers


def octet_train(spec, root):
    """Runs octet-train on spec (the job's normalised spec); its epoch, step and memory lines."""
    path = os.path.join(root, "spec-%d.json" % time.monotonic_ns())
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.run([os.path.join(BUILD, "octet-train"), path, "--device", "cpu", "--threads", "1"],
                       capture_output=True, timeout=600)
    assert p.returncode == 0, "octet-train failed: %s %s" % (p.stdout[-400:], p.stderr[-400:])
    out = {"epoch": [], "step": [], "memory": []}
    for line in p.stdout.decode().splitlines():
        o = json.loads(line)
        out[o.pop("event")].append(o)
    return out


def close(a, b, what, rel=1e-6):
    if a is None or b is None:
        assert a is None and b is None, "%s: %r != %r" % (what, a, b)
        return
    assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), "%s: %r != %r" % (what, a, b)


def assert_agrees_with_octet_train(srv, jid, root):
    job = srv.job(jid)
    ref = octet_train(job["spec"], root)
    epochs = srv.get("/api/v1/jobs/%d/epochs" % jid).json["epochs"]
    assert len(epochs) == len(ref["epoch"]) == job["spec"]["training"]["epochs"], (len(epochs), len(ref["epoch"]))
    for got, want in zip(epochs, ref["epoch"]):
        assert got["epoch"] == want["epoch"] and got["step"] == want["step"], (got, want)
        assert got["eval_samples"] == want["eval_samples"]
        for k in ("train_loss", "eval_loss", "eval_accuracy", "eval_f1", "learning_rate"):
            close(got[k], want[k], "epoch %d %s" % (got["epoch"], k))
    steps = srv.get("/api/v1/jobs/%d/steps?limit=10000" % jid).json["steps"]
    assert [s["step"] for s in steps] == [s["step"] for s in ref["step"]], "logged steps differ"
    for got, want in zip(steps, ref["step"]):
        for k in ("epoch", "loss", "learning_rate", "grad_norm"):
            close(got[k], want[k], "step %d %s" % (got["step"], k))
    mem = srv.get("/api/v1/jobs/%d/memory" % jid).json["memory"]
    want = ref["memory"][0]
    assert mem["final"] is True
    for k in ("parameters", "params_bytes", "grads_bytes", "optimizer_state_bytes", "adam8bit_estimate_bytes",
              "adamw_bytes", "activations_peak_bytes", "peak_bytes"):
        assert mem[k] == want[k], "memory %s: %r != %r" % (k, mem[k], want[k])
    assert mem["optimizer_state"] == want["optimizer_state"], (mem["optimizer_state"], want["optimizer_state"])


def first_event(srv, jid, kind, timeout=120):
    """Follows the stream until the first event of `kind`; returns the events read."""
    end = time.time() + timeout
    seen = []
    while time.time() < end:
        evs = srv.events(jid, last_id=seen[-1]["id"] if seen else None, stop_after=1, timeout=timeout)
        if not evs:
            break
        seen += evs
        if evs[-1]["event"] == kind:
            return seen
    raise AssertionError("no %s event of job %d (saw %s)" % (kind, jid, [e["event"] for e in seen]))


def assert_epochs_once(srv, jid, n):
    epochs = srv.get("/api/v1/jobs/%d/epochs" % jid).json["epochs"]
    assert [e["epoch"] for e in epochs] == list(range(1, n + 1)), [e["epoch"] for e in epochs]
    evs = srv.events(jid)
    assert [e["data"]["epoch"] for e in evs if e["event"] == "epoch"] == list(range(1, n + 1))
    assert [e["id"] for e in evs] == list(range(1, len(evs) + 1)), "event ids are not 1, 2, 3, ..."


# ------------------------------------------------------------------ the tests

TESTS = []


def test(f):
    TESTS.append(f)
    return f


class Ctx:
    root = None
    srv = None


@test
def openapi_document(ctx):
    global OPENAPI
    r = ctx.srv.get("/api/v1/openapi.json", check=False)
    assert r.status == 200
    OPENAPI = Openapi(r.json)
    assert r.json["openapi"] == "3.1.0"
    OPENAPI.check("GET", "/api/v1/openapi.json", 200, r.header("Content-Type"), r.body)


@test
def health_and_catalog(ctx):
    srv = ctx.srv
    h = srv.get("/api/v1/health").json
    assert h["status"] == "ok" and h["db"]["schema_version"] >= 2 and h["workers"] == {"total": 1, "busy": 0}
    names = [o["name"] for o in srv.get("/api/v1/optimizers").json["optimizers"]]
    assert names == ["adamw", "adam8bit", "adamw8bit", "adafactor", "sgd"], names


@test
def mlp_job_agrees_with_octet_train(ctx):
    srv = ctx.srv
    jid = srv.submit(mlp_spec("adamw8bit", name="fashion mlp"))
    first = srv.events(jid, stop_after=3)
    assert [e["id"] for e in first] == [1, 2, 3]
    rest = srv.events(jid, last_id=first[-1]["id"])  # a reconnect: it resumes after event 3
    whole = srv.events(jid)  # after the end: everything again, then the stream ends
    assert first + rest == whole, "the resumed stream missed or repeated events"
    assert whole[0]["event"] == "status" and whole[0]["data"]["status"] == "queued"
    assert whole[-1]["event"] == "status" and whole[-1]["data"]["status"] == "succeeded"
    assert [e["data"]["epoch"] for e in whole if e["event"] == "epoch"] == [1, 2]
    steps = [e["data"] for e in whole if e["event"] == "step"]
    assert steps and all(s["total_steps"] == steps[0]["total_steps"] > 0 and "eta_seconds" in s for s in steps)
    assert srv.events(jid, last_id=whole[-1]["id"]) == []  # resumed after the final status: ends at once
    job = srv.job(jid)
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["attempt"] == 1
    assert job["steps_done"] == job["total_steps"] > 0
    assert job["latest_epoch"]["epoch"] == 2 and job["memory"]["final"] is True
    assert job["info"]["parameters"] == job["memory"]["parameters"]
    assert job["spec"]["training"]["batch_size"] == 32 and job["spec"]["optimizer"]["betas"] == [0.9, 0.999]
    assert_agrees_with_octet_train(srv, jid, ctx.root)
    ctx.mlp_job = jid


@test
def distilbert_job_agrees_with_octet_train(ctx):
    srv = ctx.srv
    jid = srv.submit(bert_spec())
    job = srv.wait(jid)
    assert job["status"] == "succeeded", job["error"]
    assert job["info"]["tokenizer"] == "bytes" and job["arch"] == "distilbert"
    assert_agrees_with_octet_train(srv, jid, ctx.root)


def mlp_state_layout(opt, hidden, inputs=784, labels=10):
    """The optimizer state of the MLP, from the engine's documented layout."""
    dims = [inputs] + list(hidden) + [labels]
    tensors = []
    for a, b in zip(dims, dims[1:]):
        tensors.append((b, a))  # weight (out, in)
        tensors.append((b,))    # bias
    lay = {"codes": 0, "absmax": 0, "maps": 0, "fp32": 0}
    for shape in tensors:
        n = 1
        for d in shape:
            n *= d
        if opt == "adamw":
            lay["fp32"] += 8 * n
        elif opt == "adamw8bit":
            if n >= 4096:
                lay["codes"] += 2 * n
                lay["absmax"] += 2 * 4 * ((n + 255) // 256)
                lay["maps"] = 2 * 256 * 4
            else:
                lay["fp32"] += 8 * n
        elif opt == "adafactor":  # factored second moment: a row and a column vector
            lay["fp32"] += 4 * (shape[0] + shape[1]) if len(shape) == 2 else 4 * n
    lay["total"] = sum(lay.values())
    return lay, sum(1 for _ in tensors)


@test
def optimizer_state_bytes(ctx):
    srv = ctx.srv
    hidden = (128, 64)
    ids = {o: srv.submit(mlp_spec(o, epochs=1, train=300, evals=100, hidden=hidden, name=o))
           for o in ("adamw", "adamw8bit", "adafactor")}
    totals = {}
    for opt, jid in ids.items():
        assert srv.wait(jid)["status"] == "succeeded"
        mem = srv.get("/api/v1/jobs/%d/memory" % jid).json["memory"]
        want, _ = mlp_state_layout(opt, hidden)
        assert mem["optimizer_state"] == want, "%s: %s != %s" % (opt, mem["optimizer_state"], want)
        assert mem["optimizer_state_bytes"] == want["total"], opt  # the allocator's ledger agrees
        assert mem["adamw_bytes"] == 8 * mem["parameters"] and mem["adam8bit_estimate_bytes"] == 2 * mem["parameters"]
        totals[opt] = want["total"]
        item = [j for j in srv.get("/api/v1/jobs?optimizer=" + opt).json["jobs"] if j["id"] == jid][0]
        assert item["optimizer_state_bytes"] == want["total"]
    ratio = totals["adamw8bit"] / totals["adamw"]
    assert 0.24 < ratio < 0.3, "8-bit state is %.3f of AdamW's" % ratio
    assert totals["adafactor"] < totals["adamw8bit"]


@test
def estimate_is_what_the_run_books(ctx):
    srv = ctx.srv
    for opt in ("adamw", "adamw8bit", "adafactor"):
        spec = mlp_spec(opt, epochs=1, train=300, evals=100, hidden=(128, 64), name="estimated " + opt)
        r = srv.post("/api/v1/estimate", spec)
        assert r.status == 200, r.body
        est = r.json["estimate"]
        assert est["fits"] is True and est["device"] == "cpu" and est["device_total_bytes"] > 0
        assert est["optimizer_state"] == mlp_state_layout(opt, (128, 64))[0], (opt, est["optimizer_state"])
        dry = srv.post("/api/v1/jobs?dry_run=1", spec).json["estimate"]
        # the same estimate; what the device has free is read anew (MemAvailable moves)
        assert dry.pop("device_free_bytes") > 0
        assert dry == {k: v for k, v in est.items() if k != "device_free_bytes"}, (dry, est)
        jid = srv.submit(spec)
        assert srv.wait(jid)["status"] == "succeeded"
        mem = srv.get("/api/v1/jobs/%d/memory" % jid).json["memory"]
        for k in ("parameters", "params_bytes", "grads_bytes", "optimizer_state_bytes", "peak_bytes"):
            assert est[k] == mem[k], "%s %s: estimated %r, booked %r" % (opt, k, est[k], mem[k])
        assert est["activations_bytes"] == mem["activations_peak_bytes"], (opt, est, mem)
        assert est["optimizer_state"] == mem["optimizer_state"]
    models = {m["name"]: m for m in srv.get("/api/v1/models?num_labels=2").json["models"]}
    assert models["distilbert-base-uncased"]["parameters"] == 66955010  # the published model
    assert models["distilbert-base-uncased"]["config"]["vocab_size"] == 30522
    r = srv.post("/api/v1/estimate", dict(mlp_spec(), training={"epochs": 0}))
    assert r.status == 422 and r.error()[1] == "training.epochs"


@test
def admission_refuses_what_does_not_fit(ctx):
    root = tempfile.mkdtemp(dir=ctx.root)
    srv = Octetd(root, "--memory-limit", str(64 << 20)).start()
    try:
        big = bert_spec(name="too big")
        big["model"] = {"arch": "distilbert", "preset": "distilbert-base-uncased"}
        big["training"]["batch_size"] = 64
        r = srv.post("/api/v1/estimate", big)
        assert r.status == 200 and r.json["estimate"]["fits"] is False, r.body
        assert r.json["estimate"]["device_total_bytes"] == 64 << 20
        r = srv.post("/api/v1/jobs", big)
        code, field, message = r.error()
        assert r.status == 422 and code == "does_not_fit" and field, r.body
        assert str(64 << 20) in message and "bytes" in message, message  # the numbers
        r = srv.post("/api/v1/sweeps", {"base": mlp_spec(epochs=1, train=100, evals=50),
                                        "grid": {"model": [{"hidden": [16]}, {"hidden": [20000, 20000]}]}})
        assert r.status == 422 and r.error()[0] == "does_not_fit" and r.error()[1].startswith("grid.model"), r.body
        assert srv.count_jobs() == 0  # nothing queued
        jid = srv.submit(mlp_spec(epochs=1, train=200, evals=50, name="fits"))
        assert srv.wait(jid)["status"] == "succeeded"
    finally:
        assert srv.stop() == 0


@test
def cancel_and_delete(ctx):
    srv = ctx.srv
    running = srv.submit(long_spec())
    queued = srv.submit(mlp_spec(name="waits"))
    first_event(srv, running, "epoch")  # it runs, and has finished an epoch
    r = srv.request("DELETE", "/api/v1/jobs/%d" % running)
    assert r.status == 409 and r.error()[0] == "job_active"
    r = srv.request("DELETE", "/api/v1/jobs/%d" % queued)
    assert r.status == 409
    assert srv.job(queued)["status"] == "queued"  # now in GET /jobs/{id}'s cache
    r = srv.post("/api/v1/jobs/%d/cancel" % queued)
    assert r.status == 200 and r.json["status"] == "cancelled", r.body
    assert srv.job(queued)["status"] == "cancelled", "GET /jobs/{id} served its cache after a write"
    t0 = time.time()
    r = srv.post("/api/v1/jobs/%d/cancel" % running)
    assert r.status == 202 and r.json["cancel_requested"] is True, r.body
    job = srv.wait(running, timeout=60)
    assert job["status"] == "cancelled" and job["error"] is None, job
    assert time.time() - t0 < 10, "a running job took %.1f s to cancel" % (time.time() - t0)
    assert len(srv.get("/api/v1/jobs/%d/epochs" % running).json["epochs"]) >= 1  # its finished epochs stay
    assert os.path.isdir(srv.checkpoint_dir(running))  # and its checkpoint
    evs = srv.events(running)
    assert evs[-1]["data"]["status"] == "cancelled"
    for jid in (running, queued):
        r = srv.post("/api/v1/jobs/%d/cancel" % jid)
        assert r.status == 409 and r.error()[0] == "job_finished"
    r = srv.request("DELETE", "/api/v1/jobs/%d" % running)
    assert r.status == 204 and r.body == b""
    assert not os.path.exists(srv.checkpoint_dir(running))
    for path in ("", "/epochs", "/steps", "/memory", "/events"):
        assert srv.get("/api/v1/jobs/%d%s" % (running, path)).status == 404, path
    assert srv.request("DELETE", "/api/v1/jobs/%d" % running).status == 404
    db = sqlite3.connect(srv.db)
    for table in ("epochs", "steps", "memory", "events"):
        assert db.execute("SELECT COUNT(*) FROM %s WHERE job_id = ?" % table, (running,)).fetchone()[0] == 0, table
    db.close()


@test
def idempotency_keys(ctx):
    srv = ctx.srv
    spec = mlp_spec(epochs=1, train=100, evals=50, name="idem")
    key = {"Idempotency-Key": "retry-me-0001"}
    r1 = srv.post("/api/v1/jobs", spec, headers=key)
    assert r1.status == 201
    r2 = srv.post("/api/v1/jobs", spec, headers=key)
    assert r2.status == 200 and r2.json["id"] == r1.json["id"], r2.body
    assert r2.header("Location") == "/api/v1/jobs/%d" % r1.json["id"]
    other = dict(spec, name="another body")
    r3 = srv.post("/api/v1/jobs", other, headers=key)
    assert r3.status == 409 and r3.error()[:2] == ("idempotency_conflict", "Idempotency-Key"), r3.body
    a = srv.submit(spec)
    b = srv.submit(spec)
    assert a != b  # no key: two jobs
    for jid in (r1.json["id"], a, b):
        srv.wait(jid)


def writes_of_the_route_table():
    """Every write operation the OpenAPI document (held equal to the route table) lists as
    needing the token, its path parameters filled in."""
    out = []
    for tpl, item in OPENAPI.doc["paths"].items():
        for m, op in item.items():
            if m in ("post", "put", "patch", "delete") and op.get("security"):
                path = "/api/v1" + tpl.replace("{id}", "1").replace("{name}", "x")
                out.append((m.upper(), path + ("?name=x" if tpl == "/datasets" and m == "post" else "")))
    return out


@test
def bearer_token_on_every_write(ctx):
    srv = ctx.srv
    before = srv.count_jobs()
    writes = writes_of_the_route_table()
    assert len(writes) >= 8, writes
    for method, path in writes:
        for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + TOKEN},
                     {"Authorization": "Bearer " + TOKEN + "x"}):
            r = srv.request(method, path, body=mlp_spec() if method == "POST" else None, headers=hdrs, auth=False)
            assert r.status == 401, "%s %s %s: %d" % (method, path, hdrs, r.status)
            assert r.error()[0] == "unauthorized" and r.header("WWW-Authenticate").startswith("Bearer")
    assert srv.get("/api/v1/jobs", auth=False).status == 200  # reads are open
    # so are writes that change nothing: an estimate, dry runs
    assert srv.post("/api/v1/estimate", mlp_spec(), auth=False).status == 200
    assert srv.post("/api/v1/jobs?dry_run=1", mlp_spec(), auth=False).status == 200
    assert srv.post("/api/v1/jobs?dry_run=true", mlp_spec(), auth=False).status == 200
    assert srv.post("/api/v1/sweeps?dry_run=1", sweep_request(), auth=False).status == 200
    assert srv.post("/api/v1/jobs?dry_run=0", mlp_spec(), auth=False).status == 401
    assert srv.post("/api/v1/sweeps", sweep_request(), auth=False).status == 401
    assert srv.count_jobs() == before
    # the token, right or wrong, never reaches the log
    assert TOKEN not in srv.log(), "the bearer token is in octetd's log"


@test
def warning_when_reachable_without_a_token(ctx):
    for listen, token, warned in (("0.0.0.0", "", True), ("0.0.0.0", TOKEN, False), ("::1", "", False)):
        srv = Octetd(tempfile.mkdtemp(dir=ctx.root), "--listen", listen, token=token)
        srv.start()
        code = srv.stop()
        assert code == 0, (listen, code, srv.log()[-800:])
        said = "without --token" in srv.log()
        assert said == warned, (listen, token, srv.log()[-500:])


@test
def error_statuses(ctx):
    srv = ctx.srv
    r = srv.post("/api/v1/jobs", b'{"name": "x",\n "model": {"arch": }}')
    assert r.status == 400 and r.error()[0] == "bad_json" and "line 2" in r.error()[2], r.body
    assert srv.get("/api/v1/jobs/424242").status == 404
    r = srv.request("PUT", "/api/v1/jobs")
    assert r.status == 405 and set(r.header("Allow").split(", ")) == {"GET", "HEAD", "POST"}, r.header("Allow")
    r = srv.request("PATCH", "/api/v1/jobs/1")
    assert r.status == 405 and set(r.header("Allow").split(", ")) == {"GET", "HEAD", "DELETE"}
    r = srv.post("/api/v1/jobs", b"x" * 70000)
    assert r.status == 413 and r.error()[0] == "payload_too_large"
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", "multipart/form-data"):
        r = srv.post("/api/v1/jobs", mlp_spec(), ctype=ctype)
        assert r.status == 415 and r.error()[:2] == ("unsupported_media_type", "Content-Type"), (ctype, r.body)
    assert srv.post("/api/v1/jobs?dry_run=1", mlp_spec(), ctype="application/json; charset=utf-8").status == 200
    r = srv.post("/api/v1/jobs", dict(mlp_spec(), training={"epochs": 0}))
    assert r.status == 422 and r.error()[:2] == ("invalid_spec", "training.epochs"), r.body
    # dry run: the normalised spec, nothing queued
    before = srv.count_jobs()
    r = srv.post("/api/v1/jobs?dry_run=1", mlp_spec())
    assert r.status == 200 and r.json["valid"] is True and r.json["spec"]["training"]["eval_batch_size"] == 8
    assert srv.count_jobs() == before
    # 503 with Retry-After when the queue is full
    full = Octetd(tempfile.mkdtemp(dir=ctx.root), "--max-queued", "0").start()
    try:
        r = full.post("/api/v1/jobs", mlp_spec())
        assert r.status == 503 and r.error()[0] == "queue_full" and r.header("Retry-After"), r.body
    finally:
        assert full.stop() == 0


@test
def list_filters_and_paging(ctx):
    srv = ctx.srv
    everything = srv.get("/api/v1/jobs?limit=500").json
    ids = [j["id"] for j in everything["jobs"]]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 8, ids  # newest first
    assert everything["next_cursor"] is None
    pages, cursor = [], None
    while True:
        r = srv.get("/api/v1/jobs?limit=3" + ("&cursor=" + cursor if cursor else ""))
        assert r.status == 200
        pages += [j["id"] for j in r.json["jobs"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert pages == ids, (pages, ids)
    for q, key, value in (("status=cancelled", "status", "cancelled"), ("optimizer=adafactor", "optimizer", "adafactor"),
                          ("arch=distilbert", "arch", "distilbert"), ("dataset=fortunes-lang", "dataset", "fortunes-lang")):
        got = srv.get("/api/v1/jobs?" + q).json["jobs"]
        assert got and all(j[key] == value for j in got), q
        assert len(got) == len([j for j in everything["jobs"] if j[key] == value]), q
    item = [j for j in everything["jobs"] if j["id"] == ctx.mlp_job][0]
    assert item["latest_epoch"]["epoch"] == 2 and item["progress"] == 1.0 and item["eta_seconds"] == 0
    assert item["model"] == "mlp 64-32", item["model"]
    assert {j["model"] for j in everything["jobs"] if j["arch"] == "distilbert"} >= {"distilbert-tiny +config"}


@test
def metrics_text(ctx):
    srv = ctx.srv
    r = srv.get("/api/v1/metrics")
    assert r.status == 200 and r.header("Content-Type").startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    for family in ("octet_jobs", "octet_queue_depth", "octet_epochs_recorded", "octet_steps_recorded",
                   "octet_workers", "octet_job_optimizer_state_bytes", "octet_job_samples_per_second",
                   "octet_http_requests_total", "octet_http_request_duration_seconds"):
        assert "# TYPE %s " % family in text, family
    counts = {}
    for j in srv.get("/api/v1/jobs?limit=500").json["jobs"]:
        counts[j["status"]] = counts.get(j["status"], 0) + 1
    for status in ("queued", "running", "succeeded", "failed", "cancelled"):
        m = re.search(r'^octet_jobs\{status="%s"\} (\d+)$' % status, text, re.M)
        assert m and int(m.group(1)) == counts.get(status, 0), status
    db = sqlite3.connect(srv.db)
    epochs = db.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
    db.close()
    assert re.search(r"^octet_epochs_recorded %d$" % epochs, text, re.M)
    assert re.search(r'^octet_http_requests_total\{route="/api/v1/jobs/\{id\}",method="GET",status="200"\} \d+$',
                     text, re.M)
    assert re.search(r'octet_http_request_duration_seconds_bucket\{route="/api/v1/jobs",method="POST",le="\+Inf"\}',
                     text)
    assert re.search(r'^octet_workers\{state="idle"\} 1$', text, re.M)


@test
def metrics_of_a_running_job(ctx):
    srv = ctx.srv
    jid = srv.submit(long_spec(epochs=3, name="watched"))
    first_event(srv, jid, "memory")
    text = srv.get("/api/v1/metrics").body.decode()
    m = re.search(r'^octet_job_optimizer_state_bytes\{job_id="%d",optimizer="adamw",device="cpu"\} (\d+)$' % jid,
                  text, re.M)
    assert m and int(m.group(1)) == srv.get("/api/v1/jobs/%d/memory" % jid).json["memory"]["optimizer_state_bytes"]
    assert re.search(r'^octet_job_samples_per_second\{job_id="%d",' % jid, text, re.M)
    assert re.search(r'^octet_workers\{state="busy"\} 1$', text, re.M)
    job = srv.job(jid)
    assert job["status"] == "running" and job["total_steps"] == 3 * 625
    assert srv.post("/api/v1/jobs/%d/cancel" % jid).status == 202
    srv.wait(jid)


@test
def datasets_upload_and_use(ctx):
    srv = ctx.srv
    listing = srv.get("/api/v1/datasets").json["datasets"]
    names = {d["name"]: d for d in listing}
    assert names["fashion-mnist"]["n_train"] == 60000 and names["fashion-mnist"]["n_eval"] == 10000
    assert names["fortunes-lang"]["num_labels"] == 6 and names["fortunes-lang"]["available"] is True
    rows = []
    for i in range(120):
        lang = ("en", "de", "es")[i % 3]
        word = {"en": "the house is big", "de": "das Haus ist gross", "es": "la casa es grande"}[lang]
        rows.append(json.dumps({"text": "%s %d" % (word, i), "label": lang}))
    body = ("\n".join(rows) + "\n").encode()
    r = srv.post("/api/v1/datasets?name=langs3", body, ctype="application/x-ndjson")
    assert r.status == 201, r.body
    assert r.json["num_labels"] == 3 and r.json["n_train"] + r.json["n_eval"] == 120 and r.json["format"] == "jsonl"
    assert r.header("Location") == "/api/v1/datasets/langs3"
    assert os.path.isfile(os.path.join(srv.data, "datasets", "langs3.jsonl"))
    csv = b"text,label\n" + b"".join(b'"row, %d",%d\n' % (i, i % 2) for i in range(40))
    r = srv.post("/api/v1/datasets?name=pairs.csv-1", csv, ctype="text/csv")
    assert r.status == 201 and r.json["num_labels"] == 2, r.body
    assert srv.post("/api/v1/datasets?name=langs3", body, ctype="application/x-ndjson").status == 409
    bad = b'{"text": "a", "label": "x"}\n{"text": 5, "label": "y"}\n'
    r = srv.post("/api/v1/datasets?name=broken", bad, ctype="application/x-ndjson")
    assert r.status == 422 and r.error()[:2] == ("invalid_dataset", "body") and "line 2" in r.error()[2], r.body
    leftovers = [n for n in os.listdir(os.path.join(srv.data, "datasets")) if n.startswith(".upload")]
    assert not leftovers and not os.path.exists(os.path.join(srv.data, "datasets", "broken.jsonl"))
    got = {d["name"]: d for d in srv.get("/api/v1/datasets").json["datasets"]}
    assert got["langs3"]["kind"] == "uploaded" and "broken" not in got and "path" not in got["langs3"]
    jid = srv.submit(bert_spec({"name": "langs3", "max_length": 24}, name="on langs3"))
    r = srv.request("DELETE", "/api/v1/datasets/langs3")
    assert r.status == 409 and r.error()[0] == "dataset_in_use", r.body
    job = srv.wait(jid)
    assert job["status"] == "succeeded" and job["dataset"] == "langs3", job["error"]
    assert job["info"]["num_labels"] == 3
    assert srv.request("DELETE", "/api/v1/datasets/langs3").status == 204
    assert not os.path.exists(os.path.join(srv.data, "datasets", "langs3.jsonl"))
    assert srv.request("DELETE", "/api/v1/datasets/langs3").status == 404
    r = srv.post("/api/v1/jobs", bert_spec({"name": "langs3"}))
    assert r.status == 422 and r.error()[1] == "dataset.name"


@test
def paths_stay_in_the_data_directory(ctx):
    srv = ctx.srv
    os.makedirs(os.path.join(srv.data, "mine"), exist_ok=True)
    with open(os.path.join(srv.data, "mine", "train.jsonl"), "w") as f:
        for i in range(30):
            f.write(json.dumps({"text": "t%d" % i, "label": i % 2}) + "\n")
    os.symlink("/etc", os.path.join(srv.data, "escape"))
    os.symlink(os.path.join(srv.data, "mine", "train.jsonl"), os.path.join(srv.data, "inside.jsonl"))

    def files(train, ev=None):
        ds = {"train_file": train, "eval_file": ev or train}
        return bert_spec(ds)

    r = srv.post("/api/v1/jobs?dry_run=1", files("mine/train.jsonl"))
    assert r.status == 200, r.body
    assert srv.post("/api/v1/jobs?dry_run=1", files("inside.jsonl")).status == 200  # a link that stays inside
    for train, field in (("/etc/passwd", "dataset.train_file"), ("../octet.db", "dataset.train_file"),
                         ("escape/passwd", "dataset.train_file"), ("mine/../../octet.db", "dataset.train_file"),
                         ("mine/nope.jsonl", "dataset.train_file")):
        r = srv.post("/api/v1/jobs?dry_run=1", files(train))
        assert r.status == 422 and r.error()[1] == field, (train, r.body)
    r = srv.post("/api/v1/jobs?dry_run=1", files("mine/train.jsonl", "escape/hostname"))
    assert r.status == 422 and r.error()[1] == "dataset.eval_file", r.body
    spec = bert_spec()
    spec["model"] = {"arch": "distilbert", "path": "escape"}
    r = srv.post("/api/v1/jobs?dry_run=1", spec)
    assert r.status == 422 and r.error()[1] == "model.path", r.body


def sweep_request(hidden=(128, 64), seeds=(1, 2), name="optimizers"):
    base = mlp_spec("adamw", epochs=2, train=400, evals=100, hidden=hidden, name=name)
    del base["optimizer"]["name"]
    return {"name": name, "base": base,
            "grid": {"optimizer": [{"name": "adamw"}, {"name": "adamw8bit"}, {"name": "adafactor"}],
                     "training.seed": list(seeds)}}


def stats_of(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "mean": None, "min": None, "max": None, "std": None}
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return {"n": len(xs), "mean": mean, "min": min(xs), "max": max(xs), "std": std}


def assert_stats(got, want, what):
    assert got["n"] == want["n"], (what, got, want)
    for k in ("mean", "min", "max", "std"):
        close(got[k], want[k], "%s %s" % (what, k), rel=1e-9)


@test
def sweep_of_optimizers_over_seeds(ctx):
    srv = ctx.srv
    before = srv.count_jobs()
    r = srv.post("/api/v1/sweeps?dry_run=1", sweep_request())
    assert r.status == 200 and r.json["count"] == 6, r.body
    assert [c["grid_values"]["training.seed"] for c in r.json["combinations"]] == [1, 2] * 3
    assert r.json["combinations"][2]["spec"]["optimizer"]["name"] == "adamw8bit"
    assert r.json["combinations"][2]["spec"]["optimizer"]["lr"] == 1e-3  # merged into the base's optimizer
    assert srv.count_jobs() == before  # a dry run creates nothing
    r = srv.post("/api/v1/sweeps", sweep_request())
    assert r.status == 201, r.body
    sweep = r.json
    assert len(sweep["jobs"]) == 6 and len(sweep["groups"]) == 3 and r.header("Location") == sweep["links"]["self"]
    for jid in sweep["jobs"]:
        assert srv.wait(jid)["status"] == "succeeded"
    jobs = srv.get("/api/v1/jobs?sweep=%d&limit=500" % sweep["id"]).json["jobs"]
    assert sorted(j["id"] for j in jobs) == sorted(sweep["jobs"]) and all(j["sweep_id"] == sweep["id"] for j in jobs)
    view = srv.get(sweep["links"]["self"]).json
    assert view["status"] == "succeeded" and view["counts"]["succeeded"] == 6
    for group in view["groups"]:
        opt = group["key"]["optimizer"]["name"]
        assert sorted(group["seeds"]) == [1, 2] and len(group["jobs"]) == 2, group
        epochs = {jid: srv.get("/api/v1/jobs/%d/epochs" % jid).json["epochs"] for jid in group["jobs"]}
        for job_id in group["jobs"]:
            assert srv.job(job_id)["grid_values"] == {"optimizer": {"name": opt},
                                                      "training.seed": srv.job(job_id)["spec"]["training"]["seed"]}
        for row in group["epochs"]:
            for m in ("train_loss", "eval_loss", "eval_accuracy", "eval_f1"):
                want = stats_of([e[m] for es in epochs.values() for e in es if e["epoch"] == row["epoch"]])
                assert_stats(row[m], want, "%s epoch %d %s" % (opt, row["epoch"], m))
        for m in ("eval_loss", "eval_accuracy", "eval_f1"):
            assert_stats(group["final"][m], stats_of([es[-1][m] for es in epochs.values()]), "%s final %s" % (opt, m))
        want, _ = mlp_state_layout(opt, (128, 64))
        mem = group["memory"]
        assert mem["optimizer_state_bytes"] == want["total"], (opt, mem, want)
        close(mem["relative_to_adamw"], want["total"] / (8 * mem["parameters"]), opt + " relative to AdamW")
        assert group["seconds_per_epoch"]["n"] == 4 and group["samples_per_second"]["mean"] > 0
    rel = {g["key"]["optimizer"]["name"]: g["memory"]["relative_to_adamw"] for g in view["groups"]}
    assert rel["adamw"] == 1.0 and 0.24 < rel["adamw8bit"] < 0.3 and rel["adafactor"] < rel["adamw8bit"], rel
    listed = srv.get("/api/v1/sweeps").json["sweeps"]
    assert listed[0]["id"] == sweep["id"] and listed[0]["counts"]["succeeded"] == 6
    assert srv.request("DELETE", sweep["links"]["self"]).status == 204
    assert srv.get(sweep["links"]["self"]).status == 404
    for jid in sweep["jobs"]:
        assert srv.get("/api/v1/jobs/%d" % jid).status == 404
    assert srv.count_jobs() == before


@test
def sweep_refusals(ctx):
    srv = ctx.srv
    before = srv.count_jobs()
    db = sqlite3.connect(srv.db)
    sweeps_before = db.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0]
    db.close()
    base = sweep_request()["base"]
    cases = [
        ({"optimizer.lrr": [1e-3]}, "grid.optimizer.lrr"),
        ({"foo.bar": [1]}, "grid.foo.bar"),
        ({"optimizer..lr": [1]}, "grid.optimizer..lr"),
        ({"optimizer.lr": [1e-3, -1]}, "grid.optimizer.lr[1]"),
        ({"optimizer.name": ["adamw", "adam9"]}, "grid.optimizer.name[1]"),
        ({"optimizer": [{"name": "adamw"}, {"name": "sgd", "betas": [0.9, 0.99]}]}, "grid.optimizer[1].betas"),
        ({"optimizer": [{"name": "adamw"}, {"name": "adamw", "betas": [0.9, 1.5]}]}, "grid.optimizer[1].betas[1]"),
        ({"training.seed": []}, "grid.training.seed"),
        ({"training.seed": 3}, "grid.training.seed"),
        ({}, "grid"),
    ]
    for grid, field in cases:
        r = srv.post("/api/v1/sweeps", {"base": base, "grid": grid})
        assert r.status == 422 and r.error()[1] == field, (grid, r.body)
    r = srv.post("/api/v1/sweeps", {"base": dict(base, training={"epochs": 0}), "grid": {"training.seed": [1]}})
    assert r.status == 422 and r.error()[1] == "base.training.epochs", r.body
    bad_groups = dict(base, optimizer={"lr": 1e-3, "param_groups": [{"match": "*.bias", "lr": -1}]})
    r = srv.post("/api/v1/sweeps", {"base": bad_groups, "grid": {"optimizer": [{"name": "adamw"}]}})
    assert r.status == 422 and r.error()[1] == "base.optimizer.param_groups[0].lr", r.body
    r = srv.post("/api/v1/sweeps", {"base": base, "grid": {"optimizer.lr": [1e-3] * 17, "training.seed": list(range(17))}})
    assert r.status == 422 and r.error()[:2] == ("sweep_too_large", "grid"), r.body
    r = srv.post("/api/v1/sweeps", {"grid": {"training.seed": [1]}})
    assert r.status == 422 and r.error()[1] == "base"
    r = srv.post("/api/v1/sweeps", {"base": base, "grid": {"training.seed": [1]}, "extra": 1})
    assert r.status == 422 and r.error()[1] == "extra"
    assert srv.count_jobs() == before
    db = sqlite3.connect(srv.db)
    assert db.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == sweeps_before
    db.close()


@test
def sweep_cancel(ctx):
    srv = ctx.srv
    r = srv.post("/api/v1/sweeps", {"name": "long", "base": long_spec(epochs=5), "grid": {"training.seed": [1, 2, 3]}})
    assert r.status == 201, r.body
    sweep = r.json
    first_event(srv, sweep["jobs"][0], "step")
    assert srv.request("DELETE", sweep["links"]["self"]).status == 409
    r = srv.post(sweep["links"]["self"] + "/cancel")
    assert r.status == 202, r.body
    for jid in sweep["jobs"]:
        assert srv.wait(jid, timeout=60)["status"] == "cancelled"
    view = srv.get(sweep["links"]["self"]).json
    assert view["status"] == "cancelled" and view["counts"]["cancelled"] == 3
    assert srv.post(sweep["links"]["self"] + "/cancel").status == 200  # nothing left to stop
    listed = [s["id"] for s in srv.get("/api/v1/sweeps?limit=500").json["sweeps"]]
    assert sweep["id"] in listed
    assert srv.request("DELETE", sweep["links"]["self"]).status == 204
    for jid in sweep["jobs"]:
        assert not os.path.exists(srv.checkpoint_dir(jid))
    # the cached views follow the delete at once
    assert srv.get(sweep["links"]["self"]).status == 404
    assert sweep["id"] not in [s["id"] for s in srv.get("/api/v1/sweeps?limit=500").json["sweeps"]]
    assert srv.get("/api/v1/jobs?sweep=%d" % sweep["id"]).json["jobs"] == []


@test
def cached_replies_follow_every_write(ctx):
    """GET /jobs/{id}, GET /jobs, GET /sweeps and GET /sweeps/{id} serve a rendered reply again
    while nothing was committed: each must show a write the moment the write's reply is back."""
    srv = ctx.srv
    a = srv.submit(long_spec(name="cache-a"))
    first_event(srv, a, "step")
    b = srv.submit(mlp_spec(name="cache-b"))  # queued behind a
    page = "/api/v1/jobs?limit=5"
    assert srv.get(page).json["jobs"][0]["id"] == b
    c = srv.submit(mlp_spec(name="cache-c"))
    assert srv.get(page).json["jobs"][0]["id"] == c, "GET /jobs served a page older than a submission"
    status_of = lambda jid: {j["id"]: j["status"] for j in srv.get(page).json["jobs"]}[jid]
    assert status_of(b) == "queued"
    assert srv.post("/api/v1/jobs/%d/cancel" % b).status == 200
    assert status_of(b) == "cancelled", "GET /jobs served a page older than a cancel"
    r = srv.post("/api/v1/sweeps", {"name": "cache", "base": mlp_spec(name="cache-s"), "grid": {"training.seed": [1, 2]}})
    assert r.status == 201, r.body
    sweep = r.json
    assert srv.get(sweep["links"]["self"]).json["counts"]["queued"] == 2
    assert sweep["id"] == srv.get("/api/v1/sweeps?limit=1").json["sweeps"][0]["id"]
    assert srv.post(sweep["links"]["self"] + "/cancel").status == 200
    view = srv.get(sweep["links"]["self"]).json
    assert view["counts"]["cancelled"] == 2 and view["status"] == "cancelled", view
    assert srv.get("/api/v1/sweeps?limit=1").json["sweeps"][0]["status"] == "cancelled"
    for jid in (a, c):
        srv.post("/api/v1/jobs/%d/cancel" % jid)
        assert srv.wait(jid, timeout=60)["status"] == "cancelled"


def hostile_catalogue():
    """(what, method, path, body, headers, ctype, status, field): bad requests and what they get."""
    base = mlp_spec()

    def spec(**patch):
        s = json.loads(json.dumps(base))
        for dotted, value in patch.items():
            obj, keys = s, dotted.split("__")
            for k in keys[:-1]:
                obj = obj.setdefault(k, {})
            if value is DELETE:
                obj.pop(keys[-1], None)
            else:
                obj[keys[-1]] = value
        return s

    J = "/api/v1/jobs"
    deep = b"[" * 5000 + b"]" * 5000
    rows = [
        ("not JSON", "POST", J, b"not json", None, "application/json", 400, "body"),
        ("truncated", "POST", J, b'{"name": "x"', None, "application/json", 400, "body"),
        ("an array", "POST", J, b"[1, 2]", None, "application/json", 400, "body"),
        ("a string", "POST", J, b'"spec"', None, "application/json", 400, "body"),
        ("empty body", "POST", J, b"", None, "application/json", 400, "body"),
        ("duplicate keys", "POST", J, b'{"name": "a", "name": "b"}', None, "application/json", 400, "body"),
        ("trailing garbage", "POST", J, json.dumps(base).encode() + b" x", None, "application/json", 400, "body"),
        ("invalid UTF-8", "POST", J, b'{"name": "\xff\xfe"}', None, "application/json", 400, "body"),
        ("a NUL escape", "POST", J, b'{"name": "a\\u0000b"}', None, "application/json", 400, "body"),
        ("deep nesting", "POST", J, deep, None, "application/json", 400, "body"),
        ("deep nesting in a field", "POST", J, b'{"model": {"hidden": ' + deep + b"}}", None, "application/json", 400,
         "body"),
        ("a huge number", "POST", J, b'{"optimizer": {"lr": 1e999}}', None, "application/json", 400, "body"),
        ("NaN literal", "POST", J, b'{"optimizer": {"lr": NaN}}', None, "application/json", 400, "body"),
        ("unknown top-level field", "POST", J, spec(extra=1), None, None, 422, "extra"),
        ("model not an object", "POST", J, spec(model=5), None, None, 422, "model"),
        ("no model", "POST", J, spec(model=DELETE), None, None, 422, "model"),
        ("unknown arch", "POST", J, spec(model__arch="resnet"), None, None, 422, "model.arch"),
        ("hidden a string", "POST", J, spec(model__hidden="64"), None, None, 422, "model.hidden"),
        ("hidden negative", "POST", J, spec(model__hidden=[-1]), None, None, 422, "model.hidden[0]"),
        ("hidden zero", "POST", J, spec(model__hidden=[64, 0]), None, None, 422, "model.hidden[1]"),
        ("hidden huge", "POST", J, spec(model__hidden=[10 ** 12]), None, None, 422, "model.hidden[0]"),
        ("too many layers", "POST", J, spec(model__hidden=[8] * 40), None, None, 422, "model.hidden"),
        ("num_labels 1", "POST", J, spec(model__num_labels=1), None, None, 422, "model.num_labels"),
        ("num_labels huge", "POST", J, spec(model__num_labels=10 ** 9), None, None, 422, "model.num_labels"),
        ("num_labels a float", "POST", J, spec(model__num_labels=2.5), None, None, 422, "model.num_labels"),
        ("dropout above 1", "POST", J, spec(model__dropout=1.5), None, None, 422, "model.dropout"),
        ("unknown model field", "POST", J, spec(model__layers=3), None, None, 422, "model.layers"),
        ("preset on an mlp", "POST", J, spec(model__preset="distilbert-tiny"), None, None, 422, "model.preset"),
        ("unknown preset", "POST", J, dict(bert_spec(), model={"arch": "distilbert", "preset": "bert-huge"}), None,
         None, 422, "model.preset"),
        ("config dim 0", "POST", J, dict(bert_spec(), model={"arch": "distilbert", "preset": "distilbert-tiny",
                                                              "config": {"dim": 0}}), None, None, 422,
         "model.config.dim"),
        ("heads that do not divide dim", "POST", J, dict(bert_spec(), model={
            "arch": "distilbert", "preset": "distilbert-tiny", "config": {"n_heads": 7}}), None, None, 422,
         "model.config.n_heads"),
        ("model.path absolute", "POST", J, dict(bert_spec(), model={"arch": "distilbert", "path": "/etc"}), None, None,
         422, "model.path"),
        ("model.path with ..", "POST", J, dict(bert_spec(), model={"arch": "distilbert", "path": "../x"}), None, None,
         422, "model.path"),
        ("dataset traversal name", "POST", J, spec(dataset__name="../../etc/passwd"), None, None, 422, "dataset.name"),
        ("dataset name with a slash", "POST", J, spec(dataset__name="a/b"), None, None, 422, "dataset.name"),
        ("unknown dataset", "POST", J, spec(dataset__name="imagenet"), None, None, 422, "dataset.name"),
        ("dataset name not a string", "POST", J, spec(dataset__name=7), None, None, 422, "dataset.name"),
        ("absolute train_file", "POST", J, spec(dataset={"train_file": "/etc/passwd", "eval_file": "x.jsonl"}), None,
         None, 422, "dataset.train_file"),
        ("train_file with ..", "POST", J, spec(dataset={"train_file": "../x.jsonl", "eval_file": "x.jsonl"}), None,
         None, 422, "dataset.train_file"),
        ("negative train_limit", "POST", J, spec(dataset__train_limit=-5), None, None, 422, "dataset.train_limit"),
        ("max_length 0", "POST", J, spec(dataset__max_length=0), None, None, 422, "dataset.max_length"),
        ("unknown dataset field", "POST", J, spec(dataset__split=0.5), None, None, 422, "dataset.split"),
        ("unknown optimizer", "POST", J, spec(optimizer__name="adam9"), None, None, 422, "optimizer.name"),
        ("negative lr", "POST", J, spec(optimizer__lr=-1), None, None, 422, "optimizer.lr"),
        ("zero lr", "POST", J, spec(optimizer__lr=0), None, None, 422, "optimizer.lr"),
        ("lr a string", "POST", J, spec(optimizer__lr="1e-3"), None, None, 422, "optimizer.lr"),
        ("one beta", "POST", J, spec(optimizer__betas=[0.9]), None, None, 422, "optimizer.betas"),
        ("beta1 = 1", "POST", J, spec(optimizer__betas=[1.0, 0.999]), None, None, 422, "optimizer.betas[0]"),
        ("beta2 negative", "POST", J, spec(optimizer__betas=[0.9, -0.1]), None, None, 422, "optimizer.betas[1]"),
        ("negative eps", "POST", J, spec(optimizer__eps=-1e-8), None, None, 422, "optimizer.eps"),
        ("negative weight_decay", "POST", J, spec(optimizer__weight_decay=-0.1), None, None, 422,
         "optimizer.weight_decay"),
        ("momentum on adamw", "POST", J, spec(optimizer__momentum=0.9), None, None, 422, "optimizer.momentum"),
        ("block_size not a power of two", "POST", J, spec(optimizer__name="adamw8bit", optimizer__block_size=100),
         None, None, 422, "optimizer.block_size"),
        ("param_groups not an array", "POST", J, spec(optimizer__param_groups={"match": "*"}), None, None, 422,
         "optimizer.param_groups"),
        ("group without match", "POST", J, spec(optimizer__param_groups=[{"lr": 1e-3}]), None, None, 422,
         "optimizer.param_groups[0].match"),
        ("group match not a string", "POST", J, spec(optimizer__param_groups=[{"match": 5}]), None, None, 422,
         "optimizer.param_groups[0].match"),
        ("group with a bad lr", "POST", J, spec(optimizer__param_groups=[{"match": "*.bias", "lr": -1}]), None, None,
         422, "optimizer.param_groups[0].lr"),
        ("group with an unknown field", "POST", J, spec(optimizer__param_groups=[{"match": "*", "foo": 1}]), None,
         None, 422, "optimizer.param_groups[0].foo"),
        ("too many groups", "POST", J, spec(optimizer__param_groups=[{"match": "g%d" % i} for i in range(200)]), None,
         None, 422, "optimizer.param_groups"),
        ("zero epochs", "POST", J, spec(training__epochs=0), None, None, 422, "training.epochs"),
        ("epochs a float", "POST", J, spec(training__epochs=2.5), None, None, 422, "training.epochs"),
        ("epochs a string", "POST", J, spec(training__epochs="3"), None, None, 422, "training.epochs"),
        ("huge batch", "POST", J, spec(training__batch_size=10 ** 9), None, None, 422, "training.batch_size"),
        ("negative batch", "POST", J, spec(training__batch_size=-8), None, None, 422, "training.batch_size"),
        ("zero accumulation", "POST", J, spec(training__gradient_accumulation_steps=0), None, None, 422,
         "training.gradient_accumulation_steps"),
        ("negative max_grad_norm", "POST", J, spec(training__max_grad_norm=-1), None, None, 422,
         "training.max_grad_norm"),
        ("unknown scheduler", "POST", J, spec(training__lr_scheduler="exp"), None, None, 422, "training.lr_scheduler"),
        ("negative warmup", "POST", J, spec(training__warmup_steps=-1), None, None, 422, "training.warmup_steps"),
        ("seed a string", "POST", J, spec(training__seed="x"), None, None, 422, "training.seed"),
        ("unknown device", "POST", J, spec(training__device="tpu"), None, None, 422, "training.device"),
        ("cuda on a CPU server", "POST", J, spec(training__device="cuda"), None, None, 422, "training.device"),
        ("bf16 on the CPU", "POST", J, spec(training__precision="bf16"), None, None, 422, "training.precision"),
        ("unknown precision", "POST", J, spec(training__precision="fp8"), None, None, 422, "training.precision"),
        ("log_every 0", "POST", J, spec(training__log_every=0), None, None, 422, "training.log_every"),
        ("unknown training field", "POST", J, spec(training__fp16=True), None, None, 422, "training.fp16"),
        ("name not a string", "POST", J, spec(name=5), None, None, 422, "name"),
        ("name too long", "POST", J, spec(name="n" * 5000), None, None, 422, "name"),
        ("body over the cap", "POST", J, b'{"name": "' + b"x" * 70000 + b'"}', None, "application/json", 413, "body"),
        ("form-encoded", "POST", J, b"name=x", None, "application/x-www-form-urlencoded", 415, "Content-Type"),
        ("bad dry_run", "POST", J + "?dry_run=maybe", base, None, None, 400, "dry_run"),
        ("Idempotency-Key too long", "POST", J, base, {"Idempotency-Key": "k" * 300}, None, 400, "Idempotency-Key"),
        ("Idempotency-Key with spaces", "POST", J, base, {"Idempotency-Key": "a b"}, None, 400, "Idempotency-Key"),
        ("limit 0", "GET", J + "?limit=0", None, None, None, 400, "limit"),
        ("limit too big", "GET", J + "?limit=501", None, None, None, 400, "limit"),
        ("limit not a number", "GET", J + "?limit=ten", None, None, None, 400, "limit"),
        ("unknown status filter", "GET", J + "?status=done", None, None, None, 400, "status"),
        ("unknown optimizer filter", "GET", J + "?optimizer=adam9", None, None, None, 400, "optimizer"),
        ("negative cursor", "GET", J + "?cursor=-1", None, None, None, 400, "cursor"),
        ("job id not a number", "GET", J + "/abc", None, None, None, 404, None),
        ("job id zero", "GET", J + "/0", None, None, None, 404, None),
        ("job id negative", "GET", J + "/-1", None, None, None, 404, None),
        ("job id with an exponent", "GET", J + "/1e3", None, None, None, 404, None),
        ("no such job", "GET", J + "/987654", None, None, None, 404, None),
        ("cancel no such job", "POST", J + "/987654/cancel", None, None, None, 404, None),
        ("steps after_step negative", "GET", J + "/1/steps?after_step=-1", None, None, None, 400, "after_step"),
        ("steps limit too big", "GET", J + "/1/steps?limit=100000", None, None, None, 400, "limit"),
        ("events Last-Event-ID junk", "GET", J + "/1/events", None, {"Last-Event-ID": "abc"}, None, 400,
         "Last-Event-ID"),
        ("upload without a name", "POST", "/api/v1/datasets", b'{"text":"a","label":1}\n', None,
         "application/x-ndjson", 400, "name"),
        ("upload name with traversal", "POST", "/api/v1/datasets?name=../evil", b'{"text":"a","label":1}\n', None,
         "application/x-ndjson", 400, "name"),
        ("upload name in capitals", "POST", "/api/v1/datasets?name=Evil", b'{"text":"a","label":1}\n', None,
         "application/x-ndjson", 400, "name"),
        ("upload over a built-in", "POST", "/api/v1/datasets?name=fashion-mnist", b'{"text":"a","label":1}\n', None,
         "application/x-ndjson", 409, "name"),
        ("upload of an unknown format", "POST", "/api/v1/datasets?name=x&format=xml", b"<x/>", None,
         "application/xml", 400, "format"),
        ("upload without a type", "POST", "/api/v1/datasets?name=x", b"text,label\n", None, "application/json", 415,
         "Content-Type"),
        ("upload of one class", "POST", "/api/v1/datasets?name=oneclass", b'{"text":"a","label":1}\n' * 20, None,
         "application/x-ndjson", 422, "body"),
        ("upload of invalid UTF-8", "POST", "/api/v1/datasets?name=badutf", b'{"text":"\xff","label":1}\n', None,
         "application/x-ndjson", 422, "body"),
        ("delete a built-in dataset", "DELETE", "/api/v1/datasets/fashion-mnist", None, None, None, 409, None),
        ("delete an odd dataset name", "DELETE", "/api/v1/datasets/..%2f..", None, None, None, 404, None),
        ("PUT on jobs", "PUT", J, base, None, None, 405, None),
    ]
    return rows


class _Delete:
    pass


DELETE = _Delete()


@test
def hostile_submissions(ctx):
    srv = ctx.srv
    rows = hostile_catalogue()
    assert len(rows) >= 60, len(rows)
    before = srv.count_jobs()
    files_before = sorted(os.listdir(srv.data))
    for what, method, path, body, headers, ctype, status, field in rows:
        r = srv.request(method, path, body=body, headers=headers, ctype=ctype or "application/json")
        assert r.status == status, "%s: %d, expected %d: %s" % (what, r.status, status, r.body[:300])
        code, got_field, message = r.error()
        assert got_field == field, "%s: field %r, expected %r (%s)" % (what, got_field, field, message)
        assert message, what
        h = srv.get("/api/v1/health")
        assert h.status == 200 and srv.alive(), "the server died after: %s" % what
    assert srv.count_jobs() == before, "a refused request changed the jobs table"
    assert sorted(os.listdir(srv.data)) == files_before
    ctx.catalogue = len(rows)


@test
def restart_keeps_everything(ctx):
    srv = ctx.srv
    jobs = srv.get("/api/v1/jobs?limit=500").json["jobs"]
    epochs = srv.get("/api/v1/jobs/%d/epochs" % ctx.mlp_job).json
    events = srv.events(ctx.mlp_job)
    assert srv.stop() == 0, "octetd did not exit 0 on SIGTERM"
    srv.start()
    assert srv.get("/api/v1/jobs?limit=500").json["jobs"] == jobs
    assert srv.get("/api/v1/jobs/%d/epochs" % ctx.mlp_job).json == epochs
    assert srv.events(ctx.mlp_job) == events


@test
def sigterm_checkpoints_and_resumes(ctx):
    root = tempfile.mkdtemp(dir=ctx.root)
    srv = Octetd(root).start()
    spec = long_spec(epochs=3, name="stopped")
    jid = srv.submit(spec)
    first_event(srv, jid, "step")
    streams = []  # live streams while it stops: they end with the job back in the queue
    readers = [threading.Thread(target=lambda: streams.append(srv.events(jid, timeout=60))) for _ in range(3)]
    for r in readers:
        r.start()
    time.sleep(0.5)
    t0 = time.time()
    assert srv.stop() == 0, "octetd did not exit 0 on SIGTERM"
    for r in readers:
        r.join(60)
    assert len(streams) == 3 and all(s and s[-1]["data"]["status"] == "queued" for s in streams), streams
    assert time.time() - t0 < 30, "SIGTERM took %.1f s" % (time.time() - t0)
    db = sqlite3.connect(srv.db)
    status, steps = db.execute("SELECT status, steps_done FROM jobs WHERE id = ?", (jid,)).fetchone()
    db.close()
    assert status == "queued", status
    ckpts = os.listdir(srv.checkpoint_dir(jid))
    assert len(ckpts) == 1 and int(ckpts[0].split("-")[1]) > 0, ckpts  # the step it stopped at
    srv.start()
    job = srv.wait(jid)
    assert job["status"] == "succeeded" and job["attempt"] == 2, job
    assert_epochs_once(srv, jid, 3)
    statuses = [e["data"]["status"] for e in srv.events(jid) if e["event"] == "status"]
    assert statuses == ["queued", "running", "queued", "running", "succeeded"], statuses
    ref = srv.submit(dict(spec, name="uninterrupted"))
    assert srv.wait(ref)["status"] == "succeeded"
    assert srv.final_weights(jid) == srv.final_weights(ref), "the resumed run ended with other weights"
    assert srv.stop() == 0


@test
def sigkill_resumes_from_the_checkpoint(ctx):
    root = tempfile.mkdtemp(dir=ctx.root)
    srv = Octetd(root).start()
    spec = long_spec(epochs=3, name="killed")
    jid = srv.submit(spec)
    first_event(srv, jid, "epoch")  # epoch 1 is recorded and checkpointed; epoch 2 is running
    srv.stop(signal.SIGKILL)
    db = sqlite3.connect(srv.db)
    assert db.execute("SELECT status FROM jobs WHERE id = ?", (jid,)).fetchone()[0] == "running"
    recorded = db.execute("SELECT COUNT(*) FROM epochs WHERE job_id = ?", (jid,)).fetchone()[0]
    db.close()
    assert recorded >= 1
    srv.start()
    job = srv.wait(jid)
    assert job["status"] == "succeeded" and job["attempt"] == 2, job
    assert_epochs_once(srv, jid, 3)
    assert "resuming from" in srv.log()
    ref = srv.submit(dict(spec, name="uninterrupted"))
    assert srv.wait(ref)["status"] == "succeeded"
    assert srv.final_weights(jid) == srv.final_weights(ref), "the resumed run ended with other weights"
    got = srv.get("/api/v1/jobs/%d/epochs" % jid).json["epochs"]
    want = srv.get("/api/v1/jobs/%d/epochs" % ref).json["epochs"]
    for a, b in zip(got, want):
        assert (a["eval_loss"], a["eval_accuracy"]) == (b["eval_loss"], b["eval_accuracy"]), (a, b)
    assert srv.stop() == 0


@test
def a_job_that_cannot_resume_fails(ctx):
    root = tempfile.mkdtemp(dir=ctx.root)
    srv = Octetd(root).start()
    jid = srv.submit(long_spec(epochs=3, name="damaged"))
    first_event(srv, jid, "epoch")
    srv.stop(signal.SIGKILL)
    d = srv.checkpoint_dir(jid)
    newest = sorted(os.listdir(d), key=lambda n: int(n.split("-")[1]))[-1]
    with open(os.path.join(d, newest, "model.safetensors"), "r+b") as f:
        f.truncate(100)  # a disk that lost the end of the file
    srv.start()
    job = srv.wait(jid)
    assert job["status"] == "failed" and job["attempt"] == 2, job
    assert job["error"]["field"] == "checkpoint" and newest in job["error"]["message"], job["error"]
    assert len(srv.get("/api/v1/jobs/%d/epochs" % jid).json["epochs"]) >= 1  # what was recorded stays
    r = srv.request("HEAD", "/api/v1/jobs/%d/events" % jid)
    assert r.status == 200 and r.body == b""
    assert srv.stop() == 0


@test
def threads_per_worker(ctx):
    cpus = len(os.sched_getaffinity(0))
    for extra, threads, want in ((["--workers", "2"], None, max(1, cpus // 2)), (["--workers", "2"], "3", 3)):
        srv = Octetd(tempfile.mkdtemp(dir=ctx.root), *extra, threads=threads).start()
        line = "threads: 2 workers x %d CPU thread%s per job, %d CPUs available" % (want, "s"[:want > 1], cpus)
        assert line in srv.log(), srv.log()
        jid = srv.submit(mlp_spec(epochs=1, train=64, evals=32, name="threads"))
        assert srv.wait(jid)["status"] == "succeeded"
        assert re.search(r"threads: %d threads? per job" % want, srv.log()), srv.log()  # the worker applied it
        assert srv.stop() == 0
    for bad in ("-1", "x", "100000"):
        p = subprocess.run([os.path.join(BUILD, "octetd"), "--threads", bad], capture_output=True, timeout=30)
        assert p.returncode == 2 and b"--threads" in p.stderr, (bad, p.returncode, p.stderr)


SCHED_OTHER, SCHED_BATCH = 0, 3


def thread_priorities(pid):
    """{thread id: (name, nice, scheduling policy)} of a process, from /proc/PID/task/*/stat."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, int(fields[16]), int(fields[38]))  # fields 19 and 41 of stat: nice, policy
    return out


@test
def http_threads_yield_to_training(ctx):
    srv = ctx.srv  # started with the default --http-nice
    jid = srv.submit(long_spec(name="yields"))
    first_event(srv, jid, "step")
    for _ in range(200):  # fresh connections, until every thread of the pool has served one
        assert srv.get("/api/v1/jobs/%d" % jid).status == 200
        threads = thread_priorities(srv.proc.pid)
        if all(n != 0 for name, n, _ in threads.values() if name == "MHD-worker"):
            break
    http = [(n, policy) for name, n, policy in threads.values() if name == "MHD-worker"]
    others = [(name, n, policy) for name, n, policy in threads.values() if name != "MHD-worker"]
    # every pool thread that served: lower, and not preempting training when a request wakes it
    assert http and all(p == (15, SCHED_BATCH) for p in http), threads
    # main, workers, training threads: as they started
    assert len(others) >= 2 and all(n == 0 and policy == SCHED_OTHER for _, n, policy in others), threads
    assert "HTTP: 4 threads at nice +15, batch scheduling, beside training" in srv.log()
    assert srv.post("/api/v1/jobs/%d/cancel" % jid).status == 202
    assert srv.wait(jid, timeout=60)["status"] == "cancelled"
    for bad in ("-1", "20", "x"):
        p = subprocess.run([os.path.join(BUILD, "octetd"), "--http-nice", bad], capture_output=True, timeout=30)
        assert p.returncode == 2 and b"--http-nice must be 0..19" in p.stderr, (bad, p.returncode, p.stderr)
    equal = Octetd(tempfile.mkdtemp(dir=ctx.root), "--http-nice", "0").start()  # equal shares: left as they are
    for _ in range(20):
        assert equal.get("/api/v1/jobs").status == 200
    threads = thread_priorities(equal.proc.pid).values()
    assert any(name == "MHD-worker" for name, _, _ in threads), threads
    assert all(n == 0 and policy == SCHED_OTHER for _, n, policy in threads), threads
    assert "HTTP: 4 threads at nice +0 beside training" in equal.log()
    assert equal.stop() == 0


def raw_http(port, request, timeout=10):
    """Sends request bytes on a new connection; returns what came back before the server closed
    it (b"" when it closed without a word)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            out += d
            if b"\r\n\r\n" in out and b"Connection: close" not in out:
                break
        return out


@test
def connection_limits(ctx):
    # --max-connections-per-client: the fifth connection from one address is closed unanswered
    # while four are open; the others, and the server, go on
    srv = Octetd(tempfile.mkdtemp(dir=ctx.root), "--max-connections-per-client", "4")
    srv.start()
    try:
        held = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(4)]
        time.sleep(0.3)
        assert raw_http(srv.port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n") == b""
        for h in held:
            h.close()
        time.sleep(0.3)
        assert srv.get("/api/v1/health").status == 200
        assert "connection limit" in srv.log()
    finally:
        assert srv.stop() == 0
    for flag in ("--max-connections", "--max-connections-per-client"):
        for bad in ("0", "-1", "x", "1000001"):
            p = subprocess.run([os.path.join(BUILD, "octetd"), flag, bad], capture_output=True, timeout=30)
            assert p.returncode == 2 and flag.encode() in p.stderr, (flag, bad, p.returncode, p.stderr)


@test
def protocol_errors_answered_by_libmicrohttpd(ctx):
    # What libmicrohttpd answers itself, before octetd sees a request (its own HTML bodies: the
    # README lists these); each closes the connection and the server goes on.
    port = ctx.srv.port
    cases = (
        (b"GET /api/v1/" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n", b"431"),
        (b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", b"400"),
        (b"GET /api/v1/health HTTP/2.0\r\nHost: x\r\n\r\n", b"505"),
        (b"POST /api/v1/estimate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
    )
    for request, status in cases:
        out = raw_http(port, request)
        assert out.startswith(b"HTTP/1.1 " + status), (request[:60], out[:200])
    assert ctx.srv.get("/api/v1/health").status == 200


@test
def every_operation_was_exercised(ctx):
    want = set()
    for tpl, item in OPENAPI.doc["paths"].items():
        for m in item:
            if m != "parameters":
                want.add((tpl, m))
    missing = sorted(want - OPENAPI.seen)
    assert not missing, "operations no test called: %s" % missing


# ------------------------------------------------------------------ main


def main():
    missing = [p for p in (FASHION, FORTUNES) if not os.path.isdir(p)]
    if missing:
        print("SKIP: the training data is not installed: %s" % ", ".join(missing))
        return 77
    for prog in ("octetd", "octet-train"):
        if not os.access(os.path.join(BUILD, prog), os.X_OK):
            print("FAIL: %s is not built in %s" % (prog, BUILD))
            return 1
    ctx = Ctx()
    ctx.root = tempfile.mkdtemp(prefix="octet-api-")
    ctx.mlp_job = None
    failures = 0
    ran = 0
    try:
        ctx.srv = Octetd(os.path.join(ctx.root, "main"), "--max-body", "65536")
        os.makedirs(ctx.srv.root)
        ctx.srv.start()
        for t in TESTS:
            ran += 1
            t0 = time.time()
            try:
                t(ctx)
                print("PASS %s (%.1f s)" % (t.__name__, time.time() - t0), flush=True)
            except Exception:
                failures += 1
                print("FAIL %s (%.1f s)" % (t.__name__, time.time() - t0), flush=True)
                traceback.print_exc(file=sys.stdout)
                if t.__name__ == "openapi_document":
                    break
        if ctx.srv.alive():
            code = ctx.srv.stop()
            if code != 0:
                failures += 1
                print("FAIL the main octetd exited with %r on SIGTERM" % code)
    finally:
        if failures and os.environ.get("OCTET_KEEP_REF") != "1":
            for name in ("main",):
                p = os.path.join(ctx.root, name, "octetd.log")
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        print("---- %s (last lines)\n%s" % (p, "".join(f.readlines()[-40:])))
        if os.environ.get("OCTET_KEEP_REF") == "1":
            print("kept %s" % ctx.root)
        else:
            shutil.rmtree(ctx.root, ignore_errors=True)
    pct = 100 * (ran - failures) // max(ran, 1)
    print("%d%%: Checks: %d, Failures: %d, Errors: 0" % (pct, ran, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
