/* checkpoint_init.c — `--init PREFIX=FILE`: parameters of one part of a
 * model (the dVAE inside DALL-E, say) from another model's file (see
 * checkpoint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/checkpoint.h"
#include "runtime/io/safetensors.h"

int rt_init_from_add(RtInitFrom *l, const char *arg, RtErr *e) {
  if (l->n == RT_INIT_MAX) return rt_err(e, "too many --init flags (at most %d)", RT_INIT_MAX);
  RtInitFile *f = &l->file[l->n];
  const char *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : 0;
  if (len > 0 && arg[len - 1] == '.') len--;
  if (len >= sizeof f->prefix) return rt_err(e, "--init %s: the prefix is too long", arg);
  f->path = eq ? eq + 1 : arg;
  if (!*f->path) return rt_err(e, "--init needs PREFIX=FILE.safetensors (or =FILE, or FILE), got '%s'", arg);
  memcpy(f->prefix, arg, len);
  f->prefix[len] = 0;
  l->n++;
  return 0;
}

void rt_init_from_describe(const RtInitFrom *l, char *buf, size_t size) {
  size_t at = 0;
  buf[0] = 0;
  for (int i = 0; i < l->n && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, "%s%s=%s", i ? ";" : "", l->file[i].prefix, l->file[i].path);
}

/* The state index of parameter 'prefix.name' (or 'name'), or -1. */
static int find_param(const RtProgram *p, const char *prefix, const char *name) {
  size_t lp = strlen(prefix);
  for (int i = 0; i < p->nparam; i++) {
    const char *s = p->state->name[i];
    if (lp == 0 ? strcmp(s, name) == 0 : strncmp(s, prefix, lp) == 0 && s[lp] == '.' && strcmp(s + lp + 1, name) == 0)
      return i;
  }
  return -1;
}

static bool under(const char *name, const char *prefix) {
  size_t lp = strlen(prefix);
  return lp == 0 || (strncmp(name, prefix, lp) == 0 && name[lp] == '.');
}

/* The optimizer's state and the EMA of a training checkpoint: skipped. */
static bool is_opt(const char *name) { return strncmp(name, "opt.", 4) == 0 || strncmp(name, "ema.", 4) == 0; }

/* Checks file k against the program; marks the parameters it sets in
 * src[] (which file sets each, -1: none yet) and source[] (the file's
 * tensor for each). */
static int check_file(const RtProgram *p, const RtInitFrom *l, int k, const RtTensorList *t, int *src,
                      const RtTensor **source, RtErr *e) {
  const RtInitFile *f = &l->file[k];
  int set = 0, skipped = 0, kept = 0;
  char want[128], got[128];
  for (int j = 0; j < t->n; j++) {
    const char *name = t->name[j];
    if (is_opt(name)) continue;
    int i = find_param(p, f->prefix, name);
    if (i < 0) {
      if (l->partial) {
        skipped++;
        continue;
      }
      return rt_err(e, "--init %s: tensor '%s' has no parameter '%s%s%s' in model '%s' (--init-partial skips such "
                       "tensors)", f->path, name, f->prefix, *f->prefix ? "." : "", name, p->model);
    }
    const RtTensor *s = p->state->tensor[i], *x = t->tensor[j];
    bool same = s->dtype == x->dtype && s->rank == x->rank;
    for (int d = 0; same && d < s->rank; d++) same = s->dim[d] == x->dim[d];
    if (!same)
      return rt_err(e, "--init %s: tensor '%s' is %s%s but parameter '%s' of model '%s' is %s%s", f->path, name,
                    rt_dtype_name(x->dtype), rt_shape_str(x->rank, x->dim, got, sizeof got), p->state->name[i],
                    p->model, rt_dtype_name(s->dtype), rt_shape_str(s->rank, s->dim, want, sizeof want));
    if (src[i] >= 0)
      return rt_err(e, "--init: parameter '%s' is set by both %s and %s", p->state->name[i], l->file[src[i]].path,
                    f->path);
    src[i] = k;
    source[i] = x;
    set++;
  }
  if (set == 0)
    return rt_err(e, "--init %s: no tensor of the file is a parameter of model '%s' under '%s' (is the prefix right?)",
                  f->path, p->model, *f->prefix ? f->prefix : "(no prefix)");
  for (int i = 0; i < p->nparam; i++) {
    if (src[i] == k || !under(p->state->name[i], f->prefix)) continue;
    if (src[i] >= 0) continue; /* set by an earlier file */
    if (l->partial) {
      kept++;
      continue;
    }
    return rt_err(e, "--init %s: parameter '%s' of model '%s' is not in the file (as '%s'; --init-partial keeps the "
                     "values it has)", f->path, p->state->name[i], p->model,
                  p->state->name[i] + (*f->prefix ? strlen(f->prefix) + 1 : 0));
  }
  if (skipped || kept)
    fprintf(stderr, "--init %s: %d parameters set; %d tensors without a parameter skipped, %d parameters under '%s' "
                    "left as they were\n", f->path, set, skipped, kept, f->prefix);
  return 0;
}

int rt_init_from_apply(RtProgram *p, const RtInitFrom *l, RtErr *e) {
  if (l->n == 0) return 0;
  RtTensorList *lists[RT_INIT_MAX] = {NULL};
  int *src = malloc(sizeof *src * (size_t)(p->nparam + 1));
  const RtTensor **source = calloc((size_t)p->nparam + 1, sizeof *source);
  int rc = -1;
  if (!src || !source) {
    rt_err(e, "--init: out of memory");
    goto done;
  }
  for (int i = 0; i < p->nparam; i++) src[i] = -1;
  for (int k = 0; k < l->n; k++)
    if (rt_safetensors_read(l->file[k].path, &lists[k], e) || check_file(p, l, k, lists[k], src, source, e)) goto done;
  for (int i = 0; i < p->nparam; i++)
    if (source[i]) memcpy(p->state->tensor[i]->data, source[i]->data, rt_tensor_bytes(p->state->tensor[i]));
  rc = 0;
done:
  for (int k = 0; k < l->n; k++) rt_list_free(lists[k]);
  free(src);
  free((void *)source);
  return rc;
}
