/* loss_scale.h: dynamic loss scaling for fp16 training, with the rules and defaults of
 * torch.cuda.amp.GradScaler (torch.amp.GradScaler("cuda")).
 *
 * The scaler holds a scale S (init_scale 65536 = 2^16) and a count of consecutive good steps.
 * Each optimizer step: the loss gradient is multiplied by S (the backward pass gets dloss * S),
 * the gradients are unscaled (multiplied by the float inv_scale = (float)(1.0 / S), as GradScaler's
 * unscale_ does) before clipping, and loss_scale_update() is told whether any gradient element was
 * not finite:
 *  - found_inf: the optimizer step is skipped, S *= backoff_factor (0.5), the count restarts;
 *  - else the step is applied and the count grows; when it reaches growth_interval (2000),
 *    S *= growth_factor (2.0) unless that would not be finite, and the count restarts.
 * This is torch's _amp_update_scale_ exactly, in the same float32 arithmetic (the scale is a
 * float tensor there). The scaler is device-independent (plain host arithmetic); the trainer
 * feeds it the finiteness of the gradient norm. A disabled scaler (bf16, fp32) has scale 1 and
 * never skips. */
#ifndef OCTET_TRAIN_LOSS_SCALE_H
#define OCTET_TRAIN_LOSS_SCALE_H

#include <stdint.h>

#define LOSS_SCALE_INIT 65536.0f
#define LOSS_SCALE_GROWTH 2.0f
#define LOSS_SCALE_BACKOFF 0.5f
#define LOSS_SCALE_INTERVAL 2000

typedef struct loss_scaler {
    int enabled;              /* 0: scale stays 1, no step is ever skipped */
    float scale;              /* S, the multiplier of the loss gradient */
    float growth_factor;      /* 2.0 */
    float backoff_factor;     /* 0.5 */
    int growth_interval;      /* 2000 */
    int growth_tracker;       /* consecutive good steps since the scale last changed */
    int64_t skipped;          /* optimizer steps skipped so far (for logs and tests) */
} loss_scaler;

/* A scaler with GradScaler's defaults (enabled = 1) or a disabled one (enabled = 0). */
void loss_scale_init(loss_scaler *s, int enabled);
/* The factor to multiply the loss gradient by: S, or 1 when disabled. */
float loss_scale_factor(const loss_scaler *s);
/* The factor that unscales the gradients: (float)(1.0 / S), or 1 when disabled. */
float loss_scale_inv(const loss_scaler *s);
/* After a step's gradients were checked: returns 1 when the optimizer step must be skipped
 * (found_inf on an enabled scaler), else 0; updates S and the tracker as above. */
int loss_scale_update(loss_scaler *s, int found_inf);

#endif
