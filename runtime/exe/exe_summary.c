/* exe_summary.c — rt_exe_summarise: the one-line summary of an output that
 * `run` (exe_run.c) and `dalc run` (tools/cmd_run.c) print. */
#include <math.h>
#include <stdio.h>

#include "runtime/exe/exe.h"

void rt_exe_summarise(FILE *out, const char *name, const RtTensor *t) {
  char shape[160] = "";
  if (t->rank) rt_shape_str(t->rank, t->dim, shape, sizeof shape);
  int64_t n = rt_tensor_numel(t);
  fprintf(out, "%s: %s%s", name, rt_dtype_name(t->dtype), shape);
  if (n == 0) {
    fputs("  (empty)\n", out);
    return;
  }
  if (n == 1) {
    if (t->dtype == RT_I32) fprintf(out, " = %d\n", rt_i32(t)[0]);
    else fprintf(out, " = %.9g\n", rt_f32(t)[0]);
    return;
  }
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = t->dtype == RT_I32 ? rt_i32(t)[i] : rt_f32(t)[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    sum += v;
  }
  fprintf(out, "  min %.6g  max %.6g  mean %.6g\n", lo, hi, sum / (double)n);
}
