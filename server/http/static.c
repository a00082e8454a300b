/* static.c: the web page's files, served from the web directory for every path outside
 * /api/v1, with GET and HEAD only; and under /javascript/ the files of a second, read-only root
 * (--js-dir, Debian's /usr/share/javascript, where libjs-* packages such as the page's chart
 * library live), under the same rules.
 *
 * A path never leaves the web directory: segments that are empty or start with '.' are refused
 * outright (MHD has already decoded %2e%2e to ".."), and the file's real path, with symlinks
 * resolved, must still lie under the directory's real path (which the server resolves once, at
 * start, not per request). Only regular files are served;
 * "/" is index.html. A file is opened without blocking (a FIFO planted in the directory is
 * refused, not waited on), and sent from its descriptor, with a type by extension and
 * Cache-Control no-cache (the browser revalidates, so a new build shows at once). */
#define LOG_PREFIX "http"
#include "config.h"
#include "http/http_impl.h"
#include "fileio.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *ext, *type; } mime_types[] = {
    {".html", "text/html; charset=utf-8"},  {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"}, {".json", "application/json"},
    {".svg", "image/svg+xml"},              {".png", "image/png"},
    {".ico", "image/x-icon"},               {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

const char *http_mime_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof mime_types / sizeof mime_types[0]; i++)
        if (!strcmp(dot, mime_types[i].ext))
            return mime_types[i].type;
    return "application/octet-stream";
}

/* True when every segment of the path after its leading '/' is non-empty, does not start
 * with '.', and holds no backslash. "/" alone is fine. */
static int path_is_clean(const char *url)
{
    if (url[0] != '/' || strchr(url, '\\'))
        return 0;
    if (url[1] == '\0')
        return 1;
    for (const char *p = url + 1;; ) {
        const char *slash = strchr(p, '/');
        if (*p == '\0' || *p == '/' || *p == '.')
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

int http_static_resolve(const char *web_dir, const char *url, char *out, size_t out_len)
{
    if (!url || !path_is_clean(url))
        return OCTET_ERR_ARG;
    char joined[PATH_MAX], file_real[PATH_MAX];
    const char *rel = url[1] ? url + 1 : "index.html";
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", web_dir, rel) >= sizeof joined)
        return OCTET_ERR_ARG;
    if (!realpath(joined, file_real))
        return OCTET_ERR_IO;
    size_t n = strlen(web_dir);
    if (strncmp(file_real, web_dir, n) || file_real[n] != '/')
        return OCTET_ERR_IO;
    struct stat sb;
    if (stat(file_real, &sb) || !S_ISREG(sb.st_mode))
        return OCTET_ERR_IO;
    if ((size_t)snprintf(out, out_len, "%s", file_real) >= out_len)
        return OCTET_ERR_ARG;
    return OCTET_OK;
}

int http_static_path(const char *web_dir, const char *js_dir, const char *url, char *out, size_t out_len,
                     int *from_js)
{
    size_t js = strlen(HTTP_JS_PREFIX);
    *from_js = url && !strncmp(url, HTTP_JS_PREFIX, js);
    if (!*from_js)
        return http_static_resolve(web_dir, url, out, out_len);
    /* "/javascript/dygraphs/x.js" is "/dygraphs/x.js" under the JavaScript directory, which
     * has no index: "/javascript/" itself is not a file */
    url += js - 1;
    if (url[1] == '\0' || !js_dir)
        return OCTET_ERR_IO;
    return http_static_resolve(js_dir, url, out, out_len);
}

enum MHD_Result http_serve_static(request_ctx *rc)
{
    http_request *req = &rc->req;
    char path[PATH_MAX];
    int from_js = 0;
    int st = http_static_path(rc->srv->web_dir, rc->srv->js_dir, req->url, path, sizeof path, &from_js);
    if (st == OCTET_ERR_ARG)
        return http_reply_error(req, MHD_HTTP_BAD_REQUEST, "bad_path", NULL, "this path is not allowed");
    if (st != OCTET_OK)
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such page");
    int fd = -1;
    long long size = 0;
    octet_err e;
    if (octet_open_regular(path, "", &fd, &size, &e) != OCTET_OK) /* never blocks on a FIFO */
        return http_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", NULL, "no such page");
    struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, http_mime_type(path));
    /* a library's files change only when its package is upgraded */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, from_js ? "max-age=3600" : "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    return http_queue(req, MHD_HTTP_OK, r);
}
