/* checkpoint.c — an RtProgram's state to and from safetensors (see
 * checkpoint.h); the EMA's own functions are in checkpoint_ema.c. */
#include "runtime/io/checkpoint.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/checkpoint_impl.h"
#include "runtime/io/safetensors.h"

RtMeta *rt_checkpoint_meta(const RtProgram *p, const RtCheckpointInfo *info) {
  RtMeta *m = rt_meta_new();
  char num[32];
  rt_meta_set(m, "dal.model", p->model ? p->model : "");
  rt_meta_set(m, "dal.config", p->config ? p->config : "");
  snprintf(num, sizeof num, "%" PRIu64, info->step);
  rt_meta_set(m, "dal.step", num);
  snprintf(num, sizeof num, "%" PRIu64, info->seed);
  rt_meta_set(m, "dal.seed", num);
  snprintf(num, sizeof num, "%" PRIu64, info->steps);
  rt_meta_set(m, "dal.steps", num);
  char real[PATH_MAX];
  if (p->model) rt_meta_set(m, "dal.source", realpath(p->model, real) ? real : p->model);
  if (p->source_hash) rt_meta_set(m, "dal.source_hash", p->source_hash);
  if (info->tokenizer) rt_meta_set(m, "dal.tokenizer", info->tokenizer);
  if (info->init[0]) rt_meta_set(m, "dal.init", info->init);
  if (info->ema_decay > 0) {
    snprintf(num, sizeof num, "%.17g", info->ema_decay);
    rt_meta_set(m, "dal.ema", num);
  }
  if (info->run[0]) rt_meta_set(m, "dal.run", info->run);
  if (info->changed[0]) rt_meta_set(m, "dal.resume_changed", info->changed);
  return m;
}

int rt_checkpoint_save(const char *path, const RtProgram *p, const RtCheckpointInfo *info, RtErr *e) {
  RtMeta *m = rt_checkpoint_meta(p, info);
  /* transient state (a KV cache) is left out: a view of the saved prefix,
   * then the EMA's tensors if any */
  int n = p->nsaved + (info->ema ? info->ema->n : 0);
  char **name = malloc(sizeof *name * (size_t)(n + 1));
  RtTensor **tensor = malloc(sizeof *tensor * (size_t)(n + 1));
  int rc;
  if (!name || !tensor) {
    rc = rt_err(e, "%s: out of memory", path);
  } else {
    for (int i = 0; i < n; i++) {
      bool st = i < p->nsaved;
      name[i] = st ? p->state->name[i] : info->ema->name[i - p->nsaved];
      tensor[i] = st ? p->state->tensor[i] : info->ema->tensor[i - p->nsaved];
    }
    RtTensorList saved = {.n = n, .cap = n, .name = name, .tensor = tensor};
    rc = rt_safetensors_write_meta(path, &saved, m, e);
  }
  free(name);
  free(tensor);
  rt_meta_free(m);
  return rc;
}

/* Metadata value 'key' as a decimal u64; 'required' makes absence an error. */
static int meta_u64(const RtMeta *m, const char *key, bool required, uint64_t *out, const char *path, RtErr *e) {
  const char *s = rt_meta_get(m, key);
  if (!s) {
    *out = 0;
    return required ? rt_err(e, "%s: not a dal training checkpoint (its metadata has no \"%s\")", path, key) : 0;
  }
  char *end;
  if (*s < '0' || *s > '9') goto bad;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end) goto bad;
  *out = v;
  return 0;
bad:
  return rt_err(e, "%s: metadata \"%s\" is \"%s\", not a non-negative integer", path, key, s);
}

bool rt_same_model(const char *a, const char *b) {
  const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
  a = sa ? sa + 1 : a;
  b = sb ? sb + 1 : b;
  const char *da = strrchr(a, '.'), *db = strrchr(b, '.');
  size_t la = da && da != a ? (size_t)(da - a) : strlen(a), lb = db && db != b ? (size_t)(db - b) : strlen(b);
  return la == lb && strncmp(a, b, la) == 0;
}

/* Whether 'name' is "ema.<param>" for a parameter of p whose type t has. */
static bool is_param_ema(const RtProgram *p, const char *name, const RtTensor *t) {
  if (strncmp(name, RT_EMA_PREFIX, strlen(RT_EMA_PREFIX)) != 0) return false;
  for (int i = 0; i < p->nparam; i++)
    if (strcmp(p->state->name[i], name + strlen(RT_EMA_PREFIX)) == 0) return rt_same_type(t, p->state->tensor[i]);
  return false;
}

