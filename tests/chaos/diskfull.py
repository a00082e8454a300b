#!/usr/bin/env python3
"""diskfull.py: octetd on a full disk. The data directory (database included) is a 12 MiB tmpfs;
a small job trains and checkpoints; then an upload larger than the free space, and a job whose
checkpoint (weights and AdamW's state, about 22 MB) cannot fit. Checks: the upload gets 507 with
the bytes it needed, the directory and what is free; the big job fails with an error naming its
checkpoint directory, the bytes needed and free; the database passes PRAGMA integrity_check;
the earlier job's checkpoint is byte-for-byte what it was; octetd keeps answering, and a small
job submitted afterwards succeeds.

Usage: OCTET_BUILDDIR=BUILD OCTET_SRCDIR=SRC tests/chaos/diskfull.py
Exit status: 0 when every check held; 1 naming the first that did not; 77 (SKIP) when a tmpfs
cannot be mounted here (it needs root)."""
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import test_jobs as tj  # noqa: E402

SIZE = "12m"


def tree_hash(d):
    h = hashlib.sha256()
    for base, _, files in sorted(os.walk(d)):
        for f in sorted(files):
            with open(os.path.join(base, f), "rb") as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


def main():
    root = tempfile.mkdtemp(prefix="octet-diskfull-")
    data = os.path.join(root, "data")
    os.makedirs(data)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + SIZE, "tmpfs", data], capture_output=True).returncode:
        print("SKIP: cannot mount a tmpfs at %s (needs root)" % data)
        return 77
    srv = None
    try:
        db = os.path.join(data, "octet.db")
        srv = tj.Octetd(root, "--db", db)
        srv.db = db
        srv.start()
        tj.OPENAPI = tj.Openapi(srv.get("/api/v1/openapi.json").json)
        small = srv.submit(tj.mlp_spec(epochs=1, train=500, evals=100, hidden=(32,), name="small"))
        assert srv.wait(small)["status"] == "succeeded", srv.job(small)
        before = tree_hash(srv.checkpoint_dir(small))

        line = b'{"text": "%s", "label": 1}\n' % (b"x" * 200)
        body = line * (16 * 1024 * 1024 // len(line))  # 16 MiB: more than the tmpfs holds
        r = srv.request("POST", "/api/v1/datasets?name=too-big", body=body, ctype="application/x-ndjson", check=False)
        msg = r.json["error"]["message"] if r.json else r.body[:200]
        assert r.status == 507, (r.status, msg)
        assert str(len(body)) in msg and "datasets" in msg and "free" in msg, msg
        print("upload: 507 %s" % msg)

        big = srv.submit(tj.mlp_spec(epochs=1, train=640, evals=100, hidden=(1024, 1024), name="big"))
        job = srv.wait(big)
        err = job.get("error") or {}
        assert job["status"] == "failed", job
        assert "checkpoints/%d" % big in err.get("message", "") and "bytes" in err["message"] \
            and "free" in err["message"], err
        print("big job: failed, %s: %s" % (err.get("field"), err["message"]))

        con = sqlite3.connect(db)
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
        assert ok == "ok", ok
        assert tree_hash(srv.checkpoint_dir(small)) == before, "the earlier checkpoint changed"
        assert srv.get("/api/v1/health").status == 200
        again = srv.submit(tj.mlp_spec(epochs=1, train=500, evals=100, hidden=(32,), name="after"))
        assert srv.wait(again)["status"] == "succeeded", srv.job(again)
        assert srv.stop() == 0
        srv = None
        print("disk full: the upload and the job failed naming the path and the bytes; the database and "
              "the earlier checkpoint intact; octetd kept serving and ran the next job")
        return 0
    except AssertionError as e:
        print("FAIL:", e)
        return 1
    finally:
        if srv is not None and srv.alive():
            srv.stop()
        subprocess.run(["umount", data], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
