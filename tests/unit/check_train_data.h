/* check_train_data.h: what the training-data suites (check_train_data_*.c, run by
 * run_train_data.c) share: their constructors and a few file and process helpers (the scratch
 * directories are testlib.h's). */
#ifndef OCTET_CHECK_TRAIN_DATA_H
#define OCTET_CHECK_TRAIN_DATA_H

#include <check.h>
#include <stddef.h>

Suite *suite_safetensors(void);
Suite *suite_tokenizer(void);
Suite *suite_dataset(void);

/* "$OCTET_SRCDIR/tests/data/<name>" into out. */
void td_data(const char *name, char *out, size_t cap);
/* Non-zero when /usr/bin/python3 can import the given module. */
int td_python_has(const char *module);
/* Runs a shell command; returns its exit status (-1 when it could not run). */
int td_run(const char *cmd);

#endif
