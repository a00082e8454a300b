/* http.h: octetd's HTTP layer on libmicrohttpd: the request a handler sees, the route table
 * type, the server's start/stop, and the only ways a handler replies.
 *
 * The API lives under /api/v1. A request there is matched against the route table the API
 * hands over in http_config (server/api/routes.c) by method and path, where a `*` segment matches any one path segment and is
 * handed to the handler in args[]. Unknown paths get 404, a known path with another method 405
 * with an Allow header. Bodies are accumulated in one place (body.c) up to a cap (413 past it:
 * max_body, or max_upload for routes that take a raw upload); routes that take JSON refuse
 * another Content-Type (415) and get the body parsed strictly (duplicate keys rejected; 400
 * naming line and column) before the handler runs. Writes (methods other than GET and HEAD)
 * need the bearer token when the server has one (401), except those the route marks as
 * changing nothing (an estimate, a dry run). Everything else is a static file from
 * the web directory (static.c), or under /javascript/ from the JavaScript directory (js_dir),
 * GET and HEAD only, never outside that directory.
 *
 * The daemon answers from a pool of threads (libmicrohttpd's), so handlers run concurrently
 * and must keep their state per request or per thread. A handler may reply with a stream of
 * unknown length (http_reply_stream, for Server-Sent Events); its reader can suspend the
 * connection while it has nothing to send and have it resumed from any thread.
 *
 * Every reply, error or not, goes through http_reply_json / http_reply_error, so all errors have
 * one shape: {"error": {"code": "not_found", "message": "...", "field": null}}. */
#ifndef OCTET_HTTP_H
#define OCTET_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Names that libmicrohttpd 0.9.71-0.9.73 spelled differently. */
#ifndef MHD_HTTP_CONTENT_TOO_LARGE
#define MHD_HTTP_CONTENT_TOO_LARGE 413
#endif
#ifndef MHD_HTTP_UNPROCESSABLE_CONTENT
#define MHD_HTTP_UNPROCESSABLE_CONTENT 422
#endif
#ifndef MHD_HTTP_URI_TOO_LONG
#define MHD_HTTP_URI_TOO_LONG 414
#endif

#define HTTP_API_PREFIX "/api/v1"
#define HTTP_MAX_ARGS 4
#define HTTP_MAX_URL 1024                 /* longer request targets get 414 */
#define HTTP_DEFAULT_MAX_BODY (1u << 20)  /* 1 MiB */
#define HTTP_DEFAULT_MAX_CONNECTIONS 512u  /* open connections in all */
#define HTTP_DEFAULT_MAX_PER_CLIENT 128u   /* open connections from one address */

/* What a handler gets: the connection, the matched path segments, the parsed body. */
typedef struct http_request {
    struct MHD_Connection *conn;
    const char *method;                /* as the client sent it ("GET", "POST", ...) */
    const char *url;                   /* the decoded path */
    const char *args[HTTP_MAX_ARGS];   /* the segments the route's '*'s matched */
    int nargs;
    const json_t *body;                /* routes with takes_json: a JSON object; else NULL */
    const char *raw_body;              /* routes with takes_upload: the bytes (NUL-terminated) */
    size_t raw_len;
    void *app;                         /* http_config.app, the server's shared state */
    unsigned status;                   /* the HTTP status replied (set by the reply helpers) */
} http_request;

/* A handler replies through the helpers below and returns their result. */
typedef enum MHD_Result (*http_handler)(http_request *req);

/* One entry of the route table. The table ends with an entry whose method is NULL. */
typedef struct http_route {
    const char *method;   /* MHD_HTTP_METHOD_GET, ...; GET routes also answer HEAD */
    const char *path;     /* below /api/v1, no leading '/': "health", "jobs/x/epochs" with x = '*' */
    http_handler handler;
    int takes_json;       /* 1: the body must be a JSON object, parsed before the handler runs */
    int takes_upload;     /* 1: the body is kept raw, up to max_upload bytes */
    int open;             /* 1: a write that changes nothing (an estimate): no token needed */
    const char *open_if;  /* a query argument that, set to 1 or true, makes this write change
                           * nothing (a dry run): no token needed then */
} http_route;

/* Called once per finished request, from the thread that served it: the matched route's
 * pattern (NULL for a static file or an unknown path), the method, the status, the seconds. */
typedef void (*http_done_hook)(void *app, const http_route *route, const char *method, unsigned status,
                               double seconds);

typedef struct http_config {
    const char *listen;      /* numeric IPv4 or IPv6 address, e.g. "127.0.0.1" */
    unsigned port;           /* 0: let the kernel pick a free port */
    const char *web_dir;     /* static files */
    const char *js_dir;      /* a second, read-only root served at /javascript/ (Debian's
                              * /usr/share/javascript, where libjs-* packages put their files);
                              * NULL or "": none. Not there at start: logged, /javascript/ is 404 */
    const char *token;       /* bearer token required for writes; NULL or "" for none */
    size_t max_body;         /* 0: HTTP_DEFAULT_MAX_BODY */
    size_t max_upload;       /* routes with takes_upload; 0: max_body */
    unsigned threads;        /* the pool's threads; 0: 4 */
    unsigned max_connections;/* open connections past which new ones are closed unanswered
                              * (libmicrohttpd accepts and drops them); 0: HTTP_DEFAULT_MAX_CONNECTIONS */
    unsigned max_per_client; /* the same for one client address; 0: HTTP_DEFAULT_MAX_PER_CLIENT */
    int nice;                /* added to each pool thread's nice value at its first request,
                              * which also moves it to SCHED_BATCH (0..19; 0 leaves it), so that
                              * where the CPUs are short training threads go first and requests
                              * wait */
    const http_route *routes;/* the API's route table (required) */
    void *app;               /* handed to every handler as req->app */
    http_done_hook on_done;  /* may be NULL */
} http_config;

