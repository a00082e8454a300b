/* run_api.c: the API tests: start the real ./octetd on 127.0.0.1 with --port 0 and a fresh
 * SQLite file in a temporary directory, read the chosen port from its stdout, drive it over
 * HTTP with a raw-socket client, then stop it with SIGTERM and check that it exited cleanly and
 * left a database at the newest schema version (SCHEMA_VERSION, schema/ holds that many files).
 *
 * Two suites run in order: "api" while the server is up (each test forked, as Check does by
 * default), and "shutdown" after it has stopped. These tests cover the HTTP layer's behaviour
 * on raw requests (lying lengths, chunked bodies, traversal); the job service is driven by
 * tests/api/test_jobs.py. Exit 0 when everything passes, 1 otherwise, 77 (skip) never. */
#include "config.h"
#include "http_client.h"
#include "../unit/testlib.h"

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define SCHEMA_VERSION 3

static unsigned g_port;
static pid_t g_pid = -1;
static char g_tmp[256];
static char g_db[512];
static int g_exit_status = -1;   /* octetd's wait status after SIGTERM */

/* ------------------------------------------------------------------ the server */

/* Reads octetd's stdout until the "listening on http://127.0.0.1:PORT/" line (20 s). */
static unsigned read_port(int fd)
{
    char buf[512];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0)
            return 0;
        ssize_t got = read(fd, buf + n, sizeof buf - 1 - n);
        if (got <= 0)
            return 0;
        n += (size_t)got;
        buf[n] = '\0';
        char *nl = strchr(buf, '\n');
        if (nl) {
            *nl = '\0';
            char *colon = strrchr(buf, ':');
            printf("octetd said: %s\n", buf);
            return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
        }
    }
    return 0;
}

