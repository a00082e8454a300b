/* check_trainer_learn.c: short real-learning runs through the whole runner (data loading,
 * tokenizer, model, optimizer, schedule, evaluation): the 784-256-128-100 MLP on a
 * Fashion-MNIST subset with adamw and with adamw8bit, and a tiny DistilBERT on a subset of
 * the fortunes-lang text set. Each asserts that the training loss falls and that the eval
 * accuracy clearly beats chance (10 classes: 0.1; 6 languages: 0.167). PyTorch with the same
 * settings reaches about 0.68 on the MLP subset (bench/train_torch.py has the modules). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "check_trainer.h"

typedef struct learn_log {
    double first_loss;   /* the first logged training loss */
    int n_logs;
    trainer_epoch_metrics epochs[8];
    int n_epochs;
} learn_log;

static int on_step(void *u, const trainer_step_log *s)
{
    learn_log *l = u;
    if (!l->n_logs++)
        l->first_loss = s->loss;
    return 0;
}

static int on_epoch(void *u, const trainer_epoch_metrics *m)
{
    learn_log *l = u;
    if (l->n_epochs < 8)
        l->epochs[l->n_epochs++] = *m;
    fprintf(stderr, "  epoch %d: train_loss %.4f eval_loss %.4f eval_accuracy %.4f eval_f1 %.4f (%.1f samples/s)\n",
            m->epoch, m->train_loss, m->eval_loss, m->eval_accuracy, m->eval_f1, m->train_samples_per_s);
    return 0;
}

static void learn(const char *json, double min_accuracy, double loss_ratio)
{
    job_spec s;
    tr_parse_ok(json, &s);
    learn_log l;
    memset(&l, 0, sizeof l);
    trainer_options o;
    memset(&o, 0, sizeof o);
    o.device = "cpu";
    o.cb.user = &l;
    o.cb.on_step = on_step;
    o.cb.on_epoch = on_epoch;
    trainer_result r;
    octet_err e;
    fprintf(stderr, "%s\n", json);
    ck_assert_msg(trainer_run(&s, &o, &r, &e) == OCTET_OK, "%s: %s", e.field, e.message);
    ck_assert_int_eq(l.n_epochs, s.training.epochs);
    const trainer_epoch_metrics *last = &l.epochs[l.n_epochs - 1];
    ck_assert_msg(last->train_loss < loss_ratio * l.first_loss, "loss did not fall: first %g, last epoch %g",
                  l.first_loss, last->train_loss);
    ck_assert_msg(last->train_loss < l.epochs[0].train_loss, "epoch losses %g -> %g", l.epochs[0].train_loss,
                  last->train_loss);
    ck_assert_msg(last->eval_accuracy > min_accuracy, "eval accuracy %g, want > %g", last->eval_accuracy,
                  min_accuracy);
    ck_assert(last->eval_f1 > 0.0 && last->eval_f1 <= 1.0);
}

static const char *FASHION =
    "{\"model\": {\"arch\": \"mlp\", \"hidden\": [256, 128, 100]},"
    " \"dataset\": {\"name\": \"fashion-mnist\", \"train_limit\": 2000, \"eval_limit\": 1000},"
    " \"optimizer\": {\"name\": \"%s\", \"lr\": 1e-3, \"weight_decay\": 0.01},"
    " \"training\": {\"epochs\": 2, \"batch_size\": 32, \"eval_batch_size\": 100, \"seed\": 7, \"log_every\": 5}}";

START_TEST(test_fashion_adamw)
{
    char json[1024];
    snprintf(json, sizeof json, FASHION, "adamw");
    learn(json, 0.55, 0.5);
}
END_TEST

START_TEST(test_fashion_adamw8bit)
{
    char json[1024];
    snprintf(json, sizeof json, FASHION, "adamw8bit");
    learn(json, 0.55, 0.5);
}
END_TEST

START_TEST(test_fortunes_distilbert)
{
    learn("{\"model\": {\"arch\": \"distilbert\", \"preset\": \"distilbert-tiny\", \"dropout\": 0},"
          " \"dataset\": {\"name\": \"fortunes-lang\", \"max_length\": 48, \"train_limit\": 1500, \"eval_limit\": 300},"
          " \"optimizer\": {\"name\": \"adamw\", \"lr\": 2e-3, \"weight_decay\": 0.01},"
          " \"training\": {\"epochs\": 2, \"batch_size\": 16, \"eval_batch_size\": 50, \"seed\": 3,"
          " \"warmup_steps\": 0.1, \"log_every\": 5}}",
          0.4, 0.8);
}
END_TEST

Suite *suite_trainer_learn(void)
{
    Suite *s = suite_create("trainer_learn");
    TCase *tc = tcase_create("learn");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fashion_adamw);
    tcase_add_test(tc, test_fashion_adamw8bit);
    tcase_add_test(tc, test_fortunes_distilbert);
    suite_add_tcase(s, tc);
    return s;
}
