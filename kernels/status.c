/* status.c: names of the status codes and the helper that fills an octet_err.
 * Nothing here allocates or fails. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *octet_strerror(int status)
{
    switch (status) {
    case OCTET_OK: return "ok";
    case OCTET_ERR: return "error";
    case OCTET_ERR_NOMEM: return "out of memory";
    case OCTET_ERR_ARG: return "invalid argument";
    case OCTET_ERR_CUDA: return "CUDA error";
    case OCTET_ERR_DB: return "database error";
    case OCTET_ERR_IO: return "I/O error";
    case OCTET_ERR_FORMAT: return "malformed data";
    case OCTET_ERR_NODEV: return "no such device";
    case OCTET_ERR_NAN: return "non-finite loss";
    case OCTET_ERR_CANCEL: return "cancelled";
    case OCTET_ERR_MISMATCH: return "mismatch";
    default: return "unknown status";
    }
}

int octet_fail(octet_err *e, int status, const char *field, const char *fmt, ...)
{
    if (!e)
        return status;
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

void octet_err_clear(octet_err *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}
