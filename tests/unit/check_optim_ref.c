/* check_optim_ref.c: the optimizer engine against PyTorch (reference tests).
 *
 * tests/reference/optim_ref.py computes, in PyTorch (torch.optim.AdamW, torch.optim.SGD and a
 * transcription of Hugging Face's Adafactor), K steps of every case from fixed seeds and writes
 * the initial parameters, every step's gradients and the final parameters and states to one
 * binary file (its format is documented at the top of the script). This suite runs the script
 * once (in an unchecked fixture, so the file is shared by the forked tests), steps our CPU twin
 * with the very same gradients and hyper-parameters, and requires every parameter and state
 * element to agree within the tolerance below. Torch is a hard requirement: if
 * /usr/bin/python3 or its torch module is missing, every test here FAILS with the script's
 * message (make check must run these; setup installs python3-torch). OCTET_TORCH_PYTHON
 * overrides the interpreter; OCTET_KEEP_REF=1 keeps the generated file for inspection.
 *
 * Tolerance: element i passes when |ours - torch| <= RTOL*|torch| + atol, RTOL = 1e-5 and
 * atol = ATOL_ULPS * FLT_EPSILON * max_j |torch_j| over the same array. Why an atol at all:
 * float32 rounding error scales with the operands of an update, not with its result. An
 * element that ends near 0 was computed by subtracting quantities of the tensor's own
 * magnitude, so it carries an absolute error of a few ulp of that magnitude (torch's CPU
 * kernels also use fused multiply-adds where we do not), and a pure relative bound would
 * fail on harmless ulp noise. 16 ulp of the array's largest element (about 2e-6 of it) is
 * far below any real bug's effect (the negative tests below show a small change of one
 * hyper-parameter, e.g. beta2 0.999 -> 0.99, Adafactor's decay_rate -0.8 -> -0.79 or SGD's momentum
 * 0.9 -> 0.89, overshooting the bound 1000-fold or more). */
#include "config.h"
#include "testlib.h"
#include "device.h"
#include "optim.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RTOL 1e-5
#define ATOL_ULPS 16.0
#define REF_MAX_KV 16
#define REF_MAX_STATES 8
#define REF_MAX_TENSORS 8

typedef struct ref_kv {
    char key[32];
    double val;
} ref_kv;

typedef struct ref_state {
    char name[32];
    uint32_t count;
    float *data;
} ref_state;

typedef struct ref_tensor {
    char name[32];
    int ndim;
    int64_t shape[OPTIM_MAX_DIMS];
    int64_t n;
    int n_grp;
    ref_kv grp[REF_MAX_KV];
    float *init, *grads, *expected; /* (n), (steps, n), (n) */
    int n_states;
    ref_state states[REF_MAX_STATES];
} ref_tensor;

typedef struct ref_case {
    char name[64];
    char kind[16];
    int n_hp;
    ref_kv hp[REF_MAX_KV];
    int steps;
    double *lr_scale; /* (steps) */
    int n_tensors;
    ref_tensor t[REF_MAX_TENSORS];
} ref_case;

/* Loaded once in the parent process by the unchecked fixture; the forked tests read it. */
static ref_case *g_cases;
static int g_n_cases;
static char g_ref_error[1024];
static char g_ref_path[1024];

/* ------------------------------------------------------------------ reading the file */

typedef struct reader {
    FILE *f;
    int bad;
} reader;

static void rd(reader *r, void *p, size_t n)
{
    if (!r->bad && fread(p, 1, n, r->f) != n)
        r->bad = 1;
}

static uint32_t rd_u32(reader *r)
{
    uint32_t x = 0;
    rd(r, &x, sizeof x);
    return x;
}

/* Reads a string into buf (cap bytes with the terminator); marks the reader bad if longer. */
static void rd_str(reader *r, char *buf, size_t cap)
{
    uint32_t len = rd_u32(r);
    if (r->bad || len >= cap) {
        r->bad = 1;
        buf[0] = 0;
        return;
    }
    rd(r, buf, len);
    buf[len] = 0;
}

