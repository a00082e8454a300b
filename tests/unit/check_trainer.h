/* check_trainer.h: the trainer's Check suites (spec parsing, the loop's pieces and its
 * determinism and resume, real learning, the device-independent parts of GPU jobs, memory
 * estimates and admission) and the helpers they share; run_trainer.c runs them. */
#ifndef OCTET_CHECK_TRAINER_H
#define OCTET_CHECK_TRAINER_H

#include <check.h>
#include "train/spec.h"
#include "train/trainer.h"

Suite *suite_trainer_spec(void);
Suite *suite_trainer_loop(void);
Suite *suite_trainer_learn(void);
Suite *suite_trainer_gpujob(void);   /* check_trainer_gpujob.c: loss scaler, devices, memory cap */
Suite *suite_trainer_estimate(void); /* check_trainer_estimate.c: estimates against runs, admission */

/* Parses JSON text into *s, failing the test (with the error) when it does not parse. */
void tr_parse_ok(const char *json, job_spec *s);

#endif
