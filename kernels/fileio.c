/* fileio.c: opening user-named files without blocking, reading whole files and joining
 * paths, see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int octet_open_regular(const char *path, const char *field, int *fd, long long *size, octet_err *e)
{
    *fd = -1;
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (d < 0) /* ENXIO: a socket */
        return octet_fail(e, OCTET_ERR_IO, field, "%s: %s", path,
                          errno == ENXIO ? "not a regular file" : strerror(errno));
    struct stat st;
    if (fstat(d, &st) != 0) {
        int err = errno;
        close(d);
        return octet_fail(e, OCTET_ERR_IO, field, "%s: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(d);
        return octet_fail(e, OCTET_ERR_IO, field, "%s: not a regular file", path);
    }
    int flags = fcntl(d, F_GETFL);
    if (flags < 0 || fcntl(d, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(d);
        return octet_fail(e, OCTET_ERR_IO, field, "%s: %s", path, strerror(err));
    }
    *fd = d;
    if (size)
        *size = (long long)st.st_size;
    return OCTET_OK;
}

int octet_fopen_regular(const char *path, const char *field, FILE **f, octet_err *e)
{
    *f = NULL;
    int fd;
    int rc = octet_open_regular(path, field, &fd, NULL, e);
    if (rc != OCTET_OK)
        return rc;
    if (!(*f = fdopen(fd, "rb"))) {
        int err = errno;
        close(fd);
        return octet_fail(e, err == ENOMEM ? OCTET_ERR_NOMEM : OCTET_ERR_IO, field, "%s: %s", path, strerror(err));
    }
    return OCTET_OK;
}

int octet_read_file(const char *path, size_t max_bytes, const char *field, char **buf, size_t *len, octet_err *e)
{
    *buf = NULL;
    *len = 0;
    int fd;
    long long size = 0;
    int rc = octet_open_regular(path, field, &fd, &size, e);
    if (rc != OCTET_OK)
        return rc;
    if ((unsigned long long)size > max_bytes) {
        close(fd);
        return octet_fail(e, OCTET_ERR_FORMAT, field, "%s: %lld bytes, larger than the %zu-byte limit", path, size,
                          max_bytes);
    }
    size_t cap = (size_t)size + 1, n = 0;
    char *b = malloc(cap);
    if (!b) {
        close(fd);
        return octet_fail(e, OCTET_ERR_NOMEM, field, "%s: out of memory for %zu bytes", path, cap);
    }
    while (n < cap - 1) { /* a file that shrank meanwhile ends early; one that grew is cut */
        ssize_t got = read(fd, b + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;
            free(b);
            close(fd);
            return octet_fail(e, OCTET_ERR_IO, field, "%s: read error: %s", path, strerror(err));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return OCTET_OK;
}

char *octet_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

unsigned long long octet_free_bytes(const char *path)
{
    struct statvfs fs;
    return statvfs(path, &fs) == 0 ? (unsigned long long)fs.f_bavail * fs.f_frsize : 0;
}
