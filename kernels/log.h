/* log.h: one logging function for the whole program, with a per-file prefix.
 *
 * Each .c file defines LOG_PREFIX before including this header and writes
 * `log_err("could not open %s", path)`. Output goes to stderr, one line per call, with a
 * level tag; OCTET_LOG_LEVEL (error|warn|info|debug) in the environment sets the threshold.
 * Thread-safe: each line is written with one fprintf under stdio's own lock. */
#ifndef OCTET_LOG_H
#define OCTET_LOG_H

#include "hd.h"

OCTET_EXTERN_C_BEGIN

enum octet_log_level { OCTET_LOG_ERR = 0, OCTET_LOG_WARN = 1, OCTET_LOG_INFO = 2, OCTET_LOG_DEBUG = 3 };

void octet_log(int level, const char *prefix, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

OCTET_EXTERN_C_END

#ifndef LOG_PREFIX
#define LOG_PREFIX "octet"
#endif
#define log_err(...) octet_log(OCTET_LOG_ERR, LOG_PREFIX, __VA_ARGS__)
#define log_warn(...) octet_log(OCTET_LOG_WARN, LOG_PREFIX, __VA_ARGS__)
#define log_info(...) octet_log(OCTET_LOG_INFO, LOG_PREFIX, __VA_ARGS__)
#define log_debug(...) octet_log(OCTET_LOG_DEBUG, LOG_PREFIX, __VA_ARGS__)

#endif
