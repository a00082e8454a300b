/* check_http.c: the HTTP layer's pure pieces, without a socket: route matching (segments,
 * '*' arguments, HEAD for GET, the Allow list), the strict JSON body parse, the bearer-token
 * check, and static path resolution (refusing every way out of the web directory, and out of
 * the JavaScript directory served at /javascript/). The real
 * server is driven over HTTP by tests/api/run_api.c. */
#include "config.h"
#include "server_suites.h"
#include "api/api.h"
#include "testlib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum MHD_Result dummy(http_request *req)
{
    (void)req;
    return MHD_YES;
}

static const http_route table[] = {
    {.method = "GET", .path = "health", .handler = dummy},
    {.method = "GET", .path = "jobs", .handler = dummy},
    {.method = "POST", .path = "jobs", .handler = dummy, .takes_json = 1},
    {.method = "GET", .path = "jobs/*", .handler = dummy},
    {.method = "DELETE", .path = "jobs/*", .handler = dummy},
    {.method = "GET", .path = "jobs/*/epochs", .handler = dummy},
    {.method = "POST", .path = "jobs/*/cancel", .handler = dummy},
    {.method = NULL},
};

typedef struct match {
    int result;
    const http_route *route;
    const char *args[HTTP_MAX_ARGS];
    int nargs;
    char allow[64];
    char scratch[256];
} match;

static int do_match(const char *method, const char *path, match *m)
{
    memset(m, 0, sizeof *m);
    m->result = http_route_match(table, method, path, m->scratch, sizeof m->scratch, &m->route, m->args, &m->nargs,
                                 m->allow, sizeof m->allow);
    return m->result;
}

