/* loss_cpu.c: the CPU twin of the classification and regression losses: cross-entropy from
 * logits with integer labels (torch.nn.CrossEntropyLoss, mean reduction, samples with a label
 * outside [0,C) ignored as torch's ignore_index -100 is) and mean squared error (HF's
 * num_labels == 1 regression).
 *
 * Batches are small (B rows of a handful of classes), so rows run serially; the mean is summed
 * in double in row order. NaN propagates as in PyTorch: a NaN logit makes its row's loss and
 * gradient NaN (an ignored row's gradient too, torch's 0 x softmax), and the prediction is
 * torch.argmax's, which takes NaN for the largest value (ops_argmax_row). The losses are
 * written to device memory like every other output so that the CUDA twin has the same
 * contract; the caller downloads the one float it logs. */
#include "config.h"
#include "ops_cpu.h"
#include "ops_math.h"

#include <math.h>

/* max and log-sum-exp of one row of logits (C). */
static float row_logsumexp(const float *x, int C, float *max_out)
{
    float mx = x[0];
    for (int c = 1; c < C; c++)
        mx = x[c] > mx ? x[c] : mx;
    double s = 0.0;
    for (int c = 0; c < C; c++)
        s += expf(x[c] - mx);
    *max_out = mx;
    return mx + (float)log(s);
}

int crossentropy_forward_cpu(device *d, float *losses, float *loss, int *pred, const float *logits,
                             const int *labels, int B, int C)
{
    (void)d;
    if (!OPS_DIMS_OK2(B, C) || !logits || ((losses || loss) && !labels))
        return OCTET_ERR_ARG;
    double sum = 0.0;
    int counted = 0;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (int64_t)b * C; /* (C) */
        if (pred)
            pred[b] = ops_argmax_row(x, C);
        if (!labels)
            continue;
        int y = labels[b];
        float mx, l = 0.0f;
        if (y >= 0 && y < C) {
            l = row_logsumexp(x, C, &mx) - x[y];
            sum += l;
            counted++;
        }
        if (losses)
            losses[b] = l;
    }
    if (loss)
        loss[0] = counted ? (float)(sum / counted) : 0.0f;
    return OCTET_OK;
}

int crossentropy_backward_cpu(device *d, float *dlogits, const float *logits, const int *labels, int B,
                              int C, float dloss)
{
    (void)d;
    if (!OPS_DIMS_OK2(B, C) || !dlogits || !logits || !labels)
        return OCTET_ERR_ARG;
    int counted = 0;
    for (int b = 0; b < B; b++)
        counted += labels[b] >= 0 && labels[b] < C;
    float g = counted ? dloss / (float)counted : 0.0f; /* gradient of each counted sample's loss */
    for (int b = 0; b < B; b++) {
        const float *x = logits + (int64_t)b * C; /* (C) */
        float *dx = dlogits + (int64_t)b * C;     /* (C) */
        int y = labels[b];
        float mx, lse = row_logsumexp(x, C, &mx);
        if (y < 0 || y >= C) { /* 0 x the softmax: 0, or NaN where the row is not finite, as torch */
            for (int c = 0; c < C; c++)
                dx[c] = 0.0f * expf(x[c] - lse);
            continue;
        }
        for (int c = 0; c < C; c++)
            dx[c] = g * (expf(x[c] - lse) - (c == y ? 1.0f : 0.0f));
    }
    return OCTET_OK;
}

int mse_forward_cpu(device *d, float *losses, float *loss, const float *pred, const float *target, int B)
{
    (void)d;
    if (B <= 0 || !pred || !target)
        return OCTET_ERR_ARG;
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
        float e = pred[b] - target[b];
        if (losses)
            losses[b] = e * e;
        sum += (double)e * e;
    }
    if (loss)
        loss[0] = (float)(sum / B);
    return OCTET_OK;
}

int mse_backward_cpu(device *d, float *dpred, const float *pred, const float *target, int B, float dloss)
{
    (void)d;
    if (B <= 0 || !dpred || !pred || !target)
        return OCTET_ERR_ARG;
    float g = 2.0f * dloss / (float)B;
    for (int b = 0; b < B; b++)
        dpred[b] = g * (pred[b] - target[b]);
    return OCTET_OK;
}