static int rd_kv(reader *r, ref_kv *kv, int cap)
{
    uint32_t n = rd_u32(r);
    if (n > (uint32_t)cap) {
        r->bad = 1;
        return 0;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        rd_str(r, kv[i].key, sizeof kv[i].key);
        rd(r, &kv[i].val, sizeof kv[i].val);
    }
    return (int)n;
}

/* Allocates and reads count floats; NULL (reader marked bad) on a short read or no memory. */
static float *rd_floats(reader *r, int64_t count)
{
    if (r->bad || count <= 0 || count > (int64_t)1 << 28) {
        r->bad = 1;
        return NULL;
    }
    float *p = malloc((size_t)count * sizeof *p);
    if (!p)
        r->bad = 1;
    else
        rd(r, p, (size_t)count * sizeof *p);
    return p;
}

static void rd_tensor(reader *r, ref_tensor *t, int steps)
{
    rd_str(r, t->name, sizeof t->name);
    t->ndim = (int)rd_u32(r);
    if (r->bad || t->ndim < 1 || t->ndim > OPTIM_MAX_DIMS) {
        r->bad = 1;
        return;
    }
    t->n = 1;
    for (int k = 0; k < t->ndim; k++) {
        rd(r, &t->shape[k], sizeof t->shape[k]);
        t->n *= t->shape[k];
    }
    t->n_grp = rd_kv(r, t->grp, REF_MAX_KV);
    t->init = rd_floats(r, t->n);
    t->grads = rd_floats(r, t->n * steps);
    t->expected = rd_floats(r, t->n);
    uint32_t ns = rd_u32(r);
    if (ns > REF_MAX_STATES) {
        r->bad = 1;
        return;
    }
    t->n_states = (int)ns;
    for (int s = 0; s < t->n_states && !r->bad; s++) {
        rd_str(r, t->states[s].name, sizeof t->states[s].name);
        t->states[s].count = rd_u32(r);
        t->states[s].data = rd_floats(r, t->states[s].count);
    }
}

static void rd_case(reader *r, ref_case *c)
{
    rd_str(r, c->name, sizeof c->name);
    rd_str(r, c->kind, sizeof c->kind);
    c->n_hp = rd_kv(r, c->hp, REF_MAX_KV);
    c->steps = (int)rd_u32(r);
    if (r->bad || c->steps < 1 || c->steps > 10000) {
        r->bad = 1;
        return;
    }
    c->lr_scale = malloc((size_t)c->steps * sizeof *c->lr_scale);
    if (!c->lr_scale) {
        r->bad = 1;
        return;
    }
    rd(r, c->lr_scale, (size_t)c->steps * sizeof *c->lr_scale);
    c->n_tensors = (int)rd_u32(r);
    if (r->bad || c->n_tensors < 1 || c->n_tensors > REF_MAX_TENSORS) {
        r->bad = 1;
        return;
    }
    for (int i = 0; i < c->n_tensors && !r->bad; i++)
        rd_tensor(r, &c->t[i], c->steps);
}

/* Reads the whole file into g_cases. Returns 0, or -1 with g_ref_error set (a missing,
 * truncated or corrupt file). The little-endian layout is read natively: x86 and arm64 hosts. */
static int load_reference(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(g_ref_error, sizeof g_ref_error, "cannot open %.900s", path);
        return -1;
    }
    reader r = {f, 0};
    char magic[8];
    rd(&r, magic, sizeof magic);
    uint32_t n = rd_u32(&r);
    if (r.bad || memcmp(magic, "OCTREF01", 8) || n == 0 || n > 1000) {
        fclose(f);
        snprintf(g_ref_error, sizeof g_ref_error, "%.900s is not an OCTREF01 file", path);
        return -1;
    }
    g_cases = calloc(n, sizeof *g_cases);
    g_n_cases = (int)n;
    for (int i = 0; g_cases && i < g_n_cases && !r.bad; i++)
        rd_case(&r, &g_cases[i]);
    int trailing = fgetc(f) != EOF;
    fclose(f);
    if (!g_cases || r.bad || trailing) {
        snprintf(g_ref_error, sizeof g_ref_error, "%.900s is truncated or corrupt", path);
        return -1;
    }
    return 0;
}

