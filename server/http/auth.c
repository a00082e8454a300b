/* auth.c: the bearer token that guards writes when octetd is started with --token.
 *
 * Reads (GET, HEAD) are open; every other method must carry "Authorization: Bearer <token>".
 * The comparison takes the same time wherever the strings first differ, so the token cannot
 * be guessed byte by byte from response times. */
#include "config.h"
#include "http/http.h"

#include <string.h>
#include <strings.h>

/* Compares a and b in time that depends only on their lengths. */
static int equal_const_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    return diff == 0;
}

int http_bearer_ok(const char *token, const char *authorization)
{
    if (!token || !*token)
        return 1;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7))
        return 0;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    return equal_const_time(given, token);
}
