/* estimate_check.h: a job spec estimated and then run on a device, every figure of the estimate
 * compared with the run's ledger (shared by check_trainer_estimate.c on the CPU and
 * check_train_estimate_device.c on CUDA). */
#ifndef OCTET_ESTIMATE_CHECK_H
#define OCTET_ESTIMATE_CHECK_H

#include "train/estimate.h"

/* Parses `json` (a spec of one epoch of at least two optimizer steps), estimates it
 * (trainer_estimate_spec) for `device` with the in-memory sets train and eval when train is not
 * NULL (else the spec's dataset), runs it there (trainer_open, trainer_train) and asserts
 * that parameters, weights, gradients, the optimizer state (codes, absmax, maps, fp32, total
 * and the ledger's category), the activations' and the workspace's peaks and the ledger's peak
 * equal the estimate's exactly, the peak already at open, and for DistilBERT that the run's
 * sequence length is the estimate's. Prints one line; returns the estimate. */
trainer_estimate estimate_vs_run_on(const char *label, const char *json, const char *device,
                                    const octet_dataset *train, const octet_dataset *eval);

#endif