/* Runs the PyTorch script into the build tree. Returns 0, or -1 with g_ref_error saying why
 * (no interpreter, no torch, the script failed). */
static int generate_reference(void)
{
    char log[1100], args[1100];
    snprintf(g_ref_path, sizeof g_ref_path, "%s/tests/unit/optim_ref.%ld.bin", test_builddir(), (long)getpid());
    snprintf(log, sizeof log, "%s.log", g_ref_path);
    snprintf(args, sizeof args, "'%s'", g_ref_path);
    return test_run_torch_script("optim_ref.py", args, log, g_ref_error, sizeof g_ref_error);
}

static void ref_setup(void)
{
    g_ref_error[0] = 0;
    if (generate_reference() == 0)
        load_reference(g_ref_path);
}

static void free_case(ref_case *c)
{
    free(c->lr_scale);
    for (int i = 0; i < c->n_tensors; i++) {
        free(c->t[i].init);
        free(c->t[i].grads);
        free(c->t[i].expected);
        for (int s = 0; s < c->t[i].n_states; s++)
            free(c->t[i].states[s].data);
    }
}

static void ref_teardown(void)
{
    for (int i = 0; g_cases && i < g_n_cases; i++)
        free_case(&g_cases[i]);
    free(g_cases);
    g_cases = NULL;
    g_n_cases = 0;
    const char *keep = getenv("OCTET_KEEP_REF");
    if (g_ref_path[0] && !(keep && *keep == '1'))
        unlink(g_ref_path);
}

/* ------------------------------------------------------------------ comparing */

/* Worst agreement of one array: `scaled` is max_i |got-want| / (RTOL*|want| + atol) (<= 1
 * passes), `rel` the largest |got-want|/|want| over elements not near 0, `at` its index. */
typedef struct cmp_result {
    double scaled, rel;
    int64_t at;
    float want, got;
} cmp_result;

static cmp_result compare_arrays(const float *want, const float *got, int64_t n)
{
    cmp_result c = {0.0, 0.0, -1, 0.0f, 0.0f};
    double scale = 0.0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)want[i]));
    double atol = ATOL_ULPS * FLT_EPSILON * scale;
    if (atol == 0.0)
        atol = FLT_MIN;
    for (int64_t i = 0; i < n; i++) {
        double w = want[i], diff = fabs((double)got[i] - w);
        double s = isfinite(diff) ? diff / (RTOL * fabs(w) + atol) : INFINITY;
        if (!(s <= c.scaled)) {
            c.scaled = s;
            c.at = i;
            c.want = want[i];
            c.got = got[i];
        }
        if (fabs(w) > atol / RTOL)
            c.rel = fmax(c.rel, diff / fabs(w));
    }
    return c;
}

/* ------------------------------------------------------------------ running our engine */

/* Sets the field `key` of h to v; returns -1 for an unknown key (a bug in the script). */
static int apply_hp(optim_hparams *h, const char *key, double v)
{
    struct { const char *k; double *d; int *i; } map[] = {
        {"lr", &h->lr, NULL}, {"beta1", &h->beta1, NULL}, {"beta2", &h->beta2, NULL},
        {"eps", &h->eps, NULL}, {"eps2", &h->eps2, NULL}, {"weight_decay", &h->weight_decay, NULL},
        {"momentum", &h->momentum, NULL}, {"dampening", &h->dampening, NULL},
        {"clip_threshold", &h->clip_threshold, NULL}, {"decay_rate", &h->decay_rate, NULL},
        {"nesterov", NULL, &h->nesterov}, {"use_beta1", NULL, &h->use_beta1},
        {"scale_parameter", NULL, &h->scale_parameter}, {"relative_step", NULL, &h->relative_step},
        {"warmup_init", NULL, &h->warmup_init},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].k, key)) {
            if (map[i].d)
                *map[i].d = v;
            else
                *map[i].i = (int)v;
            return 0;
        }
    return -1;
}

