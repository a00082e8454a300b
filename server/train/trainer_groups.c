/* trainer_groups.c: the optimizer's parameter groups of a job (trainer_build_groups in
 * trainer.h): the spec's groups plus Hugging Face Trainer's no-decay groups, expressed as
 * first-match globs for the optimizer engine.
 *
 * The engine assigns a parameter to the first group whose glob matches its name. So the
 * no_decay parameters that a spec group catches without setting weight_decay get a copy of
 * that group with weight_decay 0 placed before all spec groups, and the no_decay parameters
 * no spec group catches get weight_decay-0 groups placed after them. Each such set of names
 * is covered by short globs: for a name a.b.c the candidates are "*", "*.c", "*.b.c" and the
 * full name, and the first one that matches no parameter outside the set (of those that can
 * reach that position in the list) is taken. */
#include "config.h"
#include "train/trainer.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first spec group matching `name`, or -1. */
static int first_user_match(const optim_config *user, const char *name)
{
    for (int g = 0; g < user->n_groups; g++)
        if (fnmatch(user->groups[g].match, name, 0) == 0)
            return g;
    return -1;
}

/* Copies name into out with glob metacharacters escaped. */
static void glob_escape(const char *name, char *out, size_t cap)
{
    size_t j = 0;
    for (const char *p = name; *p && j + 2 < cap; p++) {
        if (strchr("*?[]\\", *p))
            out[j++] = '\\';
        out[j++] = *p;
    }
    out[j] = '\0';
}

/* Whether glob matches a parameter in `forbidden` (flags per parameter). */
static int hits_forbidden(const char *glob, const model_param *params, int n, const char *forbidden)
{
    for (int i = 0; i < n; i++)
        if (forbidden[i] && fnmatch(glob, params[i].name, 0) == 0)
            return 1;
    return 0;
}

/* The shortest candidate glob for params[i] that avoids `forbidden`. */
static void pick_glob(const model_param *params, int n, int i, const char *forbidden, char *out, size_t cap)
{
    const char *name = params[i].name;
    snprintf(out, cap, "*");
    if (!hits_forbidden(out, params, n, forbidden))
        return;
    size_t len = strlen(name);
    for (size_t k = len; k-- > 0;) {
        if (name[k] != '.')
            continue;
        char esc[SPEC_MATCH_MAX];
        glob_escape(name + k, esc, sizeof esc);
        if (strlen(esc) + 2 > cap)
            break;
        out[0] = '*';
        memcpy(out + 1, esc, strlen(esc) + 1);
        if (!hits_forbidden(out, params, n, forbidden))
            return;
    }
    glob_escape(name, out, cap);
}

typedef struct group_list {
    trainer_groups *g;
    int n;
} group_list;

/* Appends groups with hyper-parameters `proto` covering every parameter flagged in `want`
 * while matching none flagged in `forbidden`. */
static int cover(group_list *L, const model_param *params, int n, const char *want, const char *forbidden,
                 const optim_group_spec *proto, octet_err *e)
{
    char *covered = calloc((size_t)n + 1, 1);
    if (!covered)
        return octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    int rc = OCTET_OK;
    for (int i = 0; i < n && rc == OCTET_OK; i++) {
        if (!want[i] || covered[i])
            continue;
        if (L->n >= OPTIM_MAX_GROUPS) {
            rc = octet_fail(e, OCTET_ERR_ARG, "optimizer.param_groups",
                            "too many groups once the no-decay groups are added (at most %d)", OPTIM_MAX_GROUPS);
            break;
        }
        char *m = L->g->match[L->n];
        pick_glob(params, n, i, forbidden, m, SPEC_MATCH_MAX);
        L->g->groups[L->n] = *proto;
        L->g->groups[L->n].match = m;
        L->n++;
        for (int j = 0; j < n; j++)
            if (want[j] && fnmatch(m, params[j].name, 0) == 0)
                covered[j] = 1;
    }
    free(covered);
    return rc;
}

