/* run_server.c: the Check runner of the server library's unit suites (store migrations, route
 * matching, body parsing, bearer tokens, static paths, the optimizer catalog), and the helpers
 * they share. Fork mode; exit status 0 when all pass, 1 otherwise. */
#define _GNU_SOURCE /* nftw */
#include "server_suites.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *srv_srcdir(void)
{
    const char *s = getenv("OCTET_SRCDIR");
    return s && *s ? s : ".";
}

void srv_tmpdir(char *buf, size_t len)
{
    const char *t = getenv("TMPDIR");
    snprintf(buf, len, "%s/octet-unit-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s failed", buf);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void srv_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void srv_write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

int main(void)
{
    SRunner *sr = srunner_create(suite_store());
    srunner_add_suite(sr, suite_http());
    srunner_add_suite(sr, suite_catalog());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