typedef struct http_server http_server;

/* Starts the daemon (one internal polling thread) on cfg->listen:cfg->port. The config's
 * strings must outlive the server. Fails with OCTET_ERR_ARG for an address that is not numeric
 * IPv4/IPv6 or a missing web directory, OCTET_ERR_IO when the socket cannot be bound (the
 * port is taken, the address is not local), OCTET_ERR_NOMEM. */
int http_start(const http_config *cfg, http_server **out, octet_err *e);
/* The port actually bound (the chosen one when cfg->port was 0). */
unsigned http_port(const http_server *s);
/* Stops accepting, finishes the request in flight and frees everything; NULL is ignored. */
void http_stop(http_server *s);

/* ------------------------------------------------------------------ replies (reply.c) */

/* Sends `json` with `status` and Content-Type application/json, and drops the caller's
 * reference to it (so `http_reply_json(req, 200, json_pack(...))` leaks nothing; NULL json, as
 * from a failed pack, becomes a 500). Returns MHD_NO only when no reply could be queued, which
 * makes MHD close the connection. */
enum MHD_Result http_reply_json(http_request *req, unsigned status, json_t *json);
/* Sends {"error": {"code", "message", "field"}}; `field` may be NULL (JSON null). */
enum MHD_Result http_reply_error(http_request *req, unsigned status, const char *code, const char *field,
                                 const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Sends 204 No Content (a delete). */
enum MHD_Result http_reply_no_content(http_request *req);
/* Sends text (e.g. Prometheus' format) with `status` and `content_type`. */
enum MHD_Result http_reply_text(http_request *req, unsigned status, const char *content_type, char *text, size_t len);
/* Adds a header to every reply this request sends from now on (e.g. Allow). */
void http_reply_header(http_request *req, const char *name, const char *value);

/* Replies 200 with a body of unknown length produced by `reader` (libmicrohttpd's content
 * reader: it returns the bytes written, MHD_CONTENT_READER_END_OF_STREAM, or 0 after
 * suspending the connection with http_suspend) and `free_cls` when the reply is done (also
 * when the client went away). Sent with `content_type`, Cache-Control no-store. */
enum MHD_Result http_reply_stream(http_request *req, const char *content_type, MHD_ContentReaderCallback reader,
                                  void *cls, MHD_ContentReaderFreeCallback free_cls);
/* Suspends a connection from inside its content reader (which then returns 0); resumes it
 * from any thread. */
void http_suspend(struct MHD_Connection *conn);
void http_resume(struct MHD_Connection *conn);

/* A query-string argument (decoded) or a request header, NULL when absent. */
const char *http_query(const http_request *req, const char *name);
const char *http_header(const http_request *req, const char *name);

/* ------------------------------------------------------------------ pieces, exposed for tests */

enum { HTTP_MATCH_OK = 0, HTTP_MATCH_NO_PATH = 1, HTTP_MATCH_NO_METHOD = 2 };

/* Matches `path` (below /api/v1, with or without a leading '/'; a trailing '/' is ignored)
 * against `routes`. `scratch` (of `scratch_len` bytes) receives a copy of the path that args[]
 * point into. Returns HTTP_MATCH_OK and sets *route, args and *nargs; HTTP_MATCH_NO_PATH;
 * or HTTP_MATCH_NO_METHOD and writes the methods that path takes ("GET, HEAD") into allow. */
int http_route_match(const http_route *routes, const char *method, const char *path, char *scratch,
                     size_t scratch_len, const http_route **route, const char **args, int *nargs, char *allow,
                     size_t allow_len);

/* Parses a request body strictly: one JSON object, no duplicate keys, nothing after it. Returns
 * OCTET_OK and a new reference in *out, or OCTET_ERR_ARG with the parser's line, column and
 * reason in e->message (field "body"). */
int http_parse_json_body(const char *buf, size_t len, json_t **out, octet_err *e);

/* True when the Authorization header value carries the configured bearer token (compared in
 * time independent of where they differ); always true when `token` is NULL or empty. */
int http_bearer_ok(const char *token, const char *authorization);

/* Maps a URL path to a file under web_dir: "/" is index.html; a segment that is empty,
 * starts with '.' (so "..", hidden files) or holds a backslash is refused with OCTET_ERR_ARG;
 * a file that does not exist, is not a regular file, or whose real path (symlinks resolved)
 * leaves web_dir gives OCTET_ERR_IO. web_dir must itself be a real path (absolute, no
 * symlinks, as realpath() gives it; http_start() resolves cfg.web_dir once): under any
 * other spelling every file is refused with OCTET_ERR_IO, never served from outside. On
 * success `out` holds the real path. */
int http_static_resolve(const char *web_dir, const char *url, char *out, size_t out_len);

/* The prefix under which js_dir is served. */
#define HTTP_JS_PREFIX "/javascript/"

/* Maps a URL path to a file as the server does: under HTTP_JS_PREFIX, the rest of the path
 * under js_dir (by http_static_resolve's rules; OCTET_ERR_IO for the prefix alone or when
 * js_dir is NULL), anything else under web_dir. Sets *from_js to which root was meant. */
int http_static_path(const char *web_dir, const char *js_dir, const char *url, char *out, size_t out_len,
                     int *from_js);

/* The Content-Type for a file name, by extension ("application/octet-stream" when unknown). */
const char *http_mime_type(const char *path);

#endif
