#!/usr/bin/env python3
"""crash.py: crash chaos for octetd. Kills it with SIGKILL at KILLS moments while CPU jobs train,
restarts it after each, and checks at the end what a kill must never cost.

The moments, in turn: a random instant (0.2-2 s after the restart), the instant a checkpoint
directory is being written (a checkpoint-<step>.tmp appears in the running job's directory), and
the instant a transaction reaches the database (the -wal file changes: a step, an epoch or a
status being committed). Jobs are small Fashion-MNIST MLPs (3 epochs, AdamW and 8-bit AdamW in
turn, seeds differ); more are submitted whenever fewer than two are unfinished. A job is not
killed a third time before it records an epoch: octetd fails such a job on purpose (three deaths
without progress look like a job that takes it down), which is tested elsewhere.

After every kill: PRAGMA integrity_check is "ok" and every epoch a client had read before the
kill (GET /jobs/{id}/epochs) is still there with the same figures. At the end: every job
succeeded; every epoch is in the store exactly once (1..3, and one epoch event each); every
interruption of a job that had a complete checkpoint resumed from it ("resuming from" in the
log; a job killed before its first checkpoint starts again, as it must); and every job's final
weights are byte-equal to an uninterrupted run of the same spec.

Usage: OCTET_BUILDDIR=BUILD OCTET_SRCDIR=SRC tests/chaos/crash.py [--kills 20] [--seed 1]
Exit status: 0 when every check held ("20 of 20 kills survived"), 1 naming the first that did
not. Needs only Python's standard library (and the built octetd)."""
import argparse
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import test_jobs as tj  # noqa: E402  (the API tests' octetd driver and specs)

EPOCHS = 3


def spec(i):
    s = tj.mlp_spec("adamw8bit" if i % 2 else "adamw", epochs=EPOCHS, train=10000, evals=300, hidden=(512, 256),
                    log_every=5, name="chaos %d" % i)
    s["training"]["seed"] = 100 + i
    return s