START_TEST(test_route_exact)
{
    match m;
    ck_assert_int_eq(do_match("GET", "/health", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[0]);
    ck_assert_int_eq(m.nargs, 0);
    ck_assert_int_eq(do_match("GET", "health", &m), HTTP_MATCH_OK);
    ck_assert_int_eq(do_match("GET", "/health/", &m), HTTP_MATCH_OK);
    ck_assert_int_eq(do_match("HEAD", "/health", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[0]);
    ck_assert_int_eq(do_match("POST", "/jobs", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[2]);
}
END_TEST

START_TEST(test_route_args)
{
    match m;
    ck_assert_int_eq(do_match("GET", "/jobs/42", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[3]);
    ck_assert_int_eq(m.nargs, 1);
    ck_assert_str_eq(m.args[0], "42");
    ck_assert_int_eq(do_match("GET", "/jobs/7/epochs", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[5]);
    ck_assert_str_eq(m.args[0], "7");
    ck_assert_int_eq(do_match("POST", "/jobs/7/cancel", &m), HTTP_MATCH_OK);
    ck_assert_ptr_eq(m.route, &table[6]);
}
END_TEST

START_TEST(test_route_not_found)
{
    match m;
    static const char *paths[] = {"", "/", "/nope", "/health/x", "/jobs/7/steps", "/jobs//epochs", "//health",
                                  "/jobs/1/2/3/4/5/6/7/8/9/10/11"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        ck_assert_msg(do_match("GET", paths[i], &m) == HTTP_MATCH_NO_PATH, "'%s' matched", paths[i]);
}
END_TEST

START_TEST(test_route_wrong_method)
{
    match m;
    ck_assert_int_eq(do_match("POST", "/health", &m), HTTP_MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "GET, HEAD");
    ck_assert_int_eq(do_match("PUT", "/jobs", &m), HTTP_MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "GET, HEAD, POST");
    ck_assert_int_eq(do_match("POST", "/jobs/3", &m), HTTP_MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "GET, HEAD, DELETE");
    ck_assert_int_eq(do_match("GET", "/jobs/3/cancel", &m), HTTP_MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "POST");
}
END_TEST

START_TEST(test_route_table_is_well_formed)
{
    /* Every real route's pattern is reachable by itself (with '*' as an argument). */
    for (const http_route *r = api_routes; r->method; r++) {
        char scratch[256], allow[64];
        const http_route *got = NULL;
        const char *args[HTTP_MAX_ARGS];
        int nargs = 0;
        ck_assert_int_eq(http_route_match(api_routes, r->method, r->path, scratch, sizeof scratch, &got, args, &nargs,
                                          allow, sizeof allow),
                         HTTP_MATCH_OK);
        ck_assert_ptr_eq(got, r);
        ck_assert_ptr_nonnull(r->handler);
    }
}
END_TEST

static int parse(const char *text, json_t **out, octet_err *e)
{
    octet_err_clear(e);
    return http_parse_json_body(text, text ? strlen(text) : 0, out, e);
}

START_TEST(test_body_json)
{
    json_t *j = NULL;
    octet_err e;
    ck_assert_int_eq(parse("{\"name\": \"x\", \"n\": [1, 2]}", &j, &e), OCTET_OK);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "x");
    json_decref(j);
    ck_assert_int_eq(parse("{\"a\": 1,}", &j, &e), OCTET_ERR_ARG);
    ck_assert_ptr_null(j);
    ck_assert_str_eq(e.field, "body");
    ck_assert_ptr_nonnull(strstr(e.message, "line 1"));
    ck_assert_int_eq(parse("{\"a\": 1, \"a\": 2}", &j, &e), OCTET_ERR_ARG);   /* duplicate key */
    ck_assert_int_eq(parse("[1, 2]", &j, &e), OCTET_ERR_ARG);                 /* not an object */
    ck_assert_int_eq(parse("{} {}", &j, &e), OCTET_ERR_ARG);                  /* trailing data */
    ck_assert_int_eq(parse("", &j, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(parse(NULL, &j, &e), OCTET_ERR_ARG);
    ck_assert_int_eq(parse("{\"lr\": NaN}", &j, &e), OCTET_ERR_ARG);
}
END_TEST

START_TEST(test_bearer)
{
    ck_assert(http_bearer_ok(NULL, NULL));
    ck_assert(http_bearer_ok("", "anything"));
    ck_assert(!http_bearer_ok("s3cret", NULL));
    ck_assert(!http_bearer_ok("s3cret", "Bearer nope"));
    ck_assert(!http_bearer_ok("s3cret", "Bearer s3cre"));
    ck_assert(!http_bearer_ok("s3cret", "Bearer s3cret2"));
    ck_assert(!http_bearer_ok("s3cret", "Basic s3cret"));
    ck_assert(!http_bearer_ok("s3cret", "Bearer "));
    ck_assert(http_bearer_ok("s3cret", "Bearer s3cret"));
    ck_assert(http_bearer_ok("s3cret", "bearer s3cret"));
}
END_TEST

START_TEST(test_static_paths)
{
    char made[256], dir[PATH_MAX], web[PATH_MAX + 8], out[PATH_MAX], sub[PATH_MAX + 32], outside[PATH_MAX + 32],
        link[PATH_MAX + 32], alias[PATH_MAX + 32];
    ck_assert_int_eq(test_tmpdir(made, sizeof made, "http"), 0);
    ck_assert_ptr_nonnull(realpath(made, dir)); /* web_dir must be a real path, as http_start() makes it */
    snprintf(web, sizeof web, "%s/web", dir);
    ck_assert_int_eq(mkdir(web, 0755), 0);
    snprintf(sub, sizeof sub, "%s/css", web);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    test_write_text(web, "index.html", "<!doctype html>");
    test_write_text(sub, "a.css", "body{}");
    test_write_text(dir, "secret.txt", "secret");
    snprintf(outside, sizeof outside, "%s/secret.txt", dir);
    snprintf(link, sizeof link, "%s/leak.txt", web);
    ck_assert_int_eq(symlink(outside, link), 0);

    ck_assert_int_eq(http_static_resolve(web, "/", out, sizeof out), OCTET_OK);
    ck_assert_ptr_nonnull(strstr(out, "/web/index.html"));
    ck_assert_int_eq(http_static_resolve(web, "/css/a.css", out, sizeof out), OCTET_OK);
    static const char *refused[] = {"/../secret.txt", "/css/../../secret.txt", "/./index.html", "/.hidden",
                                    "//index.html",   "/css/",                 "/a\\b",         "index.html"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        ck_assert_msg(http_static_resolve(web, refused[i], out, sizeof out) == OCTET_ERR_ARG, "%s accepted",
                      refused[i]);
    ck_assert_int_eq(http_static_resolve(web, "/leak.txt", out, sizeof out), OCTET_ERR_IO); /* symlink out */
    ck_assert_int_eq(http_static_resolve(web, "/css", out, sizeof out), OCTET_ERR_IO);      /* a directory */
    ck_assert_int_eq(http_static_resolve(web, "/nope.html", out, sizeof out), OCTET_ERR_IO);
    /* a web_dir spelled through a symlink is not its real path: every file is refused, none
     * served from wherever the link points */
    snprintf(alias, sizeof alias, "%s/alias", dir);
    ck_assert_int_eq(symlink(web, alias), 0);
    ck_assert_int_eq(http_static_resolve(alias, "/", out, sizeof out), OCTET_ERR_IO);
    ck_assert_int_eq(http_static_resolve(alias, "/css/a.css", out, sizeof out), OCTET_ERR_IO);
    test_rmtree(dir);
}
END_TEST

/* The second root: /javascript/X is X under js_dir, by the same rules; everything else stays
 * with the web directory. */
START_TEST(test_static_js_dir)
{
    char made[256], dir[PATH_MAX], web[PATH_MAX + 8], js[PATH_MAX + 8], lib[PATH_MAX + 32], out[PATH_MAX],
        link[PATH_MAX + 48], inner[PATH_MAX + 48];
    int from_js = -1;
    ck_assert_int_eq(test_tmpdir(made, sizeof made, "http"), 0);
    ck_assert_ptr_nonnull(realpath(made, dir));
    snprintf(web, sizeof web, "%s/web", dir);
    snprintf(js, sizeof js, "%s/js", dir);
    snprintf(lib, sizeof lib, "%s/dygraphs", js);
    ck_assert_int_eq(mkdir(web, 0755), 0);
    ck_assert_int_eq(mkdir(js, 0755), 0);
    ck_assert_int_eq(mkdir(lib, 0755), 0);
    test_write_text(web, "index.html", "<!doctype html>");
    test_write_text(lib, "dygraph.min.js", "var Dygraph;");
    test_write_text(dir, "secret.txt", "secret");
    snprintf(link, sizeof link, "%s/leak.js", lib); /* a link out of the JavaScript directory */
    snprintf(inner, sizeof inner, "%s/secret.txt", dir);
    ck_assert_int_eq(symlink(inner, link), 0);
    snprintf(link, sizeof link, "%s/dist", lib); /* Debian's dygraphs has dist -> . : it stays inside */
    ck_assert_int_eq(symlink(".", link), 0);

    ck_assert_int_eq(http_static_path(web, js, "/javascript/dygraphs/dygraph.min.js", out, sizeof out, &from_js),
                     OCTET_OK);
    ck_assert_int_eq(from_js, 1);
    ck_assert_str_eq(out + strlen(js), "/dygraphs/dygraph.min.js");
    ck_assert_int_eq(http_static_path(web, js, "/javascript/dygraphs/dist/dygraph.min.js", out, sizeof out, &from_js),
                     OCTET_OK);
    ck_assert_int_eq(http_static_path(web, js, "/", out, sizeof out, &from_js), OCTET_OK);
    ck_assert_int_eq(from_js, 0);
    ck_assert_ptr_nonnull(strstr(out, "/web/index.html"));
    static const char *refused[] = {"/javascript/../secret.txt", "/javascript/dygraphs/../../secret.txt",
                                    "/javascript//dygraphs/dygraph.min.js", "/javascript/.hidden",
                                    "/javascript/dygraphs/", "/javascript/a\\b"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        ck_assert_msg(http_static_path(web, js, refused[i], out, sizeof out, &from_js) == OCTET_ERR_ARG, "%s accepted",
                      refused[i]);
    static const char *missing[] = {"/javascript/", "/javascript/dygraphs/leak.js", "/javascript/dygraphs",
                                    "/javascript/nope.js", "/javascript/index.html", "/javascript",
                                    "/dygraphs/dygraph.min.js"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        ck_assert_msg(http_static_path(web, js, missing[i], out, sizeof out, &from_js) == OCTET_ERR_IO, "%s served",
                      missing[i]);
    /* no JavaScript directory (--js-dir "", or not there at start): nothing under /javascript/ */
    ck_assert_int_eq(http_static_path(web, NULL, "/javascript/dygraphs/dygraph.min.js", out, sizeof out, &from_js),
                     OCTET_ERR_IO);
    ck_assert_int_eq(http_static_path(web, NULL, "/", out, sizeof out, &from_js), OCTET_OK);
    test_rmtree(dir);
}
END_TEST

START_TEST(test_mime_types)
{
    ck_assert_str_eq(http_mime_type("/x/index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(http_mime_type("app.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(http_mime_type("a.css"), "text/css; charset=utf-8");
    ck_assert_str_eq(http_mime_type("noext"), "application/octet-stream");
}
END_TEST

Suite *suite_http(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("pieces");
    tcase_add_test(tc, test_route_exact);
    tcase_add_test(tc, test_route_args);
    tcase_add_test(tc, test_route_not_found);
    tcase_add_test(tc, test_route_wrong_method);
    tcase_add_test(tc, test_route_table_is_well_formed);
    tcase_add_test(tc, test_body_json);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_static_paths);
    tcase_add_test(tc, test_static_js_dir);
    tcase_add_test(tc, test_mime_types);
    suite_add_tcase(s, tc);
    return s;
}
