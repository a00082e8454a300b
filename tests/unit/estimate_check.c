/* estimate_check.c: one spec estimated and then run, every figure compared (estimate_check.h). */
#include "config.h"
#include "estimate_check.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define EQ(what, est, run) \
    ck_assert_msg((size_t)(est) == (size_t)(run), "%s: %s: estimate %zu, run %zu", label, what, (size_t)(est), \
                  (size_t)(run))

trainer_estimate estimate_vs_run_on(const char *label, const char *json, const char *device,
                                    const octet_dataset *train, const octet_dataset *eval)
{
    job_spec s;
    octet_err e;
    octet_err_clear(&e);
    ck_assert_msg(spec_parse_text(json, 0, &s, &e) == OCTET_OK, "%s: spec refused: %s: %s", label, e.field, e.message);
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = device;
    o.train_data = train;
    o.eval_data = eval;
    trainer_estimate est;
    ck_assert_msg(trainer_estimate_spec(&s, &o, &est, &e) == OCTET_OK, "%s: estimate refused: %s: %s", label,
                  e.field, e.message);
    trainer *t = NULL;
    ck_assert_msg(trainer_open(&s, &o, &t, &e) == OCTET_OK, "%s: %s: %s", label, e.field, e.message);
    trainer_memory open_mem;
    trainer_memory_get(t, &open_mem);
    const trainer_info *info = trainer_get_info(t);
    if (s.model.arch == SPEC_ARCH_DISTILBERT) /* the bound is reached: like is compared with like */
        ck_assert_msg(info->max_len == est.max_length, "%s: the run's sequences are %d tokens, the estimate's %d",
                      label, info->max_len, est.max_length);
    ck_assert_int_eq(info->num_labels, est.num_labels);
    trainer_result r;
    ck_assert_msg(trainer_train(t, &r, &e) == OCTET_OK, "%s: %s", label, e.message);
    ck_assert_int_ge(r.global_step, 2);
    const trainer_memory *m = &r.memory;
    ck_assert_str_eq(est.device, m->device);
    EQ("parameters", est.n_parameters, m->n_parameters);
    EQ("weights", est.params_bytes, m->params_bytes);
    EQ("gradients", est.grads_bytes, m->grads_bytes);
    EQ("state codes", est.optimizer_state.codes, m->optimizer_state.codes);
    EQ("state absmax", est.optimizer_state.absmax, m->optimizer_state.absmax);
    EQ("state maps", est.optimizer_state.maps, m->optimizer_state.maps);
    EQ("state fp32", est.optimizer_state.fp32, m->optimizer_state.fp32);
    EQ("state total", est.optimizer_state.total, m->optimizer_state.total);
    EQ("state in the ledger", est.optimizer_state.total, m->optimizer_state_bytes);
    EQ("activations", est.activations_bytes, m->activations_peak);
    EQ("workspace", est.workspace_bytes, m->workspace_peak);
    EQ("peak", est.peak_bytes, m->peak_total);
    EQ("8-bit rule", est.adam8bit_rule_bytes, m->adam8bit_estimate_bytes);
    EQ("adamw", est.adamw_bytes, m->adamw_bytes);
    EQ("peak at open", est.peak_bytes, open_mem.peak_total); /* nothing is allocated after open */
    printf("estimate %-4s %-28s %10lld params, state %9zu, activations %10zu, workspace %6zu, peak %10zu: exact\n",
           device, label, (long long)est.n_parameters, est.optimizer_state.total, est.activations_bytes,
           est.workspace_bytes, est.peak_bytes);
    trainer_close(t);
    return est;
}
