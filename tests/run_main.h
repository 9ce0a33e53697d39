/* run_main.h — running an executable's command line (rt_main) inside a
 * test, with its output captured. Prefix: tu_. */
#ifndef DAL_TESTS_RUN_MAIN_H
#define DAL_TESTS_RUN_MAIN_H

#include "runtime/sched/program.h"

/* rt_main(p) on the command line fmt (split at spaces; argv[0] "fake").
 * Its stdout goes to *out and its stderr to *err (malloc'd texts; either
 * pointer may be NULL to drop it; out == err: both into one text).
 * Returns rt_main's status. */
int tu_run_main(RtProgram *p, char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
