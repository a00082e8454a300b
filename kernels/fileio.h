/* fileio.h: reading a whole text or binary file into memory, for every layer that loads a
 * file: the training data's loaders (vocab.txt, JSONL, CSV, fortune files), the store's schema
 * migrations. One function, so that every loader reports an unreadable, missing or oversized
 * file the same way: the message names the path and the OS error, the field names the input
 * that pointed at the file. Also the path of a file in a directory, for the loaders that read
 * a model or tokenizer directory. */
#ifndef OCTET_FILEIO_H
#define OCTET_FILEIO_H

#include <stddef.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

/* Reads `path` into a malloc'd, NUL-terminated buffer (*buf, *len bytes without the NUL).
 * Fails with OCTET_ERR_IO (cannot open/read, or a directory), OCTET_ERR_FORMAT (larger than
 * max_bytes) or OCTET_ERR_NOMEM, recording `field` in e; *buf is NULL then. */
int octet_read_file(const char *path, size_t max_bytes, const char *field, char **buf, size_t *len, octet_err *e);

/* dir + "/" + name, malloc'd; NULL when out of memory. */
char *octet_join_path(const char *dir, const char *name);

OCTET_EXTERN_C_END
#endif
