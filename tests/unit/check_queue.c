/* check_queue.c: the store's job queue and history on a real SQLite file with the real schema:
 * four threads, each with its own connection, claim 60 jobs and no job is claimed twice or
 * lost; idempotency keys replay or refuse; a deleted newest job's id is not handed out again;
 * start-up recovery requeues only this host's running jobs and fails one after too many
 * crashes; every status change, step, epoch and memory figure appends one event, numbered
 * 1, 2, 3, ...; an epoch reported again is not recorded twice; cancel and delete answer by
 * status; the commit generation grows with each write of any connection of the process, once
 * another connection sees it, and not with reads; the WAL is still checkpointed. */
#include "config.h"
#include "server_suites.h"
#include "store/store.h"
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct qfix {
    char dir[256], db[512], schema[512];
    store *st;
} qfix;

static void qfix_open(qfix *f)
{
    ck_assert_int_eq(test_tmpdir(f->dir, sizeof f->dir, "queue"), 0);
    snprintf(f->db, sizeof f->db, "%s/octet.db", f->dir);
    snprintf(f->schema, sizeof f->schema, "%s/schema", test_srcdir());
    octet_err e;
    ck_assert_msg(store_open(f->db, f->schema, &f->st, &e) == OCTET_OK, "%s", e.message);
}

static void qfix_close(qfix *f)
{
    store_close(f->st);
    test_rmtree(f->dir);
}

static int64_t submit(store *st, const char *key, const char *request)
{
    store_new_job j = {.name = "t", .spec = "{\"name\": \"t\"}", .arch = "mlp", .optimizer = "adamw",
                       .dataset = "fashion-mnist", .idempotency_key = key, .request = request};
    int64_t id = 0;
    int replayed = 0;
    octet_err e;
    ck_assert_msg(store_job_insert(st, &j, &id, &replayed, &e) == OCTET_OK, "%s", e.message);
    ck_assert_int_eq(replayed, 0);
    return id;
}

typedef struct claimer {
    const char *db;
    int64_t got[64];
    int n;
} claimer;

static void *claim_all(void *arg)
{
    claimer *c = arg;
    store *st = NULL;
    octet_err e;
    if (store_connect(c->db, &st, &e) != OCTET_OK)
        return NULL;
    for (;;) {
        store_claim cl;
        int found = 0;
        if (store_job_claim(st, "host", "cpu", &cl, &found, &e) != OCTET_OK || !found)
            break;
        if (c->n < 64)
            c->got[c->n++] = cl.id;
        store_claim_free(&cl);
    }
    store_close(st);
    return NULL;
}

START_TEST(test_concurrent_claims)
{
    qfix f;
    qfix_open(&f);
    enum { JOBS = 60, THREADS = 4 };
    for (int i = 0; i < JOBS; i++)
        submit(f.st, NULL, NULL);
    claimer c[THREADS];
    pthread_t th[THREADS];
    memset(c, 0, sizeof c);
    for (int t = 0; t < THREADS; t++) {
        c[t].db = f.db;
        ck_assert_int_eq(pthread_create(&th[t], NULL, claim_all, &c[t]), 0);
    }
    int seen[JOBS + 1] = {0}, total = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        for (int i = 0; i < c[t].n; i++) {
            ck_assert_int_ge(c[t].got[i], 1);
            ck_assert_int_le(c[t].got[i], JOBS);
            ck_assert_msg(!seen[c[t].got[i]]++, "job %lld claimed twice", (long long)c[t].got[i]);
            total++;
        }
    }
    ck_assert_int_eq(total, JOBS);
    int64_t counts[5];
    octet_err e;
    ck_assert_int_eq(store_job_counts(f.st, counts, &e), OCTET_OK);
    ck_assert_int_eq(counts[0], 0);     /* queued */
    ck_assert_int_eq(counts[1], JOBS);  /* running */
    qfix_close(&f);
}
END_TEST

START_TEST(test_claim_order_and_attempts)
{
    qfix f;
    qfix_open(&f);
    int64_t a = submit(f.st, NULL, NULL), b = submit(f.st, NULL, NULL);
    store_claim cl;
    int found = 0;
    octet_err e;
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    ck_assert_int_eq(cl.id, a);
    ck_assert_int_eq(cl.attempt, 1);
    ck_assert_str_eq(cl.spec, "{\"name\": \"t\"}");
    store_claim_free(&cl);
    /* a graceful stop puts it back: the next claim takes it again first, attempt 2 */
    ck_assert_int_eq(store_job_finish(f.st, a, STORE_QUEUED, NULL, NULL, NULL, &e), OCTET_OK);
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    ck_assert_int_eq(cl.id, a);
    ck_assert_int_eq(cl.attempt, 2);
    store_claim_free(&cl);
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    ck_assert_int_eq(cl.id, b);
    store_claim_free(&cl);
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    ck_assert_int_eq(found, 0);
    qfix_close(&f);
}
END_TEST

