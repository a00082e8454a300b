/* fuzz_util.h: what the libFuzzer harnesses share. Parsers that read files (safetensors, datasets,
 * vocab.txt, config.json) get the input written to a file of their own in a directory made once
 * per process under $TMPDIR; the harnesses never exit on bad input, they only call the parser
 * and free what it returns, so every report is the parser's. */
#ifndef OCTET_FUZZ_UTIL_H
#define OCTET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A directory of this process's own, made on the first call; aborts when it cannot be made
 * (the harness cannot run at all then). */
static const char *fuzz_dir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/octet-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Writes data[0..size) to fuzz_dir()/name and returns its path (a static buffer per name slot). */
static const char *fuzz_file(const char *name, const uint8_t *data, size_t size)
{
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ & 3];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return p;
}

/* data as a NUL-terminated string (malloc'd; the caller frees). */
static char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
