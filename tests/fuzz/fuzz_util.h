/* fuzz_util.h: what the libFuzzer harnesses share. Parsers that read files (safetensors, datasets,
 * vocab.txt, config.json) get the input written to a file of their own in a directory made once
 * per process under $OCTET_FUZZ_TMPDIR, else /dev/shm where it is writable (memory: eight times
 * the executions per second of a disk), else $TMPDIR; the harnesses never exit on bad input, they
 * only call the parser and free what it returns, so every report is the parser's. */
#ifndef OCTET_FUZZ_UTIL_H
#define OCTET_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

static char fuzz_dir_path[256];

/* Removes path and, when it is a directory, what is under it (the harnesses make no links). */
static void fuzz_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char sub[512];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                fuzz_remove_tree(sub);
            }
        }
        closedir(d);
    }
    remove(path); /* what cannot be removed stays */
}

/* At exit: the directory and what the harness left in it (a memory file system keeps them). */
static void fuzz_dir_remove(void)
{
    fuzz_remove_tree(fuzz_dir_path);
}

/* A directory of this process's own, made on the first call and removed at exit; aborts when it
 * cannot be made (the harness cannot run at all then). */
static const char *fuzz_dir(void)
{
    char *dir = fuzz_dir_path;
    if (!dir[0]) {
        const char *t = getenv("OCTET_FUZZ_TMPDIR");
        if (!t || !*t)
            t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(dir, sizeof fuzz_dir_path, "%s/octet-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir))
            abort();
        atexit(fuzz_dir_remove);
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
