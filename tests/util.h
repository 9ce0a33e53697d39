/* util.h — small helpers shared by dal's Check tests. Prefix: tu_. */
#ifndef DAL_TESTS_UTIL_H
#define DAL_TESTS_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh temporary directory for this process (created on first use,
 * removed at exit). */
const char *tu_tmpdir(void);
/* "<tmpdir>/<name>" in a malloc'd string. */
char *tu_path(const char *name);
/* Runs a shell command built from fmt; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command and returns its stdout and stderr together
 * (malloc'd); *status gets the exit status. */
char *tu_sh_output(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whole file in a malloc'd NUL-terminated buffer (NULL if unreadable);
 * *size gets the byte count if size is not NULL. */
char *tu_read_file(const char *path, size_t *size);
void tu_write_file(const char *path, const char *text);
/* max|a-b| / max(max|b|, tiny): the relative error used across dal's tests. */
double tu_rel_err(const float *a, const float *b, int64_t n);
/* Path of the built dalc binary (env DALC, else build/dalc). */
const char *tu_dalc(void);
/* Runs the suite with CK_ENV verbosity; returns the process exit status. */
int tu_run_suite(Suite *s);

#endif