START_TEST(test_idempotency_and_ids)
{
    qfix f;
    qfix_open(&f);
    int64_t a = submit(f.st, "key-1", "{\"a\":1}");
    store_new_job j = {.name = "t", .spec = "{}", .idempotency_key = "key-1", .request = "{\"a\":1}"};
    int64_t id = 0;
    int replayed = 0;
    octet_err e;
    ck_assert_int_eq(store_job_insert(f.st, &j, &id, &replayed, &e), OCTET_OK);
    ck_assert_int_eq(replayed, 1);
    ck_assert_int_eq(id, a);
    j.request = "{\"a\":2}";
    ck_assert_int_eq(store_job_insert(f.st, &j, &id, &replayed, &e), OCTET_ERR_MISMATCH);
    ck_assert_str_eq(e.field, "Idempotency-Key");
    /* the newest job deleted: its id is not handed out again */
    int64_t b = submit(f.st, NULL, NULL);
    int outcome = 0;
    ck_assert_int_eq(store_job_cancel(f.st, b, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_CANCEL_DONE);
    ck_assert_int_eq(store_job_delete(f.st, b, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_DELETE_DONE);
    int64_t c = submit(f.st, NULL, NULL);
    ck_assert_int_gt(c, b);
    qfix_close(&f);
}
END_TEST

START_TEST(test_recover)
{
    qfix f;
    qfix_open(&f);
    int64_t mine = submit(f.st, NULL, NULL), theirs = submit(f.st, NULL, NULL);
    store_claim cl;
    int found, requeued, failed;
    octet_err e;
    ck_assert_int_eq(store_job_claim(f.st, "here", "cpu", &cl, &found, &e), OCTET_OK);
    store_claim_free(&cl);
    ck_assert_int_eq(store_job_claim(f.st, "elsewhere", "cpu", &cl, &found, &e), OCTET_OK);
    store_claim_free(&cl);
    for (int crash = 1; crash <= 3; crash++) {
        ck_assert_int_eq(store_jobs_recover(f.st, "here", 3, &requeued, &failed, &e), OCTET_OK);
        char status[16];
        ck_assert_int_eq(store_job_state(f.st, mine, status, NULL, NULL, &e), OCTET_OK);
        if (crash < 3) {
            ck_assert_int_eq(requeued, 1);
            ck_assert_str_eq(status, STORE_QUEUED);
            ck_assert_int_eq(store_job_claim(f.st, "here", "cpu", &cl, &found, &e), OCTET_OK);
            ck_assert_int_eq(cl.id, mine);
            ck_assert_int_eq(cl.attempt, crash + 1);
            store_claim_free(&cl);
        } else {
            ck_assert_int_eq(failed, 1);
            ck_assert_str_eq(status, STORE_FAILED);
        }
        ck_assert_int_eq(store_job_state(f.st, theirs, status, NULL, NULL, &e), OCTET_OK);
        ck_assert_str_eq(status, STORE_RUNNING); /* another host's job is left alone */
    }
    json_t *job = NULL;
    ck_assert_int_eq(store_job_get(f.st, mine, &job, NULL, &e), OCTET_OK);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "error"), "code")), "crashed");
    json_decref(job);

    /* a job that records an epoch between its crashes is interrupted, not crash-looping: its
     * count starts again, and any number of crashes with progress in between requeue it */
    int64_t busy = submit(f.st, NULL, NULL);
    for (int crash = 1; crash <= 6; crash++) {
        ck_assert_int_eq(store_job_claim(f.st, "here", "cpu", &cl, &found, &e), OCTET_OK);
        ck_assert_int_eq(cl.id, busy);
        store_claim_free(&cl);
        json_t *ep = json_pack("{si si sf}", "epoch", crash, "step", crash * 10, "eval_loss", 1.0 / crash);
        int added = 0;
        ck_assert_int_eq(store_epoch_add(f.st, busy, ep, &added, &e), OCTET_OK);
        ck_assert_int_eq(added, 1);
        json_decref(ep);
        ck_assert_int_eq(store_jobs_recover(f.st, "here", 3, &requeued, &failed, &e), OCTET_OK);
        ck_assert_int_eq(requeued, 1);
        ck_assert_int_eq(failed, 0);
    }
    qfix_close(&f);
}
END_TEST

