/* loss_scale.c: GradScaler's dynamic loss scaling (loss_scale.h). No failure modes: every
 * function is plain arithmetic on the struct. */
#include "config.h"
#include "train/loss_scale.h"

#include <math.h>

void loss_scale_init(loss_scaler *s, int enabled)
{
    s->enabled = enabled != 0;
    s->scale = enabled ? LOSS_SCALE_INIT : 1.0f;
    s->growth_factor = LOSS_SCALE_GROWTH;
    s->backoff_factor = LOSS_SCALE_BACKOFF;
    s->growth_interval = LOSS_SCALE_INTERVAL;
    s->growth_tracker = 0;
    s->skipped = 0;
}

float loss_scale_factor(const loss_scaler *s) { return s->enabled ? s->scale : 1.0f; }

/* GradScaler.unscale_: inv_scale = self._scale.double().reciprocal().float() */
float loss_scale_inv(const loss_scaler *s) { return s->enabled ? (float)(1.0 / (double)s->scale) : 1.0f; }

int loss_scale_update(loss_scaler *s, int found_inf)
{
    if (!s->enabled)
        return 0;
    /* torch's _amp_update_scale_ (aten/src/ATen/native/cuda/AmpKernels.cu), in float32 */
    if (found_inf) {
        s->scale = s->scale * s->backoff_factor;
        s->growth_tracker = 0;
        s->skipped++;
        return 1;
    }
    int successful = s->growth_tracker + 1;
    if (successful == s->growth_interval) {
        float grown = s->scale * s->growth_factor;
        if (isfinite(grown))
            s->scale = grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker = successful;
    }
    return 0;
}
