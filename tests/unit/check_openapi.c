/* check_openapi.c: the OpenAPI description served at /openapi.json agrees with the route
 * table: every route of api_routes has its operation under the same path (its '*' segments
 * named {id} or {name}) and method, every operation is a route, every operation documents its
 * responses and has an operationId, and every $ref names a schema that exists. The replies
 * themselves are validated against these schemas by tests/api/test_jobs.py. */
#include "config.h"
#include "server_suites.h"
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* "/jobs/{id}/epochs" for the route pattern "jobs/x/epochs" with x = '*'. */
static void openapi_path(const http_route *r, char *out, size_t cap)
{
    size_t used = (size_t)snprintf(out, cap, "/");
    for (const char *p = r->path; *p && used + 8 < cap; p++) {
        if (*p == '*')
            used += (size_t)snprintf(out + used, cap - used, "%s", strncmp(r->path, "datasets", 8) ? "{id}" : "{name}");
        else {
            out[used++] = *p;
            out[used] = '\0';
        }
    }
}

static void lower(const char *m, char *out, size_t cap)
{
    size_t i = 0;
    for (; m[i] && i + 1 < cap; i++)
        out[i] = (char)(m[i] >= 'A' && m[i] <= 'Z' ? m[i] - 'A' + 'a' : m[i]);
    out[i] = '\0';
}

START_TEST(test_every_route_is_documented)
{
    json_t *doc = api_openapi_document();
    ck_assert_msg(doc != NULL, "the embedded openapi.json does not parse");
    ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    for (const http_route *r = api_routes; r->method; r++) {
        char path[128], method[16];
        openapi_path(r, path, sizeof path);
        lower(r->method, method, sizeof method);
        json_t *op = json_object_get(json_object_get(paths, path), method);
        ck_assert_msg(json_is_object(op), "route %s %s has no operation %s %s", r->method, r->path, method, path);
        ck_assert_msg(json_is_string(json_object_get(op, "operationId")), "%s %s: no operationId", method, path);
        ck_assert_msg(json_object_size(json_object_get(op, "responses")) > 0, "%s %s: no responses", method, path);
    }
    json_decref(doc);
}
END_TEST

START_TEST(test_every_operation_is_a_route)
{
    json_t *doc = api_openapi_document();
    json_t *paths = json_object_get(doc, "paths"), *item;
    const char *path;
    int operations = 0;
    json_object_foreach(paths, path, item) {
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            if (!strcmp(method, "parameters"))
                continue;
            operations++;
            int found = 0;
            for (const http_route *r = api_routes; r->method && !found; r++) {
                char p[128];
                openapi_path(r, p, sizeof p);
                found = !strcmp(p, path) && !strcasecmp(r->method, method);
            }
            ck_assert_msg(found, "operation %s %s has no route", method, path);
        }
    }
    int routes = 0;
    for (const http_route *r = api_routes; r->method; r++)
        routes++;
    ck_assert_int_eq(operations, routes);
    json_decref(doc);
}
END_TEST

/* Every "$ref" under v points at an existing schema. */
static void check_refs(json_t *v, json_t *schemas)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            if (!strcmp(k, "$ref")) {
                const char *ref = json_string_value(x);
                static const char prefix[] = "#/components/schemas/";
                ck_assert_msg(ref && !strncmp(ref, prefix, sizeof prefix - 1), "odd $ref %s", ref ? ref : "?");
                ck_assert_msg(json_object_get(schemas, ref + sizeof prefix - 1) != NULL, "no schema %s", ref);
            } else {
                check_refs(x, schemas);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
            check_refs(x, schemas);
    }
}

START_TEST(test_refs_resolve)
{
    json_t *doc = api_openapi_document();
    check_refs(doc, json_object_get(json_object_get(doc, "components"), "schemas"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "info"), "version")), PACKAGE_VERSION);
    json_decref(doc);
}
END_TEST

Suite *suite_openapi(void)
{
    Suite *s = suite_create("openapi");
    TCase *tc = tcase_create("document");
    tcase_add_test(tc, test_every_route_is_documented);
    tcase_add_test(tc, test_every_operation_is_a_route);
    tcase_add_test(tc, test_refs_resolve);
    suite_add_tcase(s, tc);
    return s;
}
