/* blas_core.c — see blas_core.h. */
#include "runtime/sched/blas_core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *rt_blas_better_core(void) {
  const char *set = getenv("OPENBLAS_CORETYPE");
  if (set && *set) return NULL;
  const char *core = openblas_get_corename();
  if (!core || strcmp(core, "Prescott") != 0) return NULL;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}

void rt_blas_fix_core(char **argv) {
  const char *core = rt_blas_better_core();
  if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on as loaded */
}
