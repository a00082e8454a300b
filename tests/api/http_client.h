/* http_client.h: a minimal HTTP/1.1 client over a plain TCP socket to 127.0.0.1, for the API
 * tests: it sends exactly the bytes it is given (so tests can send what curl would normalise
 * away, such as "/../x" or a lying Content-Length) and reads the reply until the server closes.
 * No libcurl, no keep-alive, loopback only. */
#ifndef OCTET_TEST_HTTP_CLIENT_H
#define OCTET_TEST_HTTP_CLIENT_H

#include <stddef.h>

typedef struct hc_response {
    int status;        /* 0 when no status line came back */
    char *head;        /* the status line and headers, NUL-terminated */
    char *body;        /* NUL-terminated (chunked bodies decoded) */
    size_t body_len;
} hc_response;

/* Sends `len` raw bytes to 127.0.0.1:port and reads the response until EOF (10 s timeout).
 * Returns 0, or -1 when the connection failed or no response arrived. */
int hc_raw(unsigned port, const char *request, size_t len, hc_response *out);

/* Sends METHOD target HTTP/1.1 with Host, Connection: close, the extra header lines (each
 * ending in \r\n; may be NULL) and, when body is not NULL, Content-Length and the body. */
int hc_request(unsigned port, const char *method, const char *target, const char *extra_headers, const char *body,
               hc_response *out);

/* A response header's value (case-insensitive name) copied into buf, or NULL when absent. */
const char *hc_header(const hc_response *r, const char *name, char *buf, size_t len);

void hc_free(hc_response *r);

#endif
