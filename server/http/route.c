/* route.c: matching a request path under /api/v1 against the static route table.
 *
 * A route's path is a '/'-separated pattern; a '*' segment matches exactly one non-empty
 * segment and is handed to the handler in args[]. The path must have as many segments as the
 * pattern. A route for GET also answers HEAD (MHD leaves the body out). When the path is known
 * but not for this method, the matcher lists the methods that are, for the Allow header. */
#include "config.h"
#include "http/http.h"

#include <stdio.h>
#include <string.h>

/* Splits `path` (copied into scratch) into segments; returns their count, or -1 when a
 * segment is empty or there are more than HTTP_MAX_ARGS * 2 + 2 of them, or it does not fit. */
static int split_path(const char *path, char *scratch, size_t scratch_len, char **seg, int max_seg)
{
    if (*path == '/')
        path++;
    size_t n = strlen(path);
    if (n >= scratch_len)
        return -1;
    memcpy(scratch, path, n + 1);
    if (n > 0 && scratch[n - 1] == '/')
        scratch[--n] = '\0';
    if (n == 0)
        return 0;
    int count = 0;
    for (char *p = scratch;; ) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*p == '\0' || count == max_seg)
            return -1;
        seg[count++] = p;
        if (!slash)
            return count;
        p = slash + 1;
    }
}

/* True when the segments match `pattern`; fills args with the '*' segments. */
static int path_matches(const char *pattern, char **seg, int nseg, const char **args, int *nargs)
{
    int i = 0, na = 0;
    const char *p = pattern;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i == nseg)
            return 0;
        if (len == 1 && *p == '*') {
            if (na == HTTP_MAX_ARGS)
                return 0;
            args[na++] = seg[i];
        } else if (strlen(seg[i]) != len || strncmp(seg[i], p, len)) {
            return 0;
        }
        i++;
        p = end ? end + 1 : p + len;
    }
    if (i != nseg)
        return 0;
    *nargs = na;
    return 1;
}

static int method_matches(const char *route_method, const char *method)
{
    return !strcmp(route_method, method) || (!strcmp(method, "HEAD") && !strcmp(route_method, "GET"));
}

/* Appends `m` to the comma-separated list in allow unless it is there already. */
static void allow_add(char *allow, size_t len, const char *m)
{
    size_t used = strlen(allow), mlen = strlen(m);
    for (const char *p = allow; (p = strstr(p, m)) != NULL; p += mlen)
        if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
            return;
    snprintf(allow + used, len - used, "%s%s", used ? ", " : "", m);
}

int http_route_match(const http_route *routes, const char *method, const char *path, char *scratch,
                     size_t scratch_len, const http_route **route, const char **args, int *nargs, char *allow,
                     size_t allow_len)
{
    char *seg[HTTP_MAX_ARGS * 2 + 2];
    const char *a[HTTP_MAX_ARGS];
    int na = 0, path_known = 0;
    int nseg = split_path(path, scratch, scratch_len, seg, (int)(sizeof seg / sizeof seg[0]));
    if (allow_len)
        allow[0] = '\0';
    *route = NULL;
    *nargs = 0;
    for (const http_route *r = routes; nseg >= 0 && r->method; r++) {
        if (!path_matches(r->path, seg, nseg, a, &na))
            continue;
        if (method_matches(r->method, method)) {
            *route = r;
            memcpy(args, a, (size_t)na * sizeof *a);
            *nargs = na;
            return HTTP_MATCH_OK;
        }
        path_known = 1;
        if (allow_len) {
            allow_add(allow, allow_len, r->method);
            if (!strcmp(r->method, "GET"))
                allow_add(allow, allow_len, "HEAD");
        }
    }
    return path_known ? HTTP_MATCH_NO_METHOD : HTTP_MATCH_NO_PATH;
}