bool rt_same_type(const RtTensor *a, const RtTensor *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

/* Checks that file tensor t fits state tensor s (named 'name'). */
int rt_checkpoint_check_fits(const RtTensor *t, const RtTensor *s, const char *name, const char *path, RtErr *e) {
  if (rt_same_type(t, s)) return 0;
  char want[128], got[128];
  return rt_err(e, "%s: tensor '%s' is %s%s but the model's is %s%s", path, name, rt_dtype_name(t->dtype),
                rt_shape_str(t->rank, t->dim, got, sizeof got), rt_dtype_name(s->dtype),
                rt_shape_str(s->rank, s->dim, want, sizeof want));
}

int rt_checkpoint_load(const char *path, RtProgram *p, RtCheckpointInfo *info, RtErr *e) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  if (rt_safetensors_read_meta(path, &l, &m, e)) return -1;
  int rc = -1;
  RtCheckpointInfo in = {0};
  if (meta_u64(m, "dal.step", true, &in.step, path, e) || meta_u64(m, "dal.seed", true, &in.seed, path, e) ||
      meta_u64(m, "dal.steps", false, &in.steps, path, e))
    goto done;
  const char *model = rt_meta_get(m, "dal.model"), *config = rt_meta_get(m, "dal.config");
  const char *what = rt_meta_get(m, "dal.params");
  if (what && strcmp(what, "ema") == 0) {
    rt_err(e, "%s is an EMA model file (parameters only), not a training checkpoint: resume from the checkpoint it "
              "was written beside", path);
    goto done;
  }
  if ((model && p->model && !rt_same_model(model, p->model)) || (config && p->config && strcmp(config, p->config) != 0)) {
    rt_err(e, "%s: a checkpoint of model '%s' (config '%s'), not of '%s' (config '%s')", path, model ? model : "?",
           config ? config : "?", p->model, p->config);
    goto done;
  }
  for (int i = 0; i < p->nsaved; i++) {
    const RtTensor *t = rt_list_get(l, p->state->name[i]);
    if (!t) {
      rt_err(e, "%s: tensor '%s' of model '%s' is missing", path, p->state->name[i], p->model);
      goto done;
    }
    if (rt_checkpoint_check_fits(t, p->state->tensor[i], p->state->name[i], path, e)) goto done;
  }
  RtTensorList saved = {.n = p->nsaved, .cap = p->nsaved, .name = p->state->name, .tensor = p->state->tensor};
  for (int i = 0; i < l->n; i++)
    if (!rt_list_get(&saved, l->name[i]) && !is_param_ema(p, l->name[i], l->tensor[i])) {
      rt_err(e, "%s: tensor '%s' is not part of model '%s'", path, l->name[i], p->model);
      goto done;
    }
  for (int i = 0; i < p->nsaved; i++)
    memcpy(p->state->tensor[i]->data, rt_list_get(l, p->state->name[i])->data, rt_tensor_bytes(p->state->tensor[i]));
  const char *init = rt_meta_get(m, "dal.init");
  snprintf(in.init, sizeof in.init, "%s", init ? init : "");
  const char *ema = rt_meta_get(m, "dal.ema");
  in.ema_decay = ema ? strtod(ema, NULL) : 0;
  const char *run = rt_meta_get(m, "dal.run"), *changed = rt_meta_get(m, "dal.resume_changed");
  snprintf(in.run, sizeof in.run, "%s", run ? run : "");
  snprintf(in.changed, sizeof in.changed, "%s", changed ? changed : "");
  *info = in;
  rc = 0;
done:
  rt_list_free(l);
  rt_meta_free(m);
  return rc;
}

int rt_checkpoint_set_params(const RtTensorList *l, const char *path, RtProgram *p, RtErr *e) {
  for (int i = 0; i < p->nsaved; i++) {
    const RtTensor *t = rt_list_get(l, p->state->name[i]);
    if (!t && i < p->nparam)
      return rt_err(e, "%s: parameter '%s' of model '%s' is missing", path, p->state->name[i], p->model);
    if (t && rt_checkpoint_check_fits(t, p->state->tensor[i], p->state->name[i], path, e)) return -1;
  }
  for (int i = 0; i < p->nsaved; i++) {
    const RtTensor *t = rt_list_get(l, p->state->name[i]);
    RtTensor *s = p->state->tensor[i];
    if (t) memcpy(s->data, t->data, rt_tensor_bytes(s));
    else memset(s->data, 0, rt_tensor_bytes(s));
  }
  return 0;
}

int rt_checkpoint_load_params(const char *path, RtProgram *p, RtErr *e) {
  RtTensorList *l = NULL;
  if (rt_safetensors_read(path, &l, e)) return -1;
  int rc = rt_checkpoint_set_params(l, path, p, e);
  rt_list_free(l);
  return rc;
}