/* A group spec for tensor t's overrides (lr, weight_decay); returns -1 for another key. */
static int group_for_tensor(const ref_tensor *t, optim_group_spec *g)
{
    memset(g, 0, sizeof *g);
    g->match = t->name;
    for (int k = 0; k < t->n_grp; k++) {
        if (!strcmp(t->grp[k].key, "lr")) {
            g->set |= OPTIM_SET_LR;
            g->hp.lr = t->grp[k].val;
        } else if (!strcmp(t->grp[k].key, "weight_decay")) {
            g->set |= OPTIM_SET_WEIGHT_DECAY;
            g->hp.weight_decay = t->grp[k].val;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Our engine's state array that torch calls `name`, with its element count; NULL if none. */
static const float *state_by_torch_name(const optim_tensor_state *st, const ref_tensor *t, const char *name,
                                        int64_t *count)
{
    int64_t cols = t->shape[t->ndim - 1];
    int64_t rows = t->ndim >= 2 ? t->shape[t->ndim - 2] : 1;
    *count = t->n;
    if (!strcmp(name, "exp_avg") || !strcmp(name, "momentum_buffer"))
        return st->m;
    if (!strcmp(name, "exp_avg_sq"))
        return st->v;
    if (!strcmp(name, "exp_avg_sq_row")) {
        *count = t->n / cols;
        return st->row;
    }
    if (!strcmp(name, "exp_avg_sq_col")) {
        *count = t->n / rows;
        return st->col;
    }
    return NULL;
}

/* Outcome of one case: the worst array, by scaled error, and a description of it. */
typedef struct case_result {
    double scaled;    /* worst scaled error over params and states (<= 1 passes) */
    double param_rel; /* worst relative error of the parameters */
    char where[256];
} case_result;

static void note(case_result *res, const ref_case *c, const ref_tensor *t, const char *what, cmp_result m)
{
    if (m.scaled > res->scaled || res->where[0] == 0) {
        res->scaled = fmax(res->scaled, m.scaled);
        snprintf(res->where, sizeof res->where, "%s %s %s[%lld]: torch %.9g ours %.9g", c->name, t->name, what,
                 (long long)m.at, (double)m.want, (double)m.got);
    }
}

/* Builds the config of case c; `perturb` (may be NULL) overrides one base field after the
 * case's own. Returns -1 with msg set for an unknown key or kind. */
static int build_config(const ref_case *c, const ref_kv *perturb, optim_config *cfg, optim_group_spec *groups,
                        char *msg, size_t msglen)
{
    optim_kind kind;
    octet_err e = {0};
    if (optim_kind_from_name(c->kind, &kind, &e) != OCTET_OK) {
        snprintf(msg, msglen, "%s: %s", c->name, e.message);
        return -1;
    }
    optim_config_defaults(kind, cfg);
    for (int k = 0; k < c->n_hp; k++)
        if (apply_hp(&cfg->base, c->hp[k].key, c->hp[k].val)) {
            snprintf(msg, msglen, "%s: unknown hyper-parameter '%s'", c->name, c->hp[k].key);
            return -1;
        }
    if (perturb)
        apply_hp(&cfg->base, perturb->key, perturb->val);
    int ng = 0;
    for (int i = 0; i < c->n_tensors; i++) {
        if (!c->t[i].n_grp)
            continue;
        if (group_for_tensor(&c->t[i], &groups[ng++])) {
            snprintf(msg, msglen, "%s: unknown group key in tensor %s", c->name, c->t[i].name);
            return -1;
        }
    }
    cfg->n_groups = ng;
    cfg->groups = ng ? groups : NULL;
    return 0;
}

/* Compares params and states of every tensor after the run. */
static void compare_case(const ref_case *c, optim *o, optim_tensor *ts, case_result *res)
{
    for (int i = 0; i < c->n_tensors; i++) {
        const ref_tensor *t = &c->t[i];
        cmp_result m = compare_arrays(t->expected, ts[i].param, t->n);
        res->param_rel = fmax(res->param_rel, m.rel);
        note(res, c, t, "param", m);
        optim_tensor_state st;
        optim_tensor_state_get(o, i, &st);
        for (int s = 0; s < t->n_states; s++) {
            int64_t count;
            const float *ours = state_by_torch_name(&st, t, t->states[s].name, &count);
            if (!ours || count != (int64_t)t->states[s].count) {
                res->scaled = INFINITY;
                snprintf(res->where, sizeof res->where, "%s %s: no matching state for torch's %s", c->name, t->name,
                         t->states[s].name);
                continue;
            }
            note(res, c, t, t->states[s].name, compare_arrays(t->states[s].data, ours, count));
        }
    }
}

/* Runs case c on the CPU twin with torch's gradients and compares. Returns 0 with *res
 * filled, or -1 with msg set when the engine refused the case or a step failed. */
static int run_case(const ref_case *c, const ref_kv *perturb, case_result *res, char *msg, size_t msglen)
{
    memset(res, 0, sizeof *res);
    optim_config cfg;
    optim_group_spec groups[REF_MAX_TENSORS];
    if (build_config(c, perturb, &cfg, groups, msg, msglen))
        return -1;
    device *dev = NULL;
    octet_err e = {0};
    if (device_open("cpu", 0, &dev, &e) != OCTET_OK) {
        snprintf(msg, msglen, "device_open(cpu): %s", e.message);
        return -1;
    }
    optim_tensor ts[REF_MAX_TENSORS];
    float *grad[REF_MAX_TENSORS];
    for (int i = 0; i < c->n_tensors; i++) {
        const ref_tensor *t = &c->t[i];
        memset(&ts[i], 0, sizeof ts[i]);
        ts[i].name = t->name;
        ts[i].ndim = t->ndim;
        memcpy(ts[i].shape, t->shape, sizeof ts[i].shape);
        ts[i].param = device_alloc(dev, (size_t)t->n * sizeof(float), MEM_PARAMS);
        grad[i] = device_alloc(dev, (size_t)t->n * sizeof(float), MEM_GRADS);
        ts[i].grad = grad[i];
        ck_assert_ptr_nonnull(ts[i].param);
        ck_assert_ptr_nonnull(grad[i]);
        memcpy(ts[i].param, t->init, (size_t)t->n * sizeof(float));
    }
    optim *o = NULL;
    int rc = optim_create(dev, &cfg, ts, c->n_tensors, &o, &e);
    if (rc != OCTET_OK)
        snprintf(msg, msglen, "%s: optim_create: %s: %.300s", c->name, e.field, e.message);
    for (int k = 0; rc == OCTET_OK && k < c->steps; k++) {
        for (int i = 0; i < c->n_tensors; i++)
            memcpy(grad[i], c->t[i].grads + (int64_t)k * c->t[i].n, (size_t)c->t[i].n * sizeof(float));
        if ((rc = optim_step(o, c->lr_scale[k])) != OCTET_OK)
            snprintf(msg, msglen, "%s: optim_step %d: %s", c->name, k + 1, octet_strerror(rc));
    }
    if (rc == OCTET_OK)
        compare_case(c, o, ts, res);
    optim_destroy(o);
    for (int i = 0; i < c->n_tensors; i++) {
        device_free(dev, ts[i].param);
        device_free(dev, grad[i]);
    }
    device_close(dev);
    return rc == OCTET_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ tests */

static void require_reference(void)
{
    ck_assert_msg(g_ref_error[0] == 0 && g_cases, "PyTorch reference unavailable: %s",
                  g_ref_error[0] ? g_ref_error : "not loaded");
}

/* Runs every case of `kind`; fails naming the worst case when any exceeds the tolerance. */
static void check_kind(const char *kind)
{
    require_reference();
    int ran = 0, failed = 0;
    char first_failure[512] = "";
    for (int i = 0; i < g_n_cases; i++) {
        const ref_case *c = &g_cases[i];
        if (strcmp(c->kind, kind))
            continue;
        case_result res;
        char msg[512];
        ck_assert_msg(run_case(c, NULL, &res, msg, sizeof msg) == 0, "%s", msg);
        ran++;
        printf("optim_ref %-34s steps %2d  max param rel err %.2e  worst/tolerance %.3f\n", c->name, c->steps,
               res.param_rel, res.scaled);
        if (!(res.scaled <= 1.0)) {
            if (!failed++)
                snprintf(first_failure, sizeof first_failure, "%.3fx tolerance at %s", res.scaled, res.where);
            fprintf(stderr, "optim_ref FAIL %s: %.3fx tolerance at %s\n", c->name, res.scaled, res.where);
        }
    }
    fflush(stdout);
    ck_assert_msg(ran > 0, "the reference file has no %s case", kind);
    ck_assert_msg(failed == 0, "%d %s case(s) disagree with PyTorch; first: %s", failed, kind, first_failure);
}

START_TEST(test_adamw_matches_torch) { check_kind("adamw"); }
END_TEST

START_TEST(test_sgd_matches_torch) { check_kind("sgd"); }
END_TEST

START_TEST(test_adafactor_matches_torch) { check_kind("adafactor"); }
END_TEST

/* The comparison must catch a real bug: case `name`, run with one base hyper-parameter
 * perturbed, has to exceed the tolerance by `margin` (x100 for a change the size of a typo). */
static void check_perturbation_caught_by(const char *name, const char *key, double val, double margin)
{
    require_reference();
    for (int i = 0; i < g_n_cases; i++) {
        const ref_case *c = &g_cases[i];
        if (strcmp(c->name, name))
            continue;
        ref_kv kv;
        snprintf(kv.key, sizeof kv.key, "%s", key);
        kv.val = val;
        case_result res;
        char msg[512];
        ck_assert_msg(run_case(c, &kv, &res, msg, sizeof msg) == 0, "%s", msg);
        printf("optim_ref negative %s with %s=%.9g: worst/tolerance %.3g (must be > %g)\n", c->name, key, val,
               res.scaled, margin);
        ck_assert_msg(res.scaled > margin, "%s with %s=%.9g still within %.3gx tolerance: the comparison is too loose",
                      c->name, key, val, res.scaled);
        return;
    }
    ck_abort_msg("the reference file has no case %s", name);
}

static void check_perturbation_caught(const char *name, const char *key, double val)
{
    check_perturbation_caught_by(name, key, val, 100.0);
}

START_TEST(test_catches_wrong_beta2) { check_perturbation_caught("adamw_default_7x13", "beta2", 0.99); }
END_TEST

START_TEST(test_catches_wrong_adafactor_decay_rate)
{
    check_perturbation_caught("adafactor_default_7x13_37", "decay_rate", -0.79);
}
END_TEST

START_TEST(test_catches_wrong_sgd_momentum) { check_perturbation_caught("sgd_momentum_300x17", "momentum", 0.89); }
END_TEST

/* eps off by 1e-4 of itself, where eps dominates the denominator: the update changes by 1e-4 of
 * itself, about ten times the relative tolerance (1e-5), so the comparison fails (> 2x). */
START_TEST(test_catches_eps_off_by_1e4)
{
    check_perturbation_caught_by("adamw_eps_dominated_9x11", "eps", 1e-8 * (1.0 + 1e-4), 2.0);
}
END_TEST

Suite *suite_optim_ref(void)
{
    Suite *s = suite_create("optim_ref");
    TCase *tc = tcase_create("torch");
    tcase_add_unchecked_fixture(tc, ref_setup, ref_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_adamw_matches_torch);
    tcase_add_test(tc, test_sgd_matches_torch);
    tcase_add_test(tc, test_adafactor_matches_torch);
    tcase_add_test(tc, test_catches_wrong_beta2);
    tcase_add_test(tc, test_catches_wrong_adafactor_decay_rate);
    tcase_add_test(tc, test_catches_wrong_sgd_momentum);
    tcase_add_test(tc, test_catches_eps_off_by_1e4);
    suite_add_tcase(s, tc);
    return s;
}
