/* check_train_data_util.c: file and process helpers for the training-data suites
 * (check_train_data.h): temporary directories, fixture paths, running the Python
 * cross-checks with Debian's /usr/bin/python3. */
#define _GNU_SOURCE
#include "check_train_data.h"
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void td_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/octet-td-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

void td_write(const char *dir, const char *name, const void *data, size_t n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", dir, name);
    FILE *f = fopen(out, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", out);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

void td_data(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/tests/data/%s", test_srcdir(), name);
}

int td_run(const char *cmd)
{
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int td_python_has(const char *module)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", module);
    return access("/usr/bin/python3", X_OK) == 0 && td_run(cmd) == 0;
}

static void rm_dir(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && depth < 2)
            rm_dir(p, depth + 1);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void td_rmtree(const char *dir)
{
    rm_dir(dir, 0);
}
