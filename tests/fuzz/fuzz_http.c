/* fuzz_http.c: libFuzzer harness of the request pieces that see every client's bytes before a
 * handler does: the route matcher against the API's route table (method, path with
 * percent-decoded segments and trailing slashes), the strict JSON body parser (one object, no
 * duplicate keys, nothing after it), the static file resolver under a web directory, and the
 * bearer-token check. The first byte picks the method; the rest up to a NUL is the path, after
 * it the body (the whole rest when there is no NUL) and the Authorization header value. */
#include "config.h"
#include <jansson.h>
#include "fuzz_util.h"
#include "http/http.h"
#include "api/api.h"

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *method = methods[data[0] & 7];
    data++, size--;
    const uint8_t *nul = memchr(data, 0, size);
    size_t path_len = nul ? (size_t)(nul - data) : size;
    char *path = fuzz_string(data, path_len);
    char scratch[256], allow[128];
    const http_route *route = NULL;
    const char *args[8];
    int nargs = 0;
    http_route_match(api_routes, method, path, scratch, sizeof scratch, &route, args, &nargs, allow, sizeof allow);

    char out[4096];
    http_static_resolve(fuzz_dir(), path, out, sizeof out);

    const uint8_t *body = nul ? nul + 1 : data;
    size_t body_len = nul ? size - path_len - 1 : size;
    json_t *j = NULL;
    octet_err e;
    if (http_parse_json_body((const char *)body, body_len, &j, &e) == OCTET_OK)
        json_decref(j);
    char *auth = fuzz_string(body, body_len);
    http_bearer_ok("s3cret-token", auth);
    free(auth);
    free(path);
    return 0;
}