START_TEST(test_events_in_order)
{
    qfix f;
    qfix_open(&f);
    int64_t id = submit(f.st, NULL, NULL);
    store_claim cl;
    int found = 0, added = 0;
    octet_err e;
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    store_claim_free(&cl);
    json_t *step = json_pack("{sI sf sf sf sf sf}", "step", (json_int_t)5, "epoch", 0.5, "loss", 1.5, "learning_rate",
                             1e-3, "grad_norm", 2.0, "elapsed_s", 0.1);
    ck_assert_int_eq(store_step_add(f.st, id, step, 3.0, &e), OCTET_OK);
    json_t *epoch = json_pack("{si sI sf sf sf sf}", "epoch", 1, "step", (json_int_t)10, "train_loss", 1.0,
                              "eval_loss", 0.9, "eval_accuracy", 0.5, "eval_f1", 0.4);
    ck_assert_int_eq(store_epoch_add(f.st, id, epoch, &added, &e), OCTET_OK);
    ck_assert_int_eq(added, 1);
    ck_assert_int_eq(store_epoch_add(f.st, id, epoch, &added, &e), OCTET_OK); /* replayed on resume */
    ck_assert_int_eq(added, 0);
    ck_assert_int_eq(store_job_finish(f.st, id, STORE_SUCCEEDED, NULL, NULL, NULL, &e), OCTET_OK);
    store_event ev[8];
    int n = 0;
    ck_assert_int_eq(store_job_events(f.st, id, 0, ev, 8, &n, &e), OCTET_OK);
    static const char *types[] = {"status", "status", "step", "epoch", "status"};
    ck_assert_int_eq(n, 5);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(ev[i].seq, i + 1);
        ck_assert_str_eq(ev[i].type, types[i]);
    }
    ck_assert_ptr_nonnull(strstr(ev[4].data, "\"succeeded\""));
    for (int i = 0; i < n; i++)
        free(ev[i].data);
    ck_assert_int_eq(store_job_events(f.st, id, 3, ev, 8, &n, &e), OCTET_OK); /* Last-Event-ID 3 */
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ev[0].seq, 4);
    for (int i = 0; i < n; i++)
        free(ev[i].data);
    json_t *list = NULL;
    ck_assert_int_eq(store_job_epochs(f.st, id, &list, &e), OCTET_OK);
    ck_assert_uint_eq(json_array_size(list), 1);
    json_decref(list);
    int outcome = 0;
    ck_assert_int_eq(store_job_cancel(f.st, id, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_CANCEL_FINISHED);
    json_decref(step);
    json_decref(epoch);
    qfix_close(&f);
}
END_TEST

