/* check_train_data_util.c: file and process helpers for the training-data suites
 * (check_train_data.h): fixture paths, running the Python cross-checks with Debian's
 * /usr/bin/python3. Scratch directories and files come from testlib.h. */
#include "check_train_data.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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
