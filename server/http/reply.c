/* reply.c: every response octetd sends goes through here: JSON bodies, the one error shape,
 * streamed replies, and extra headers such as Allow.
 *
 * JSON is serialized compactly with 15 significant digits for reals (so 0.9 reads "0.9", not
 * "0.90000000000000002"), handed to MHD to free, and sent with Content-Type
 * application/json and Cache-Control no-store. */
#define LOG_PREFIX "http"
#include "config.h"
#include "http/http_impl.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_reply_header(http_request *req, const char *name, const char *value)
{
    request_ctx *rc = (request_ctx *)req;
    if (rc->n_extra == HTTP_MAX_EXTRA_HEADERS) {
        log_warn("too many extra headers; dropping %s", name);
        return;
    }
    rc->extra[rc->n_extra].name = name;
    snprintf(rc->extra[rc->n_extra].value, sizeof rc->extra[0].value, "%s", value);
    rc->n_extra++;
}

enum MHD_Result http_queue(http_request *req, unsigned status, struct MHD_Response *resp)
{
    request_ctx *rc = (request_ctx *)req;
    if (!resp) {
        log_err("%s %s: could not build a response", req->method, req->url);
        return MHD_NO;
    }
    for (int i = 0; i < rc->n_extra; i++)
        MHD_add_response_header(resp, rc->extra[i].name, rc->extra[i].value);
    enum MHD_Result r = MHD_queue_response(req->conn, status, resp);
    MHD_destroy_response(resp);
    req->status = status;
    rc->replied = 1;
    return r;
}

enum MHD_Result http_reply_json(http_request *req, unsigned status, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(json);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"could not build the reply\","
                                  "\"field\":null}}";
        log_err("%s %s: could not serialize the reply", req->method, req->url);
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        return http_queue(req, MHD_HTTP_INTERNAL_SERVER_ERROR, r);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return http_queue(req, status, r);
}

enum MHD_Result http_reply_error(http_request *req, unsigned status, const char *code, const char *field,
                                 const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_t *msg = json_string(message); /* NULL when a client's bytes made it invalid UTF-8 */
    json_object_set_new(err, "message", msg ? msg : json_string("(the message was not valid UTF-8)"));
    json_object_set_new(err, "field", field && *field ? json_string(field) : json_null());
    json_t *root = json_object();
    json_object_set_new(root, "error", err);
    return http_reply_json(req, status, root);
}

enum MHD_Result http_reply_no_content(http_request *req)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    return http_queue(req, MHD_HTTP_NO_CONTENT, r);
}

enum MHD_Result http_reply_text(http_request *req, unsigned status, const char *content_type, char *text, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return http_queue(req, status, r);
}

enum MHD_Result http_reply_stream(http_request *req, const char *content_type, MHD_ContentReaderCallback reader,
                                  void *cls, MHD_ContentReaderFreeCallback free_cls)
{
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, cls, free_cls);
    if (!r) {
        free_cls(cls);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    return http_queue(req, MHD_HTTP_OK, r);
}

void http_suspend(struct MHD_Connection *conn)
{
    MHD_suspend_connection(conn);
}

void http_resume(struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
}

const char *http_query(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