/* Starts octetd; returns 0 with g_pid and g_port set, -1 on failure. */
static int start_server(void)
{
    const char *src = test_srcdir(), *build = test_builddir();
    char exe[512], web[512], schema[512], data[512];
    snprintf(exe, sizeof exe, "%s/octetd", build);
    snprintf(web, sizeof web, "%s/web", src);
    snprintf(schema, sizeof schema, "%s/schema", src);
    snprintf(data, sizeof data, "%s/data", g_tmp);
    snprintf(g_db, sizeof g_db, "%s/db/octet.db", g_tmp);   /* db/ does not exist: octetd makes it */
    int out[2];
    if (pipe(out))
        return -1;
    fflush(NULL);
    g_pid = fork();
    if (g_pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
        dup2(out[1], STDOUT_FILENO);
        close(out[0]);
        close(out[1]);
        execl(exe, "octetd", "--listen", "127.0.0.1", "--port", "0", "--db", g_db, "--data-dir", data, "--web-dir",
              web, "--schema-dir", schema, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(out[1]);
    if (g_pid < 0)
        return -1;
    g_port = read_port(out[0]);
    close(out[0]);
    return g_port ? 0 : -1;
}

/* SIGTERM, then up to 10 s for it to exit (SIGKILL after that). */
static void stop_server(void)
{
    if (g_pid <= 0)
        return;
    kill(g_pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(g_pid, &g_exit_status, WNOHANG) == g_pid)
            return;
        usleep(10000);
    }
    kill(g_pid, SIGKILL);
    waitpid(g_pid, NULL, 0);
    g_exit_status = -1;
}

/* ------------------------------------------------------------------ helpers */

/* GETs (or METHODs) a path and parses the JSON body; the response stays in *r. */
static json_t *request_json(const char *method, const char *path, hc_response *r)
{
    ck_assert_int_eq(hc_request(g_port, method, path, NULL, NULL, r), 0);
    json_error_t err;
    json_t *j = json_loads(r->body, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(j != NULL, "%s %s: body is not JSON (%s): %.200s", method, path, err.text, r->body);
    return j;
}

/* Checks the error shape {"error": {"code": code, "message": "...", "field": ...}}. */
static void assert_error(const hc_response *r, json_t *j, const char *code)
{
    char ct[128];
    ck_assert_ptr_nonnull(hc_header(r, "Content-Type", ct, sizeof ct));
    ck_assert_str_eq(ct, "application/json");
    json_t *e = json_object_get(j, "error");
    ck_assert_msg(json_is_object(e), "no error object: %s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    ck_assert(json_is_string(json_object_get(e, "message")));
    ck_assert(json_object_get(e, "field") != NULL);
}

static json_t *find_optimizer(json_t *catalog, const char *name)
{
    json_t *list = json_object_get(catalog, "optimizers"), *o;
    size_t i;
    json_array_foreach(list, i, o)
        if (!strcmp(json_string_value(json_object_get(o, "name")), name))
            return o;
    ck_abort_msg("optimizer %s missing from the catalog", name);
    return NULL;
}

static json_t *param_default(json_t *opt, const char *name)
{
    json_t *params = json_object_get(opt, "params"), *p;
    size_t i;
    json_array_foreach(params, i, p)
        if (!strcmp(json_string_value(json_object_get(p, "name")), name))
            return json_object_get(p, "default");
    ck_abort_msg("parameter %s missing", name);
    return NULL;
}

static double num(json_t *j)
{
    ck_assert_msg(json_is_number(j), "not a number");
    return json_number_value(j);
}

#define ck_assert_close(a, b) ck_assert_msg(fabs((a) - (b)) <= 1e-12 * fabs(b) + 1e-300, "%.17g != %.17g", (a), (b))

/* ------------------------------------------------------------------ tests while it runs */

START_TEST(test_health)
{
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/health", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(j, "version")), PACKAGE_VERSION);
    json_t *db = json_object_get(j, "db");
    ck_assert(json_is_true(json_object_get(db, "ok")));
    ck_assert_int_eq(json_integer_value(json_object_get(db, "schema_version")), SCHEMA_VERSION);
    ck_assert(json_is_boolean(json_object_get(json_object_get(j, "device"), "cuda")));
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_head)
{
    hc_response r;
    ck_assert_int_eq(hc_request(g_port, "HEAD", "/api/v1/health", NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    hc_free(&r);
}
END_TEST

START_TEST(test_optimizer_names)
{
    static const char *names[] = {"adamw", "adam8bit", "adamw8bit", "adafactor", "sgd"};
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/optimizers", &r);
    ck_assert_int_eq(r.status, 200);
    json_t *list = json_object_get(j, "optimizers");
    ck_assert_uint_eq(json_array_size(list), 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, i), "name")), names[i]);
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_optimizer_defaults)
{
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/optimizers", &r);
    json_t *w8 = find_optimizer(j, "adamw8bit"), *a8 = find_optimizer(j, "adam8bit");
    json_t *aw = find_optimizer(j, "adamw"), *af = find_optimizer(j, "adafactor"), *sgd = find_optimizer(j, "sgd");
    ck_assert_close(num(param_default(w8, "weight_decay")), 0.01);
    ck_assert_close(num(param_default(a8, "weight_decay")), 0.0);
    ck_assert_close(num(param_default(aw, "weight_decay")), 0.01);
    json_t *opts[] = {aw, a8, w8};
    for (int i = 0; i < 3; i++) {
        ck_assert_close(num(param_default(opts[i], "lr")), 1e-3);
        ck_assert_close(num(param_default(opts[i], "eps")), 1e-8);
        json_t *betas = param_default(opts[i], "betas");
        ck_assert_uint_eq(json_array_size(betas), 2);
        ck_assert_close(num(json_array_get(betas, 0)), 0.9);
        ck_assert_close(num(json_array_get(betas, 1)), 0.999);
    }
    ck_assert_int_eq(json_integer_value(param_default(w8, "block_size")), 256);
    ck_assert_int_eq(json_integer_value(param_default(a8, "min_8bit_size")), 4096);
    ck_assert(json_is_null(param_default(af, "lr")));
    ck_assert(json_is_true(param_default(af, "relative_step")));
    ck_assert(json_is_true(param_default(af, "scale_parameter")));
    ck_assert_close(num(json_array_get(param_default(af, "eps"), 0)), 1e-30);
    ck_assert_close(num(json_array_get(param_default(af, "eps"), 1)), 1e-3);
    ck_assert_close(num(param_default(sgd, "momentum")), 0.0);
    ck_assert(json_is_false(param_default(sgd, "nesterov")));
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_optimizer_ranges)
{
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/optimizers", &r);
    json_t *params = json_object_get(find_optimizer(j, "adamw"), "params"), *p;
    size_t i;
    int seen = 0;
    json_array_foreach(params, i, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (!strcmp(name, "betas")) {
            ck_assert_str_eq(json_string_value(json_object_get(p, "range")), "[0, 1)");
            ck_assert(json_is_true(json_object_get(p, "exclusive_max")));
            seen++;
        } else if (!strcmp(name, "lr")) {
            ck_assert_str_eq(json_string_value(json_object_get(p, "range")), "(0, inf)");
            ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "number");
            seen++;
        }
    }
    ck_assert_int_eq(seen, 2);
    json_decref(j);
    hc_free(&r);
}
END_TEST

static double state_bpp(json_t *catalog, const char *name)
{
    return num(json_object_get(json_object_get(find_optimizer(catalog, name), "state"), "bytes_per_param"));
}

START_TEST(test_optimizer_state_bytes)
{
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/optimizers", &r);
    ck_assert_close(state_bpp(j, "adamw"), 8.0);
    ck_assert_close(state_bpp(j, "adam8bit"), 2.0 + 8.0 / 256.0);
    ck_assert_close(state_bpp(j, "adamw8bit"), 2.0 + 8.0 / 256.0);
    ck_assert_close(state_bpp(j, "sgd"), 4.0);
    json_t *af = json_object_get(find_optimizer(j, "adafactor"), "state");
    ck_assert(json_is_true(json_object_get(af, "factored")));
    ck_assert_close(num(json_object_get(af, "bytes_per_param")), 4.0 * (1024 + 1024) / (1024.0 * 1024.0));
    /* a 1024-element vector is under min_8bit_size: fp32 states, 8 B/param */
    json_t *ex = json_object_get(json_object_get(find_optimizer(j, "adam8bit"), "state"), "examples");
    ck_assert_close(num(json_object_get(json_array_get(ex, 1), "bytes_per_param")), 8.0);
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_unknown_route)
{
    hc_response r;
    json_t *j = request_json("GET", "/api/v1/no-such-thing", &r);
    ck_assert_int_eq(r.status, 404);
    assert_error(&r, j, "not_found");
    ck_assert(json_is_null(json_object_get(json_object_get(j, "error"), "field")));
    json_decref(j);
    hc_free(&r);
    j = request_json("GET", "/api/v1/optimizers/adamw/extra", &r);
    ck_assert_int_eq(r.status, 404);
    json_decref(j);
    hc_free(&r);
    j = request_json("GET", "/no-such-page.html", &r);
    ck_assert_int_eq(r.status, 404);
    assert_error(&r, j, "not_found");
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_wrong_method)
{
    static const char *cases[][2] = {{"POST", "/api/v1/health"}, {"DELETE", "/api/v1/optimizers"}, {"PUT", "/"}};
    for (int i = 0; i < 3; i++) {
        hc_response r;
        json_t *j = request_json(cases[i][0], cases[i][1], &r);
        ck_assert_msg(r.status == 405, "%s %s: %d", cases[i][0], cases[i][1], r.status);
        assert_error(&r, j, "method_not_allowed");
        char allow[64];
        ck_assert_ptr_nonnull(hc_header(&r, "Allow", allow, sizeof allow));
        ck_assert_str_eq(allow, "GET, HEAD");
        json_decref(j);
        hc_free(&r);
    }
}
END_TEST

START_TEST(test_body_too_large)
{
    /* Announced: refused from the headers, before any body is sent. */
    char req[256];
    int n = snprintf(req, sizeof req,
                     "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n",
                     2 << 20);
    hc_response r;
    ck_assert_int_eq(hc_raw(g_port, req, (size_t)n, &r), 0);
    ck_assert_int_eq(r.status, 413);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_error(&r, j, "payload_too_large");
    json_decref(j);
    hc_free(&r);
}
END_TEST

START_TEST(test_chunked_body_too_large)
{
    /* Not announced: 1.5 MiB in chunks, counted as it arrives. */
    const size_t chunk = 64 * 1024, chunks = 24;
    const char *head = "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n";
    size_t cap = strlen(head) + chunks * (chunk + 16) + 8, n = 0;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    n += (size_t)snprintf(req, cap, "%s", head);
    for (size_t i = 0; i < chunks; i++) {
        n += (size_t)snprintf(req + n, cap - n, "%zx\r\n", chunk);
        memset(req + n, 'x', chunk);
        n += chunk;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
    hc_response r;
    ck_assert_int_eq(hc_raw(g_port, req, n, &r), 0);
    ck_assert_int_eq(r.status, 413);
    free(req);
    hc_free(&r);
}
END_TEST

START_TEST(test_static_index)
{
    static const char *paths[] = {"/", "/index.html"};
    for (int i = 0; i < 2; i++) {
        hc_response r;
        ck_assert_int_eq(hc_request(g_port, "GET", paths[i], NULL, NULL, &r), 0);
        ck_assert_int_eq(r.status, 200);
        char ct[128];
        ck_assert_ptr_nonnull(hc_header(&r, "Content-Type", ct, sizeof ct));
        ck_assert_msg(!strncmp(ct, "text/html", 9), "Content-Type %s", ct);
        ck_assert_ptr_nonnull(strstr(r.body, "/js/app.js"));
        hc_free(&r);
    }
    hc_response r; /* the page's modules, as JavaScript */
    ck_assert_int_eq(hc_request(g_port, "GET", "/js/app.js", NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    char ct[128];
    ck_assert_ptr_nonnull(hc_header(&r, "Content-Type", ct, sizeof ct));
    ck_assert_msg(!strncmp(ct, "text/javascript", 15), "Content-Type %s", ct);
    hc_free(&r);
}
END_TEST

START_TEST(test_path_traversal)
{
    static const char *targets[] = {
        "/../configure.ac",          "/%2e%2e/configure.ac",      "/%2E%2E%2Fconfigure.ac", "/..%2fconfigure.ac",
        "/web/../../configure.ac",   "/./../configure.ac",        "//etc/passwd",           "/..\\configure.ac",
        "/%2e%2e/%2e%2e/etc/passwd", "/.git/config",
        /* and out of the JavaScript directory served at /javascript/ */
        "/javascript/../configure.ac", "/javascript/%2e%2e/%2e%2e/etc/passwd", "/javascript/..%2f..%2fetc/passwd",
        "/javascript//etc/passwd",
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", targets[i]);
        hc_response r;
        ck_assert_int_eq(hc_raw(g_port, req, (size_t)n, &r), 0);
        ck_assert_msg(r.status == 400 || r.status == 404, "%s: status %d", targets[i], r.status);
        ck_assert_msg(!strstr(r.body, "AC_INIT") && !strstr(r.body, "root:"), "%s leaked a file", targets[i]);
        hc_free(&r);
    }
}
END_TEST

START_TEST(test_uri_too_long)
{
    char target[2100] = "/api/v1/";
    memset(target + 8, 'a', 2000);
    target[2008] = '\0';
    hc_response r;
    ck_assert_int_eq(hc_request(g_port, "GET", target, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 414);
    hc_free(&r);
}
END_TEST

static Suite *suite_api(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("running");
    tcase_add_test(tc, test_health);
    tcase_add_test(tc, test_head);
    tcase_add_test(tc, test_optimizer_names);
    tcase_add_test(tc, test_optimizer_defaults);
    tcase_add_test(tc, test_optimizer_ranges);
    tcase_add_test(tc, test_optimizer_state_bytes);
    tcase_add_test(tc, test_unknown_route);
    tcase_add_test(tc, test_wrong_method);
    tcase_add_test(tc, test_body_too_large);
    tcase_add_test(tc, test_chunked_body_too_large);
    tcase_add_test(tc, test_static_index);
    tcase_add_test(tc, test_path_traversal);
    tcase_add_test(tc, test_uri_too_long);
    suite_add_tcase(s, tc);
    return s;
}

/* ------------------------------------------------------------------ after it stopped */

START_TEST(test_clean_exit)
{
    ck_assert_msg(g_exit_status != -1, "octetd did not exit within 10 s of SIGTERM");
    ck_assert_msg(WIFEXITED(g_exit_status) && WEXITSTATUS(g_exit_status) == 0, "octetd ended with wait status %d",
                  g_exit_status);
}
END_TEST

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    long long v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

START_TEST(test_database_left)
{
    struct stat sb;
    ck_assert_msg(stat(g_db, &sb) == 0 && S_ISREG(sb.st_mode), "no database at %s", g_db);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(query_int(db, "SELECT MAX(version) FROM schema_version"), SCHEMA_VERSION);
    ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM schema_version"), SCHEMA_VERSION);
    ck_assert_int_eq(query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                   "('jobs', 'epochs', 'steps', 'memory', 'datasets', 'events', 'id_sequence', "
                                   "'sweeps')"),
                     8);
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
}
END_TEST

static Suite *suite_shutdown(void)
{
    Suite *s = suite_create("shutdown");
    TCase *tc = tcase_create("stopped");
    tcase_add_test(tc, test_clean_exit);
    tcase_add_test(tc, test_database_left);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (test_tmpdir(g_tmp, sizeof g_tmp, "api") != 0)
        return EXIT_FAILURE;
    int failed = 1;
    if (start_server() != 0) {
        fprintf(stderr, "run_api: octetd did not start (is it built? OCTET_BUILDDIR=%s)\n",
                test_builddir());
        stop_server();
    } else {
        SRunner *sr = srunner_create(suite_api());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        stop_server();
        sr = srunner_create(suite_shutdown());
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    test_rmtree(g_tmp);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
