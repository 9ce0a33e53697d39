/* checkpoint_ema.c — the EMA of the parameters in checkpoints (train
 * --ema): reading it back, using it as the parameters, and the EMA model
 * file (see checkpoint.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/checkpoint_impl.h"

/* "ema.<name>" into buf. */
static const char *ema_name(const char *name, char *buf, size_t size) {
  snprintf(buf, size, RT_EMA_PREFIX "%s", name);
  return buf;
}

/* Checks that l holds "ema.<name>" for every parameter <name> of p, of its
 * dtype and shape. */
static int check_ema(const char *path, const RtProgram *p, const RtTensorList *l, RtErr *e) {
  char name[256];
  int found = 0;
  for (int i = 0; i < p->nparam; i++) found += rt_list_get(l, ema_name(p->state->name[i], name, sizeof name)) != NULL;
  if (found == 0)
    return rt_err(e, "%s holds no EMA of the parameters (no \"ema.*\" tensors: the run was trained without --ema)",
                  path);
  for (int i = 0; i < p->nparam; i++) {
    const RtTensor *t = rt_list_get(l, ema_name(p->state->name[i], name, sizeof name));
    if (!t) return rt_err(e, "%s: the EMA of parameter '%s' (tensor '%s') is missing", path, p->state->name[i], name);
    if (rt_checkpoint_check_fits(t, p->state->tensor[i], name, path, e)) return -1;
  }
  return 0;
}

int rt_checkpoint_load_ema(const char *path, const RtProgram *p, RtTensorList *ema, double *decay, RtErr *e) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  if (rt_safetensors_read_meta(path, &l, &m, e)) return -1;
  int rc = check_ema(path, p, l, e);
  const char *d = rc == 0 ? rt_meta_get(m, "dal.ema") : NULL;
  char *end = NULL;
  double v = d ? strtod(d, &end) : 0;
  if (rc == 0 && (!d || *end || !(v > 0 && v < 1)))
    rc = rt_err(e, "%s: metadata \"dal.ema\" (the EMA's decay) is %s%s%s, not a number in (0, 1)", path,
                d ? "\"" : "missing", d ? d : "", d ? "\"" : "");
  if (rc == 0 && ema->n != p->nparam) rc = rt_err(e, "%s: the EMA list has %d tensors for %d parameters", path, ema->n, p->nparam);
  if (rc == 0) {
    char name[256];
    for (int i = 0; i < p->nparam; i++) {
      const RtTensor *t = rt_list_get(l, ema_name(p->state->name[i], name, sizeof name));
      memcpy(ema->tensor[i]->data, t->data, rt_tensor_bytes(t));
    }
    *decay = v;
  }
  rt_list_free(l);
  rt_meta_free(m);
  return rc;
}

int rt_checkpoint_load_params_ema(const char *path, RtProgram *p, RtErr *e) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  if (rt_safetensors_read_meta(path, &l, &m, e)) return -1;
  const char *what = rt_meta_get(m, "dal.params");
  bool model_file = what && strcmp(what, "ema") == 0; /* its parameters are the EMA */
  rt_meta_free(m);
  if (model_file) {
    rt_list_free(l);
    return rt_checkpoint_load_params(path, p, e);
  }
  int rc = check_ema(path, p, l, e);
  for (int i = p->nparam; rc == 0 && i < p->nsaved; i++) {
    const RtTensor *t = rt_list_get(l, p->state->name[i]);
    if (t) rc = rt_checkpoint_check_fits(t, p->state->tensor[i], p->state->name[i], path, e);
  }
  if (rc == 0) {
    char name[256];
    for (int i = 0; i < p->nsaved; i++) {
      const RtTensor *t = rt_list_get(l, i < p->nparam ? ema_name(p->state->name[i], name, sizeof name) : p->state->name[i]);
      RtTensor *s = p->state->tensor[i];
      if (t) memcpy(s->data, t->data, rt_tensor_bytes(s));
      else memset(s->data, 0, rt_tensor_bytes(s));
    }
  }
  rt_list_free(l);
  return rc;
}

int rt_checkpoint_save_ema_model(const char *path, const RtProgram *p, const RtCheckpointInfo *info, RtErr *e) {
  if (!info->ema || info->ema->n != p->nparam)
    return rt_err(e, "%s: no EMA of the %d parameters to write", path, p->nparam);
  RtMeta *m = rt_checkpoint_meta(p, info);
  rt_meta_set(m, "dal.params", "ema");
  char **name = malloc(sizeof *name * (size_t)(p->nsaved + 1));
  RtTensor **tensor = malloc(sizeof *tensor * (size_t)(p->nsaved + 1));
  int rc, n = 0;
  if (!name || !tensor) {
    rc = rt_err(e, "%s: out of memory", path);
  } else {
    for (int i = 0; i < p->nsaved; i++) {
      if (i >= p->nparam && strncmp(p->state->name[i], "opt.", 4) == 0) continue; /* the optimizer's */
      name[n] = p->state->name[i];
      tensor[n++] = i < p->nparam ? info->ema->tensor[i] : p->state->tensor[i];
    }
    RtTensorList l = {.n = n, .cap = n, .name = name, .tensor = tensor};
    rc = rt_safetensors_write_meta(path, &l, m, e);
  }
  free(name);
  free(tensor);
  rt_meta_free(m);
  return rc;
}
