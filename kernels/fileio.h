/* fileio.h: opening and reading the files a user can name, for every layer that loads one:
 * the training data's loaders (vocab.txt, JSONL, CSV, fortune files, IDX), model directories,
 * safetensors, checkpoints, the store's schema migrations. One place, so that every loader
 * reports an unreadable, missing or oversized file the same way (the message names the path
 * and the OS error, the field names the input that pointed at the file) and none of them can
 * be made to hang: a path naming a FIFO, a device, a socket or a directory is refused at open
 * time instead of blocking in open() or read() forever. Also the path of a file in a
 * directory, for the loaders that read a model or tokenizer directory, and the space free under
 * a path, for the writers' messages about a full disk. */
#ifndef OCTET_FILEIO_H
#define OCTET_FILEIO_H

#include <stddef.h>
#include <stdio.h>
#include "status.h"

OCTET_EXTERN_C_BEGIN

/* Opens `path` for reading without ever blocking on what it names: open(O_RDONLY | O_NONBLOCK |
 * O_CLOEXEC), fstat, and anything but a regular file (FIFO, socket, device, directory) is
 * refused; then O_NONBLOCK is cleared, so reads behave as usual. *fd gets the descriptor
 * (close() it) and *size, when not NULL, the file's size. Fails with OCTET_ERR_IO naming
 * `field`, the message "<path>: not a regular file" or "<path>: <OS error>"; *fd is -1 then. */
int octet_open_regular(const char *path, const char *field, int *fd, long long *size, octet_err *e);

/* The same as a stdio stream opened "rb" (fclose() it); *f is NULL on failure. */
int octet_fopen_regular(const char *path, const char *field, FILE **f, octet_err *e);

/* Reads `path` into a malloc'd, NUL-terminated buffer (*buf, *len bytes without the NUL).
 * Fails with OCTET_ERR_IO (cannot open/read, or not a regular file: octet_open_regular),
 * OCTET_ERR_FORMAT (larger than max_bytes) or OCTET_ERR_NOMEM, recording `field` in e; *buf
 * is NULL then. */
int octet_read_file(const char *path, size_t max_bytes, const char *field, char **buf, size_t *len, octet_err *e);

/* dir + "/" + name, malloc'd; NULL when out of memory. */
char *octet_join_path(const char *dir, const char *name);

/* Bytes free to an unprivileged writer on the file system holding `path` (statvfs: f_bavail x
 * f_frsize), for messages about a full disk; 0 when statvfs fails. */
unsigned long long octet_free_bytes(const char *path);

OCTET_EXTERN_C_END
#endif
