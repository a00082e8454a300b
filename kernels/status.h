/* status.h: the status codes every library function returns, and the error record that
 * carries a user-facing message naming the offending field.
 *
 * Library code never exits: it returns OCTET_OK (0) or a negative code, and when the caller
 * passed an octet_err it also says which field was wrong and what is allowed, in words a
 * client can read ("optimizer.lr: must be a finite number > 0, got -1"). The HTTP layer turns
 * these into 400/422 replies; octet-train prints them. Update octet_strerror() upon changes. */
#ifndef OCTET_STATUS_H
#define OCTET_STATUS_H

#include <stddef.h>
#include "hd.h"

OCTET_EXTERN_C_BEGIN

enum octet_status {
    OCTET_OK = 0,
    OCTET_ERR = -1,         /* unspecified failure */
    OCTET_ERR_NOMEM = -2,   /* host or device allocation failed */
    OCTET_ERR_ARG = -3,     /* invalid argument or user input */
    OCTET_ERR_CUDA = -4,    /* a CUDA or cuBLAS call failed */
    OCTET_ERR_DB = -5,      /* SQLite failure */
    OCTET_ERR_IO = -6,      /* file read/write failure */
    OCTET_ERR_FORMAT = -7,  /* malformed or lying file (checkpoint, dataset, state) */
    OCTET_ERR_NODEV = -8,   /* asked for a device that is not there */
    OCTET_ERR_NAN = -9,     /* training diverged to NaN/Inf */
    OCTET_ERR_CANCEL = -10, /* the job was cancelled */
    OCTET_ERR_MISMATCH = -11/* state or checkpoint saved for other shapes / another optimizer */
};

/* A failure description: `field` names the input at fault (dotted path, may be empty),
 * `message` says what is wrong and what is allowed. */
typedef struct octet_err {
    int status;
    char field[96];
    char message[384];
} octet_err;

const char *octet_strerror(int status);

/* Records a failure in `e` (which may be NULL) and returns `status`, so callers can write
 * `return octet_fail(e, OCTET_ERR_ARG, "optimizer.lr", "must be > 0, got %g", lr);`. */
int octet_fail(octet_err *e, int status, const char *field, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Clears an error record. */
void octet_err_clear(octet_err *e);

OCTET_EXTERN_C_END
#endif
