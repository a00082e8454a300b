/* server.c: the libmicrohttpd daemon and its access handler: the path from a request's
 * headers to the handler that answers it.
 *
 * First call (headers only): refuse what can be refused before reading a body: a target over
 * HTTP_MAX_URL (414), an unknown API path (404), a known one with the wrong method (405 +
 * Allow), a write without the bearer token (401), a Content-Length over the route's cap (413),
 * a body of another type where JSON is required (415), a static path with a method other than
 * GET/HEAD (405). Middle calls: body chunks (body.c). Last call: 413 if the body outgrew the
 * cap, the strict JSON parse for routes that take JSON (400), then the handler or the static
 * file. The completion callback tells the done hook (metrics), logs one access line and frees
 * the request. The daemon runs a pool of threads (http_config.threads), each serving its own
 * connections, so handlers run concurrently; suspended connections (a stream waiting for its
 * next event) hold no thread. */
#define _GNU_SOURCE /* SCHED_BATCH */
#define LOG_PREFIX "http"
#include "config.h"
#include "http/http_impl.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Lowers the calling pool thread's priority by cfg.nice, once per thread (Linux's nice value and
 * scheduling policy are per thread), and moves it to SCHED_BATCH: a request that wakes it then
 * does not preempt a running training thread, it is served at the next scheduler tick (a few
 * milliseconds at most), and a busy dashboard no longer breaks the training threads' work into
 * slices. A thread that cannot be lowered or moved (another system, a nice already at 19) logs
 * one warning and serves as it is. */
static void lower_thread_priority(const http_server *s)
{
    static __thread int done;
    if (done || s->cfg.nice <= 0)
        return;
    done = 1;
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int now = getpriority(PRIO_PROCESS, tid);
    int want = now + s->cfg.nice > 19 ? 19 : now + s->cfg.nice;
    if ((now == -1 && errno) || (want != now && setpriority(PRIO_PROCESS, tid, want) != 0))
        log_warn("cannot lower an HTTP thread's priority to nice %d: %s", want, strerror(errno));
    struct sched_param none = {0};
    if (sched_setscheduler((pid_t)tid, SCHED_BATCH, &none) != 0)
        log_warn("cannot move an HTTP thread to batch scheduling: %s", strerror(errno));
}

static size_t max_body(const http_server *s)
{
    return s->cfg.max_body ? s->cfg.max_body : HTTP_DEFAULT_MAX_BODY;
}

/* The body cap of a request: max_upload for routes that take an upload, else max_body. */
static size_t body_cap(const request_ctx *rc)
{
    if (rc->route && rc->route->takes_upload && rc->srv->cfg.max_upload)
        return rc->srv->cfg.max_upload;
    return max_body(rc->srv);
}

static int is_read_method(const char *method)
{
    return !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
}

/* The part of url below /api/v1, or NULL when url is not an API path. */
static const char *api_path(const char *url)
{
    size_t n = strlen(HTTP_API_PREFIX);
    if (strncmp(url, HTTP_API_PREFIX, n) || (url[n] != '\0' && url[n] != '/'))
        return NULL;
    return url + n;
}

