/* check_models_util.c: helpers of the model suites (check_models.h). */
#include "config.h"
#include "check_models.h"
#include "testlib.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

device *tm_device(void)
{
    device *d = NULL;
    octet_err e;
    octet_err_clear(&e);
    int rc = device_open("cpu", 0, &d, &e);
    ck_assert_msg(rc == OCTET_OK && d, "device_open(cpu): %s", e.message);
    return d;
}

char *tm_tempdir(const char *tag)
{
    size_t n = strlen(test_builddir()) + strlen(tag) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/tests/unit/%s.XXXXXX", test_builddir(), tag);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

void tm_rmtree(const char *dir)
{
    const char *keep = getenv("OCTET_KEEP_REF");
    if (!dir || (keep && *keep == '1'))
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* The last `cap` bytes of a file, trailing blanks trimmed. */
static void tail_of(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f), from = size > (long)cap - 1 ? size - (long)cap + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t got = fread(buf, 1, cap - 1, f);
    buf[got] = 0;
    fclose(f);
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
        buf[--got] = 0;
}

int tm_run_reference(const char *mode, const char *dir, char *err, size_t cap)
{
    const char *py = getenv("OCTET_TORCH_PYTHON");
    if (!py || !*py)
        py = "/usr/bin/python3";
    if (access(py, X_OK) != 0) {
        snprintf(err, cap, "%s not found: the PyTorch reference tests need Debian's python3 with python3-torch", py);
        return -1;
    }
    char log[1200], cmd[4096], tail[700];
    snprintf(log, sizeof log, "%s/models_ref.log", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/reference/models_ref.py' %s '%s' >'%s' 2>&1", py, test_srcdir(), mode,
             dir, log);
    int rc = system(cmd);
    if (rc != 0) {
        tail_of(log, tail, sizeof tail);
        snprintf(err, cap, "PyTorch reference script failed (exit %d; is python3-torch installed?): %s",
                 WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, tail);
        return -1;
    }
    unlink(log);
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

void tm_fill_params(model *m, uint64_t seed)
{
    for (int i = 0; i < m->n_params; i++) {
        model_param *p = &m->params[i];
        float *x = malloc((size_t)p->n * sizeof *x);
        ck_assert_ptr_nonnull(x);
        int norm_w = ends_with(p->name, "LayerNorm.weight") || ends_with(p->name, "layer_norm.weight");
        float std = p->ndim == 1 ? 0.1f : strstr(p->name, "embeddings") ? 0.5f : (float)(1.0 / sqrt((double)p->shape[1]));
        model_fill_normal(x, p->n, std, seed, p->name);
        for (int64_t j = 0; norm_w && j < p->n; j++)
            x[j] += 1.0f;
        ck_assert_int_eq(model_param_set(m, i, x), OCTET_OK);
        free(x);
    }
}

float *tm_param_host(model *m, int i)
{
    float *x = malloc((size_t)m->params[i].n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(model_param_get(m, i, x), OCTET_OK);
    return x;
}

float *tm_grad_host(model *m, int i)
{
    float *x = malloc((size_t)m->params[i].n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(device_download(m->dev, x, m->params[i].grad, (size_t)m->params[i].n * sizeof *x), OCTET_OK);
    return x;
}

tm_cmp tm_compare(const float *got, const float *want, int64_t n)
{
    tm_cmp c = {0.0, 0.0, 0.0, -1};
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= c.err)) { /* NaN counts as the worst */
            c.err = isnan(d) ? INFINITY : d;
            c.at = i;
        }
        c.scale = fmax(c.scale, fabs((double)want[i]));
    }
    if (c.scale == 0.0)
        c.scale = FLT_MIN;
    c.worst = c.err / c.scale;
    return c;
}
