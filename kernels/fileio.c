/* fileio.c: reading whole files and joining paths, see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int octet_read_file(const char *path, size_t max_bytes, const char *field, char **buf, size_t *len, octet_err *e)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return octet_fail(e, OCTET_ERR_IO, field, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        return octet_fail(e, OCTET_ERR_IO, field, "%s: not a readable file", path);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return octet_fail(e, OCTET_ERR_FORMAT, field, "%s: %lld bytes, larger than the %zu-byte limit", path,
                          (long long)st.st_size, max_bytes);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return octet_fail(e, OCTET_ERR_NOMEM, field, "%s: out of memory for %zu bytes", path, cap);
    }
    n = fread(b, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return octet_fail(e, OCTET_ERR_IO, field, "%s: read error", path);
    }
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