/* 413 from the announced Content-Length, before any of the body is read. */
static int content_length_too_big(request_ctx *rc)
{
    const char *cl = MHD_lookup_connection_value(rc->req.conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == ERANGE || n > body_cap(rc);
}

static enum MHD_Result reply_too_large(request_ctx *rc)
{
    return http_reply_error(&rc->req, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", "body",
                            "the request body is over the limit of %zu bytes", body_cap(rc));
}

/* True when a request that must carry JSON says its body is something else. No Content-Type
 * at all is taken as JSON; "application/json" may carry parameters (charset). */
static int wrong_content_type(const request_ctx *rc)
{
    const char *ct = MHD_lookup_connection_value(rc->req.conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    static const char json[] = "application/json";
    size_t n = sizeof json - 1;
    return strncasecmp(ct, json, n) || (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ');
}

/* True when the route's request changes nothing: an open route, or its open_if argument set to
 * 1 or true (a dry run). */
static int changes_nothing(const request_ctx *rc)
{
    const http_route *r = rc->route;
    if (r->open)
        return 1;
    const char *v = r->open_if ? MHD_lookup_connection_value(rc->req.conn, MHD_GET_ARGUMENT_KIND, r->open_if) : NULL;
    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

/* Routes an API request; replies at once (404, 405, 401) or returns MHD_YES to read on. */
static enum MHD_Result begin_api(request_ctx *rc, const char *path)
{
    http_request *req = &rc->req;
    char allow[64];
    int m = http_route_match(rc->srv->cfg.routes, req->method, path, rc->path, sizeof rc->path, &rc->route, req->args,
                             &req->nargs, allow, sizeof allow);
    if (m == HTTP_MATCH_NO_PATH)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no API route %s", req->url);
    if (m == HTTP_MATCH_NO_METHOD) {
        http_reply_header(req, MHD_HTTP_HEADER_ALLOW, allow);
        return http_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL,
                                "%s does not take %s; allowed: %s", req->url, req->method, allow);
    }
    const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!is_read_method(req->method) && !changes_nothing(rc) && !http_bearer_ok(rc->srv->cfg.token, auth)) {
        http_reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"octet\"");
        return http_reply_error(req, MHD_HTTP_UNAUTHORIZED, "unauthorized", NULL,
                                "this server needs \"Authorization: Bearer <token>\" for writes");
    }
    if (content_length_too_big(rc))
        return reply_too_large(rc);
    if (rc->route->takes_json && wrong_content_type(rc))
        return http_reply_error(req, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Content-Type",
                                "%s takes a JSON body: send Content-Type: application/json", req->url);
    return MHD_YES;
}

/* The first call of a request: headers only. */
static enum MHD_Result begin_request(request_ctx *rc)
{
    http_request *req = &rc->req;
    if (strlen(req->url) > HTTP_MAX_URL)
        return http_reply_error(req, MHD_HTTP_URI_TOO_LONG, "uri_too_long", NULL, "the path is over %d bytes",
                                HTTP_MAX_URL);
    const char *path = api_path(req->url);
    if (path)
        return begin_api(rc, path);
    if (content_length_too_big(rc))
        return reply_too_large(rc);
    if (!is_read_method(req->method)) {
        http_reply_header(req, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        return http_reply_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL,
                                "static files take GET and HEAD only");
    }
    return MHD_YES;
}

/* The last call: the whole body is in. */
static enum MHD_Result finish_request(request_ctx *rc)
{
    http_request *req = &rc->req;
    if (rc->too_large)
        return reply_too_large(rc);
    if (!rc->route)
        return http_serve_static(rc);
    if (rc->route->takes_json) {
        octet_err e;
        octet_err_clear(&e);
        if (http_parse_json_body(rc->body, rc->body_len, &rc->json, &e) != OCTET_OK)
            return http_reply_error(req, MHD_HTTP_BAD_REQUEST, "bad_json", e.field, "%s", e.message);
        req->body = rc->json;
    }
    if (rc->route->takes_upload) {
        req->raw_body = rc->body ? rc->body : "";
        req->raw_len = rc->body_len;
    }
    enum MHD_Result r = rc->route->handler(req);
    if (!rc->replied && r == MHD_YES) {
        log_err("%s %s: the handler queued no reply", req->method, req->url);
        return http_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL, "no reply");
    }
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    request_ctx *rc = *con_cls;
    if (!rc) {
        lower_thread_priority(cls);
        rc = calloc(1, sizeof *rc);
        if (!rc)
            return MHD_NO;
        *con_cls = rc;
        rc->srv = cls;
        rc->req.conn = conn;
        rc->req.method = method;
        rc->req.url = url;
        rc->req.app = rc->srv->cfg.app;
        clock_gettime(CLOCK_MONOTONIC, &rc->started);
        return begin_request(rc);
    }
    if (*upload_data_size) {
        if (!rc->replied)
            http_body_append(rc, upload_data, *upload_data_size, body_cap(rc));
        *upload_data_size = 0;
        return MHD_YES;
    }
    return rc->replied ? MHD_YES : finish_request(rc);
}