/* Checks that every spec group matches at least one parameter. */
static int check_user_groups(const optim_config *user, const model_param *params, int n, octet_err *e)
{
    for (int g = 0; g < user->n_groups; g++) {
        int used = 0;
        for (int i = 0; i < n && !used; i++)
            used = fnmatch(user->groups[g].match, params[i].name, 0) == 0;
        if (!used) {
            char f[96];
            snprintf(f, sizeof f, "optimizer.param_groups[%d].match", g);
            return octet_fail(e, OCTET_ERR_ARG, f, "'%s' matches no parameter of the model (e.g. %s)",
                              user->groups[g].match, n ? params[0].name : "");
        }
    }
    return OCTET_OK;
}

/* Groups before the spec's: no_decay parameters caught by spec group g without its own wd. */
static int add_before(group_list *L, const optim_config *user, const model_param *params, int n, const int *first,
                      char *want, char *forbidden, octet_err *e)
{
    for (int g = 0; g < user->n_groups; g++) {
        if (user->groups[g].set & OPTIM_SET_WEIGHT_DECAY)
            continue;
        int any = 0;
        for (int i = 0; i < n; i++) {
            want[i] = first[i] == g && params[i].no_decay;
            forbidden[i] = !want[i];
            any |= want[i];
        }
        if (!any)
            continue;
        optim_group_spec proto = user->groups[g];
        proto.set |= OPTIM_SET_WEIGHT_DECAY;
        proto.hp.weight_decay = 0.0;
        int rc = cover(L, params, n, want, forbidden, &proto, e);
        if (rc)
            return rc;
    }
    return OCTET_OK;
}

int trainer_build_groups(const job_spec *spec, const model_param *params, int n, trainer_groups *out,
                         octet_err *e)
{
    memset(out, 0, sizeof *out);
    optim_config user;
    optim_group_spec user_groups[OPTIM_MAX_GROUPS];
    spec_optim_config(spec, &user, user_groups);
    int rc = check_user_groups(&user, params, n, e);
    int *first = calloc((size_t)n + 1, sizeof *first);
    char *want = calloc((size_t)n + 1, 1), *forbidden = calloc((size_t)n + 1, 1);
    if (rc == OCTET_OK && (!first || !want || !forbidden))
        rc = octet_fail(e, OCTET_ERR_NOMEM, "", "out of memory");
    group_list L = {out, 0};
    for (int i = 0; rc == OCTET_OK && i < n; i++)
        first[i] = first_user_match(&user, params[i].name);
    if (rc == OCTET_OK)
        rc = add_before(&L, &user, params, n, first, want, forbidden, e);
    out->n_before = L.n;
    for (int g = 0; rc == OCTET_OK && g < user.n_groups; g++) {
        if (L.n >= OPTIM_MAX_GROUPS) {
            rc = octet_fail(e, OCTET_ERR_ARG, "optimizer.param_groups", "too many groups (at most %d)", OPTIM_MAX_GROUPS);
            break;
        }
        snprintf(out->match[L.n], SPEC_MATCH_MAX, "%s", user.groups[g].match);
        out->groups[L.n] = user.groups[g];
        out->groups[L.n].match = out->match[L.n];
        L.n++;
    }
    out->n_user = user.n_groups;
    if (rc == OCTET_OK) {
        /* After the spec's groups only parameters no spec group caught are still unassigned. */
        for (int i = 0; i < n; i++) {
            want[i] = first[i] < 0 && params[i].no_decay;
            forbidden[i] = first[i] < 0 && !params[i].no_decay;
        }
        optim_group_spec proto;
        memset(&proto, 0, sizeof proto);
        proto.set = OPTIM_SET_WEIGHT_DECAY;
        rc = cover(&L, params, n, want, forbidden, &proto, e);
    }
    free(first);
    free(want);
    free(forbidden);
    out->cfg = user;
    out->cfg.n_groups = L.n;
    out->cfg.groups = L.n ? out->groups : NULL;
    return rc;
}
