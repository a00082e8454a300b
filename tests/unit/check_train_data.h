/* check_train_data.h: what the training-data suites (check_train_data_*.c, run by
 * run_train_data.c) share: their constructors and a few file helpers. */
#ifndef OCTET_CHECK_TRAIN_DATA_H
#define OCTET_CHECK_TRAIN_DATA_H

#include <check.h>
#include <stddef.h>

Suite *suite_safetensors(void);
Suite *suite_tokenizer(void);
Suite *suite_dataset(void);

/* A fresh directory under $TMPDIR (or /tmp); the path is static storage per call site's
 * buffer. Fails the test when it cannot be made. */
void td_tmpdir(char *out, size_t cap);
/* Writes n bytes to dir/name and returns the full path in out. */
void td_write(const char *dir, const char *name, const void *data, size_t n, char *out, size_t cap);
/* "$OCTET_SRCDIR/tests/data/<name>" into out. */
void td_data(const char *name, char *out, size_t cap);
/* Non-zero when /usr/bin/python3 can import the given module. */
int td_python_has(const char *module);
/* Runs a shell command; returns its exit status (-1 when it could not run). */
int td_run(const char *cmd);
/* Removes dir and its files (one level of subdirectories). */
void td_rmtree(const char *dir);

#endif
