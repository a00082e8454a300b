/* ops.c: the device-independent side of the ops: choosing a device's ops table, and gradient
 * clipping by global norm built from the table's sumsq and scale entries.
 *
 * This is the one place in kernels/ops that knows whether a CUDA twin exists. The CUDA twin is
 * referenced when the build defines OCTET_OPS_CUDA, which Makefile.am sets for every CUDA build
 * (the *_cuda.cu files of kernels/ops); a CPU-only build never references it. */
#include "config.h"
#include "ops.h"

#include <math.h>

const ops_table *ops_for(device *d)
{
    if (!d)
        return NULL;
    if (device_kind(d) == OCTET_DEV_CPU)
        return ops_table_cpu();
#if defined(HAVE_CUDA) && defined(OCTET_OPS_CUDA)
    if (device_kind(d) == OCTET_DEV_CUDA)
        return ops_table_cuda();
#endif
    return NULL;
}

int ops_clip_grad_norm(device *d, float *const *grads, const int64_t *n, int count, double max_norm,
                       double *total_norm)
{
    const ops_table *ops = ops_for(d);
    if (!ops)
        return OCTET_ERR_NODEV;
    if (count < 0 || (count > 0 && (!grads || !n)))
        return OCTET_ERR_ARG;
    double ss = 0.0;
    int rc = ops->sumsq(d, &ss, (const float *const *)grads, n, count);
    if (rc != OCTET_OK)
        return rc;
    double total = sqrt(ss);
    if (total_norm)
        *total_norm = total;
    if (!(max_norm > 0.0) || !isfinite(total))
        return OCTET_OK;
    /* torch: clip_coef = max_norm / (total + 1e-6), applied when < 1. */
    double coef = max_norm / (total + 1e-6);
    if (coef >= 1.0)
        return OCTET_OK;
    for (int i = 0; i < count; i++) {
        if (n[i] <= 0 || !grads[i])
            continue;
        rc = ops->scale(d, grads[i], n[i], (float)coef);
        if (rc != OCTET_OK)
            return rc;
    }
    return OCTET_OK;
}