/* MHD_OPTION_NOTIFY_COMPLETED: one access log line, then free the request. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    request_ctx *rc = *con_cls;
    if (!rc)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (now.tv_sec - rc->started.tv_sec) * 1e3 + (now.tv_nsec - rc->started.tv_nsec) / 1e6;
    if (rc->srv->cfg.on_done)
        rc->srv->cfg.on_done(rc->srv->cfg.app, rc->route, rc->req.method, rc->req.status, ms / 1e3);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_info("%s %.200s %u %.1fms", rc->req.method, rc->req.url, rc->req.status, ms);
    else
        log_info("%s %.200s %u %.1fms (connection ended early: %d)", rc->req.method, rc->req.url, rc->req.status, ms,
                 (int)toe);
    json_decref(rc->json);
    free(rc->body);
    free(rc);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn("libmicrohttpd: %s", msg);
}

/* Parses a numeric IPv4 or IPv6 address and port into addr; sets *ipv6. */
static int parse_listen(const char *listen, unsigned port, struct sockaddr_storage *addr, int *ipv6, octet_err *e)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (port > 65535)
        return octet_fail(e, OCTET_ERR_ARG, "port", "must be 0..65535, got %u", port);
    if (inet_pton(AF_INET, listen, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return OCTET_OK;
    }
    if (inet_pton(AF_INET6, listen, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return OCTET_OK;
    }
    return octet_fail(e, OCTET_ERR_ARG, "listen", "'%s' is not a numeric IPv4 or IPv6 address", listen);
}

int http_start(const http_config *cfg, http_server **out, octet_err *e)
{
    *out = NULL;
    struct sockaddr_storage addr;
    int ipv6 = 0;
    int rc = parse_listen(cfg->listen, cfg->port, &addr, &ipv6, e);
    if (rc != OCTET_OK)
        return rc;
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    if (!cfg->routes) {
        free(s);
        return octet_fail(e, OCTET_ERR_ARG, "routes", "no route table");
    }
    s->cfg = *cfg;
    s->web_dir = realpath(cfg->web_dir, NULL);
    if (!s->web_dir) {
        rc = octet_fail(e, OCTET_ERR_ARG, "web-dir", "cannot use %s: %s", cfg->web_dir, strerror(errno));
        free(s);
        return rc;
    }
    if (cfg->js_dir && *cfg->js_dir) {
        s->js_dir = realpath(cfg->js_dir, NULL);
        if (s->js_dir)
            log_info("serving %s from %s", HTTP_JS_PREFIX, s->js_dir);
        else
            log_warn("not serving %s: cannot use %s: %s (the page draws no charts)", HTTP_JS_PREFIX, cfg->js_dir,
                     strerror(errno));
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
                     (ipv6 ? MHD_USE_IPv6 : 0);
    unsigned threads = cfg->threads ? cfg->threads : 4;
    unsigned max_conns = cfg->max_connections ? cfg->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
    unsigned max_per_client = cfg->max_per_client ? cfg->max_per_client : HTTP_DEFAULT_MAX_PER_CLIENT;
    if (max_conns < threads) /* libmicrohttpd splits the limit over the pool's threads */
        max_conns = threads;
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,  /* first, as MHD asks */
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT, max_conns,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, max_per_client,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_END);
    const union MHD_DaemonInfo *info = s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        rc = octet_fail(e, OCTET_ERR_IO, "listen", "cannot listen on %s port %u (in use, or not a local address?)",
                        cfg->listen, cfg->port);
        http_stop(s);
        return rc;
    }
    s->port = info->port;
    *out = s;
    return OCTET_OK;
}

unsigned http_port(const http_server *s)
{
    return s->port;
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    free(s->web_dir);
    free(s->js_dir);
    free(s);
}
