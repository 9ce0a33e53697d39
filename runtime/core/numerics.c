/* numerics.c — non-finite values: scans, switches, messages (see
 * numerics.h). */
#include "runtime/core/numerics.h"

#include "runtime/core/argv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool check_on, allow_on;

void rt_numerics_set_check(bool on) { check_on = on; }
bool rt_numerics_check(void) { return check_on; }
void rt_numerics_set_allow(bool on) { allow_on = on; }
bool rt_numerics_allow(void) { return allow_on; }

int64_t rt_nonfinite_count(const float *x, int64_t n, int64_t *first) {
  int64_t count = 0, at = -1;
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) {
      if (at < 0) at = i;
      count++;
    }
  if (first) *first = at;
  return count;
}

bool rt_all_finite(const float *x, int64_t n, int64_t *first) {
  /* A value is not finite when its exponent bits are all ones: an OR of
   * that test over a block vectorises, and only a block holding a bad
   * value is searched one by one. */
  enum { BLOCK = 4096 };
  for (int64_t b = 0; b < n; b += BLOCK) {
    int64_t m = n - b < BLOCK ? n - b : BLOCK;
    uint32_t bad = 0;
    for (int64_t i = 0; i < m; i++) {
      uint32_t u;
      memcpy(&u, x + b + i, sizeof u);
      bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    if (!bad) continue;
    for (int64_t i = 0; i < m; i++)
      if (!isfinite(x[b + i])) {
        if (first) *first = b + i;
        return false;
      }
  }
  if (first) *first = -1;
  return true;
}

void rt_numerics_take_flags(int *argc, char **argv, int first) {
  if (rt_argv_take(argc, argv, first, "--check-numerics")) rt_numerics_set_check(true);
  if (rt_argv_take(argc, argv, first, "--allow-nonfinite")) rt_numerics_set_allow(true);
}

char *rt_index_str(int rank, const int64_t *dim, int64_t index, char *buf, size_t size) {
  int64_t pos[RT_MAX_RANK] = {0}, rest = index;
  for (int d = rank - 1; d >= 0; d--) {
    pos[d] = dim[d] ? rest % dim[d] : 0;
    rest = dim[d] ? rest / dim[d] : 0;
  }
  return rt_shape_str(rank, pos, buf, size);
}

int rt_numerics_fail(RtErr *e, const char *src, const char *calls, bool backward, const char *op, const char *detail,
                     const char *entry, const char *buf, int rank, const int64_t *dim, int64_t index, float v) {
  char at[160], shape[160], where[600] = "", more[400] = "", via[400] = "";
  rt_index_str(rank, dim, index, at, sizeof at);
  rt_shape_str(rank, dim, shape, sizeof shape);
  if (src && *src) snprintf(where, sizeof where, "%s: ", src);
  if (detail && *detail) snprintf(more, sizeof more, " (%s)", detail);
  if (calls && *calls) snprintf(via, sizeof via, "; called from %s", calls);
  return rt_err(e, "%snon-finite value: %sop '%s'%s of entry '%s' wrote %g to element %s of %s %s%s", where,
                backward ? "in the gradient of the op at this line, " : "", op ? op : "?", more,
                entry ? entry : "?", (double)v, at, buf ? buf : "a buffer", shape, via);
}

int rt_numerics_check_loaded(const char *what, const RtTensor *t, RtErr *e) {
  if (t->dtype != RT_F32 || allow_on) return 0;
  int64_t first, n = rt_tensor_numel(t);
  if (rt_all_finite(rt_f32(t), n, &first)) return 0;
  int64_t count = rt_nonfinite_count(rt_f32(t), n, NULL);
  char at[160];
  rt_index_str(t->rank, t->dim, first, at, sizeof at);
  return rt_err(e, "%s holds %lld non-finite value%s (element %s is %g); --allow-nonfinite accepts it", what,
                (long long)count, count == 1 ? "" : "s", at, (double)rt_f32(t)[first]);
}

int rt_numerics_check_input(const char *name, const char *path, const RtTensor *t, RtErr *e) {
  char what[1200];
  snprintf(what, sizeof what, "input '%s' (%s)", name, path);
  return rt_numerics_check_loaded(what, t, e);
}

/* The (file, tensor) pairs warned about: a checkpoint rewritten every K
 * steps warns about each of its tensors once, not at every write. */
static char **warned;
static int nwarned, capwarned;

static bool warned_before(const char *file, const char *name) {
  char key[2200];
  snprintf(key, sizeof key, "%s\n%s", file, name ? name : "");
  for (int i = 0; i < nwarned; i++)
    if (strcmp(warned[i], key) == 0) return true;
  if (nwarned == capwarned) {
    int cap = capwarned ? 2 * capwarned : 64;
    char **grown = realloc(warned, sizeof *grown * (size_t)cap);
    if (!grown) return false;
    warned = grown;
    capwarned = cap;
  }
  char *copy = strdup(key);
  if (copy) warned[nwarned++] = copy;
  return false;
}

int64_t rt_numerics_warn_written(const char *file, const char *name, const RtTensor *t) {
  if (t->dtype != RT_F32) return 0;
  int64_t first, n = rt_tensor_numel(t);
  if (rt_all_finite(rt_f32(t), n, &first) || warned_before(file, name)) return 0;
  int64_t count = rt_nonfinite_count(rt_f32(t), n, NULL);
  char at[160];
  rt_index_str(t->rank, t->dim, first, at, sizeof at);
  char what[600] = "";
  if (name) snprintf(what, sizeof what, " '%s'", name);
  fprintf(stderr, "warning: %s:%s written with %lld non-finite value%s of %lld (element %s is %g)\n", file, what,
          (long long)count, count == 1 ? "" : "s", (long long)n, at, (double)rt_f32(t)[first]);
  return count;
}
