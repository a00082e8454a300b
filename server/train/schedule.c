/* schedule.c: learning-rate schedules (Transformers' get_*_schedule_with_warmup) and the
 * accuracy / F1 of an evaluation (scikit-learn's definitions); see schedule.h. */
#include "config.h"
#include "train/schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double max1(int64_t x) { return x > 1 ? (double)x : 1.0; }

double sched_lr_lambda(spec_sched kind, int64_t step, int64_t total, int64_t warmup)
{
    if (step < 0)
        step = 0;
    if (warmup < 0)
        warmup = 0;
    if (step < warmup)
        return (double)step / max1(warmup);
    switch (kind) {
    case SPEC_SCHED_CONSTANT:
        return 1.0;
    case SPEC_SCHED_COSINE: {
        double p = (double)(step - warmup) / max1(total - warmup);
        double v = 0.5 * (1.0 + cos(M_PI * p));
        return v > 0.0 ? v : 0.0;
    }
    case SPEC_SCHED_LINEAR:
    default: {
        double v = (double)(total - step) / max1(total - warmup);
        return v > 0.0 ? v : 0.0;
    }
    }
}

int64_t sched_warmup_steps(const spec_training *t, int64_t total)
{
    if (!t->warmup_is_ratio)
        return t->warmup_steps;
    return (int64_t)ceil((double)total * t->warmup_ratio);
}

int64_t sched_steps_per_epoch(int64_t n_batches, int accum)
{
    if (accum < 1)
        accum = 1;
    return (n_batches + accum - 1) / accum;
}

/* ------------------------------------------------------------------ metrics */

int metric_init(metric_counts *m, int num_classes)
{
    memset(m, 0, sizeof *m);
    if (num_classes < 1)
        return OCTET_ERR_ARG;
    m->num_classes = num_classes;
    m->tp = calloc((size_t)num_classes, sizeof *m->tp);
    m->fp = calloc((size_t)num_classes, sizeof *m->fp);
    m->fn = calloc((size_t)num_classes, sizeof *m->fn);
    if (!m->tp || !m->fp || !m->fn) {
        metric_free(m);
        return OCTET_ERR_NOMEM;
    }
    return OCTET_OK;
}

void metric_free(metric_counts *m)
{
    free(m->tp);
    free(m->fp);
    free(m->fn);
    memset(m, 0, sizeof *m);
}

void metric_reset(metric_counts *m)
{
    size_t bytes = (size_t)m->num_classes * sizeof *m->tp;
    m->n = m->correct = 0;
    memset(m->tp, 0, bytes);
    memset(m->fp, 0, bytes);
    memset(m->fn, 0, bytes);
}

void metric_add(metric_counts *m, const int32_t *labels, const int32_t *pred, int B)
{
    for (int b = 0; b < B; b++) {
        int y = labels[b], p = pred[b];
        if (y < 0 || y >= m->num_classes)
            continue;
        m->n++;
        if (p == y) {
            m->correct++;
            m->tp[y]++;
            continue;
        }
        m->fn[y]++;
        if (p >= 0 && p < m->num_classes)
            m->fp[p]++;
    }
}

double metric_accuracy(const metric_counts *m) { return m->n ? (double)m->correct / (double)m->n : 0.0; }

static double f1_of(const metric_counts *m, int c)
{
    int64_t den = 2 * m->tp[c] + m->fp[c] + m->fn[c];
    return den ? 2.0 * (double)m->tp[c] / (double)den : 0.0;
}

double metric_f1(const metric_counts *m)
{
    if (m->num_classes == 2)
        return f1_of(m, 1);
    double sum = 0.0;
    int present = 0;
    for (int c = 0; c < m->num_classes; c++) {
        /* a class occurs in the labels (tp + fn) or the predictions (tp + fp) */
        if (m->tp[c] + m->fn[c] + m->fp[c] == 0)
            continue;
        sum += f1_of(m, c);
        present++;
    }
    return present ? sum / present : 0.0;
}