START_TEST(test_cancel_and_delete_by_status)
{
    qfix f;
    qfix_open(&f);
    int64_t run = submit(f.st, NULL, NULL), queued = submit(f.st, NULL, NULL);
    store_claim cl;
    int found = 0, outcome = 0, requested = 0;
    octet_err e;
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    store_claim_free(&cl);
    ck_assert_int_eq(store_job_delete(f.st, run, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_DELETE_ACTIVE);
    ck_assert_int_eq(store_job_delete(f.st, queued, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_DELETE_ACTIVE);
    ck_assert_int_eq(store_job_cancel(f.st, run, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_CANCEL_REQUESTED);
    char status[16];
    ck_assert_int_eq(store_job_state(f.st, run, status, &requested, NULL, &e), OCTET_OK);
    ck_assert_str_eq(status, STORE_RUNNING);
    ck_assert_int_eq(requested, 1);
    ck_assert_int_eq(store_job_cancel(f.st, queued, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_CANCEL_DONE);
    ck_assert_int_eq(store_job_cancel(f.st, 999, &outcome, &e), OCTET_OK);
    ck_assert_int_eq(outcome, STORE_NO_JOB);
    qfix_close(&f);
}
END_TEST

/* Every change GET /jobs/{id} would show changes the job's version (its cached document is
 * served again only while the version stands): claim, info, progress (no event), a cancel
 * request (no event), the end. */
START_TEST(test_version_changes)
{
    qfix f;
    qfix_open(&f);
    int64_t id = submit(f.st, NULL, NULL), rev = 0, last = 0, prev_rev = -1, prev_last = -1;
    int found = 0, outcome = 0;
    octet_err e;
    store_claim cl;
#define CHANGED(what)                                                                                     \
    do {                                                                                                  \
        ck_assert_int_eq(store_job_version(f.st, id, &rev, &last, &found, &e), OCTET_OK);                 \
        ck_assert_msg(found && (rev != prev_rev || last != prev_last), "%s left the version as it was", what); \
        prev_rev = rev;                                                                                   \
        prev_last = last;                                                                                 \
    } while (0)
    CHANGED("submitting");
    ck_assert_int_eq(store_job_claim(f.st, "h", "cpu", &cl, &found, &e), OCTET_OK);
    store_claim_free(&cl);
    CHANGED("claiming");
    json_t *info = json_pack("{si}", "epochs", 1);
    ck_assert_int_eq(store_job_set_info(f.st, id, info, 10, "cpu", &e), OCTET_OK);
    json_decref(info);
    CHANGED("the run's info");
    ck_assert_int_eq(store_job_progress(f.st, id, 3, 1.5, &e), OCTET_OK);
    CHANGED("progress");
    ck_assert_int_eq(store_job_cancel(f.st, id, &outcome, &e), OCTET_OK);
    CHANGED("a cancel request");
    ck_assert_int_eq(store_job_finish(f.st, id, STORE_CANCELLED, NULL, NULL, NULL, &e), OCTET_OK);
    CHANGED("the end");
#undef CHANGED
    ck_assert_int_eq(store_job_version(f.st, 999, &rev, &last, &found, &e), OCTET_OK);
    ck_assert_int_eq(found, 0);
    qfix_close(&f);
}
END_TEST

/* store_generation is what lets GET /jobs/{id} skip the database: a write it missed would serve
 * a stale job. Each write through a second connection must raise it by the time the write
 * returns, with the write visible to the first connection; reads must leave it alone. */
START_TEST(test_generation_counts_commits)
{
    qfix f;
    qfix_open(&f);
    store *writer = NULL;
    octet_err e;
    ck_assert_int_eq(store_connect(f.db, &writer, &e), OCTET_OK);
    int64_t id = submit(writer, NULL, NULL), rev = 0, last = 0, seen_rev = 0, seen_last = 0;
    int found = 0;
    ck_assert_int_eq(store_job_version(f.st, id, &seen_rev, &seen_last, &found, &e), OCTET_OK);
    uint64_t g = store_generation();
    ck_assert_uint_gt(g, 0);
    ck_assert_int_eq(store_job_version(f.st, id, &rev, &last, &found, &e), OCTET_OK);
    ck_assert_uint_eq(store_generation(), g); /* a read counts nothing */
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(store_job_progress(writer, id, i, 0.5 * i, &e), OCTET_OK);
        ck_assert_uint_gt(store_generation(), g);
        g = store_generation();
        ck_assert_int_eq(store_job_version(f.st, id, &rev, &last, &found, &e), OCTET_OK);
        ck_assert_msg(rev != seen_rev || last != seen_last, "write %d counted before the reader could see it", i);
        seen_rev = rev, seen_last = last;
    }
    store_close(writer);
    qfix_close(&f);
}
END_TEST

/* The generation's WAL hook replaces SQLite's automatic checkpoint; it must checkpoint in its
 * place, or the -wal file grows with every write the server ever makes. About 13 MB written
 * in 200 commits must leave it near the 1000-page checkpoint mark, far below what was written. */
START_TEST(test_wal_still_checkpointed)
{
    qfix f;
    qfix_open(&f);
    enum { COMMITS = 200, SPEC_BYTES = 64 << 10 };
    char *spec = malloc(SPEC_BYTES + 16);
    ck_assert_ptr_nonnull(spec);
    memset(spec, ' ', SPEC_BYTES + 16);
    memcpy(spec, "{\"pad\": \"", 9);
    memcpy(spec + SPEC_BYTES, "\"}", 3);
    for (int i = 0; i < COMMITS; i++) {
        store_new_job j = {.name = "t", .spec = spec, .arch = "mlp", .optimizer = "adamw", .dataset = "d"};
        int64_t id = 0;
        int replayed = 0;
        octet_err e;
        ck_assert_msg(store_job_insert(f.st, &j, &id, &replayed, &e) == OCTET_OK, "%s", e.message);
    }
    free(spec);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f.db);
    struct stat sb;
    ck_assert_int_eq(stat(wal, &sb), 0);
    ck_assert_msg(sb.st_size < 8 << 20, "the WAL is %lld bytes after %d MB of writes: never checkpointed",
                  (long long)sb.st_size, COMMITS * SPEC_BYTES >> 20);
    qfix_close(&f);
}
END_TEST

Suite *suite_queue(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("jobs");
    tcase_add_test(tc, test_concurrent_claims);
    tcase_add_test(tc, test_claim_order_and_attempts);
    tcase_add_test(tc, test_idempotency_and_ids);
    tcase_add_test(tc, test_recover);
    tcase_add_test(tc, test_events_in_order);
    tcase_add_test(tc, test_cancel_and_delete_by_status);
    tcase_add_test(tc, test_version_changes);
    tcase_add_test(tc, test_generation_counts_commits);
    tcase_add_test(tc, test_wal_still_checkpointed);
    suite_add_tcase(s, tc);
    return s;
}