def wal_stamp(db):
    try:
        st = os.stat(db + "-wal")
        return (st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        return None


def running_job(db):
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT id FROM jobs WHERE status = 'running' ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None
    finally:
        con.close()


def complete_checkpoints(srv, jid):
    d = srv.checkpoint_dir(jid)
    try:
        return sorted(n for n in os.listdir(d) if n.startswith("checkpoint-") and not n.endswith(".tmp"))
    except FileNotFoundError:
        return []


def wait_killable(srv, limit=120.0):
    """Waits until a job runs that octetd may lose once more: fewer than two kills since its last
    recorded epoch. A third kill without progress fails the job on purpose (it looks like a job
    that takes octetd down every time it runs), which is not what this script tests."""
    end = time.time() + limit
    while time.time() < end:
        con = sqlite3.connect(srv.db)
        try:
            row = con.execute("SELECT id, crashes FROM jobs WHERE status = 'running' ORDER BY id LIMIT 1").fetchone()
        finally:
            con.close()
        if row and row[1] < 2:
            return
        time.sleep(0.02)


def wait_moment(srv, mode, rng, deadline=20.0):
    """Returns when the kill should happen: after a random delay, or at a checkpoint write or a
    database commit of the running job (or after `deadline` seconds, whatever is happening)."""
    if mode == "random":
        time.sleep(rng.uniform(0.2, 2.0))
        return "random instant"
    end = time.time() + deadline
    jid = None
    while jid is None and time.time() < end:
        jid = running_job(srv.db)
        time.sleep(0.01)
    if mode == "checkpoint":
        d = srv.checkpoint_dir(jid) if jid else None
        while time.time() < end:
            if d and os.path.isdir(d) and any(n.endswith(".tmp") for n in os.listdir(d)):
                return "checkpoint being written (job %d)" % jid
            time.sleep(0.0005)
        return "deadline (no checkpoint write seen)"
    stamp = wal_stamp(srv.db)
    while time.time() < end:
        now = wal_stamp(srv.db)
        if now != stamp:
            return "database commit (job %s)" % jid
        time.sleep(0.0005)
    return "deadline (no commit seen)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    root = tempfile.mkdtemp(prefix="octet-chaos-")
    srv = tj.Octetd(root).start()
    tj.OPENAPI = tj.Openapi(srv.get("/api/v1/openapi.json").json)  # replies are checked against it
    submitted, seen = [], {}  # seen[(job, epoch)] = (eval_loss, eval_accuracy) as a client read it
    interrupted = {}  # job -> list of "had a complete checkpoint" per kill
    modes = ["random", "checkpoint", "commit"]
    failures = []

    def top_up():
        unfinished = [j for j in submitted if srv.job(j)["status"] in ("queued", "running")]
        while len(unfinished) < 2:
            j = srv.submit(spec(len(submitted)))
            submitted.append(j)
            unfinished.append(j)

    for k in range(a.kills):
        top_up()
        mode = modes[k % 3]
        for j in submitted:
            for e in srv.get("/api/v1/jobs/%d/epochs" % j).json["epochs"]:
                seen[(j, e["epoch"])] = (e["eval_loss"], e["eval_accuracy"])
        wait_killable(srv)
        moment = wait_moment(srv, mode, rng)
        srv.stop(signal.SIGKILL)
        victim = running_job(srv.db)
        if victim is not None:
            interrupted.setdefault(victim, []).append(bool(complete_checkpoints(srv, victim)))
        con = sqlite3.connect(srv.db)
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        con.close()
        print("kill %2d: %-40s job %s; integrity_check %s" % (k + 1, moment, victim, ok), flush=True)
        if ok != "ok":
            failures.append("kill %d: integrity_check says %s" % (k + 1, ok))
        srv.start()
        for (j, ep), figures in seen.items():
            now = {e["epoch"]: (e["eval_loss"], e["eval_accuracy"])
                   for e in srv.get("/api/v1/jobs/%d/epochs" % j).json["epochs"]}
            if now.get(ep) != figures:
                failures.append("kill %d: job %d epoch %d was %r, now %r" % (k + 1, j, ep, figures, now.get(ep)))

    for j in submitted:
        job = srv.wait(j, timeout=600)
        if job["status"] != "succeeded":
            failures.append("job %d ended %s: %s" % (j, job["status"], job.get("error")))
            continue
        try:
            tj.assert_epochs_once(srv, j, EPOCHS)
        except AssertionError as e:
            failures.append("job %d: epochs not exactly once: %s" % (j, e))
    log = srv.log()
    resumes = log.count("resuming from")
    want = sum(sum(v) for v in interrupted.values())
    if resumes < want:
        failures.append("%d interruptions had a checkpoint but only %d runs resumed from one" % (want, resumes))
    same = 0
    for i, j in enumerate(submitted):
        if j not in interrupted:
            continue
        ref = srv.submit(dict(spec(i), name="uninterrupted %d" % i))
        if srv.wait(ref, timeout=600)["status"] != "succeeded":
            failures.append("the uninterrupted run of job %d failed" % j)
        elif srv.final_weights(j)[1] != srv.final_weights(ref)[1]:
            failures.append("job %d (interrupted %d times) ended with other weights than an uninterrupted run"
                            % (j, len(interrupted[j])))
        else:
            same += 1
    assert srv.stop() == 0
    print("%d kills; %d jobs, %d of them interrupted (%d interruptions, %d with a checkpoint to resume from, "
          "%d resumes logged); %d interrupted jobs ended with the weights of an uninterrupted run"
          % (a.kills, len(submitted), len(interrupted), sum(len(v) for v in interrupted.values()), want, resumes,
             same))
    if failures:
        for f in failures:
            print("FAIL:", f)
        print("log and data in", root)
        return 1
    print("%d of %d kills survived: integrity ok, no epoch lost or doubled, every job finished, "
          "resumed from its checkpoint, with the weights of an uninterrupted run" % (a.kills, a.kills))
    tj.shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
