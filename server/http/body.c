/* body.c: request bodies: accumulating MHD's chunks up to the server's cap, and the one strict
 * JSON parse every route that takes a body goes through.
 *
 * The cap is checked twice: against Content-Length when the headers arrive (server.c replies
 * 413 before reading anything), and against the bytes actually received, for chunked bodies
 * that announce no length. Past the cap the rest of the body is read and dropped, and the
 * request ends in 413. Only routes that take JSON or an upload keep their bytes. */
#include "config.h"
#include "http/http_impl.h"

#include <stdlib.h>
#include <string.h>

/* Takes one chunk of body for rc. Never fails: running out of memory while keeping the bytes
 * is treated like going past the cap (the client gets 413 rather than a half body). */
void http_body_append(request_ctx *rc, const char *data, size_t size, size_t max)
{
    if (rc->too_large)
        return;
    rc->body_seen += size;
    if (rc->body_seen > max) {
        rc->too_large = 1;
        free(rc->body);
        rc->body = NULL;
        rc->body_len = rc->body_cap = 0;
        return;
    }
    if (!rc->route || (!rc->route->takes_json && !rc->route->takes_upload))
        return;
    if (rc->body_len + size + 1 > rc->body_cap) { /* + 1: the NUL an upload is handed with */
        size_t cap = rc->body_cap ? rc->body_cap : 4096;
        while (cap < rc->body_len + size + 1)
            cap *= 2;
        char *grown = realloc(rc->body, cap);
        if (!grown) {
            rc->too_large = 1;
            return;
        }
        rc->body = grown;
        rc->body_cap = cap;
    }
    memcpy(rc->body + rc->body_len, data, size);
    rc->body_len += size;
    rc->body[rc->body_len] = '\0';
}

int http_parse_json_body(const char *buf, size_t len, json_t **out, octet_err *e)
{
    *out = NULL;
    if (!buf || len == 0)
        return octet_fail(e, OCTET_ERR_ARG, "body", "a JSON object is required");
    json_error_t err;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return octet_fail(e, OCTET_ERR_ARG, "body", "malformed JSON at line %d, column %d: %s", err.line, err.column,
                          err.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return octet_fail(e, OCTET_ERR_ARG, "body", "must be a JSON object");
    }
    *out = root;
    return OCTET_OK;
}
