/* http_client.c: the raw-socket HTTP client of the API tests (see http_client.h). Parses only
 * what the tests need: the status line, headers, and Content-Length or chunked bodies. */
#define _GNU_SOURCE /* strcasestr */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_loopback(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends everything; a server that closes early (after an early reply) is not an error here. */
static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Reads until EOF, error or 10 s of silence into a new buffer. */
static char *recv_all(int fd, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Decodes a chunked body in place; returns the decoded length. */
static size_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end = NULL;
        unsigned long size = strtoul(body + in, &end, 16);
        char *crlf = strstr(body + in, "\r\n");
        if (!crlf || size == 0)
            break;
        in = (size_t)(crlf - body) + 2;
        if (in + size > len)
            size = len - in;
        memmove(body + out, body + in, size);
        out += size;
        in += size + 2;
    }
    body[out] = '\0';
    return out;
}

static int parse_response(char *raw, size_t len, hc_response *out)
{
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1)
        return -1;
    size_t head_len = (size_t)(sep - raw);
    out->head = strndup(raw, head_len);
    out->body_len = len - head_len - 4;
    out->body = malloc(out->body_len + 1);
    if (!out->head || !out->body)
        return -1;
    memcpy(out->body, sep + 4, out->body_len);
    out->body[out->body_len] = '\0';
    char te[64];
    if (hc_header(out, "Transfer-Encoding", te, sizeof te) && strcasestr(te, "chunked"))
        out->body_len = dechunk(out->body, out->body_len);
    return 0;
}

int hc_raw(unsigned port, const char *request, size_t len, hc_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_loopback(port);
    if (fd < 0)
        return -1;
    send_all(fd, request, len);
    size_t n = 0;
    char *raw = recv_all(fd, &n);
    close(fd);
    int rc = raw ? parse_response(raw, n, out) : -1;
    free(raw);
    return rc;
}

int hc_request(unsigned port, const char *method, const char *target, const char *extra_headers, const char *body,
               hc_response *out)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(method) + strlen(target) + (extra_headers ? strlen(extra_headers) : 0) + blen + 256;
    char *req = malloc(cap);
    if (!req)
        return -1;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n%s", method, target,
                     port, extra_headers ? extra_headers : "");
    if (body)
        n += snprintf(req + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) {
        memcpy(req + n, body, blen);
        n += (int)blen;
    }
    int rc = hc_raw(port, req, (size_t)n, out);
    free(req);
    return rc;
}

const char *hc_header(const hc_response *r, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *line = r->head ? strstr(r->head, "\r\n") : NULL; line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) || line[nlen] != ':')
            continue;
        const char *v = line + nlen + 1;
        while (*v == ' ')
            v++;
        const char *end = strstr(v, "\r\n");
        size_t vlen = end ? (size_t)(end - v) : strlen(v);
        snprintf(buf, len, "%.*s", (int)vlen, v);
        return buf;
    }
    return NULL;
}

void hc_free(hc_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}
