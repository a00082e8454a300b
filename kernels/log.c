/* log.c: the implementation of octet_log(); see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_threshold(void)
{
    static int level = -1;
    if (level < 0) {
        const char *s = getenv("OCTET_LOG_LEVEL");
        level = OCTET_LOG_INFO;
        if (s && !strcmp(s, "error")) level = OCTET_LOG_ERR;
        else if (s && !strcmp(s, "warn")) level = OCTET_LOG_WARN;
        else if (s && !strcmp(s, "debug")) level = OCTET_LOG_DEBUG;
    }
    return level;
}

void octet_log(int level, const char *prefix, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warn", "info", "debug"};
    if (level > log_threshold())
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s %s: %s\n", stamp, tags[level < 0 ? 0 : level > 3 ? 3 : level], prefix, msg);
}
