/* train_ema.c — the exponential moving average of the parameters that
 * `train --ema D` keeps (see train.h). */
#include <stdio.h>
#include <string.h>

#include "runtime/train/train.h"

RtTensorList *rt_ema_new(const RtProgram *p, RtErr *e) {
  for (int i = 0; i < p->nparam; i++)
    if (p->state->tensor[i]->dtype != RT_F32) {
      rt_err(e, "--ema: parameter '%s' is %s; only f32 parameters can be averaged", p->state->name[i],
             rt_dtype_name(p->state->tensor[i]->dtype));
      return NULL;
    }
  RtTensorList *l = rt_list_new();
  for (int i = 0; i < p->nparam; i++) {
    const RtTensor *w = p->state->tensor[i];
    RtTensor *t = rt_tensor_new(RT_F32, w->rank, w->dim, e);
    if (!t) {
      rt_list_free(l);
      return NULL;
    }
    memcpy(t->data, w->data, rt_tensor_bytes(w));
    char name[256];
    snprintf(name, sizeof name, RT_EMA_PREFIX "%s", p->state->name[i]);
    rt_list_put(l, name, t);
  }
  return l;
}

double rt_ema_decay(double decay, uint64_t t) {
  double warm = (1.0 + (double)t) / (10.0 + (double)t);
  return warm < decay ? warm : decay;
}

void rt_ema_update(RtTensorList *ema, const RtProgram *p, double decay, uint64_t t) {
  double d = rt_ema_decay(decay, t);
  for (int i = 0; i < p->nparam; i++) {
    float *a = rt_f32(ema->tensor[i]);
    const float *w = rt_f32(p->state->tensor[i]);
    int64_t n = rt_tensor_numel(ema->tensor[i]);
    for (int64_t k = 0; k < n; k++) a[k] = (float)(d * (double)a[k] + (1.0 - d) * (double)w[k]);
  }
}

void rt_train_ema_path(const char *ckpt, char *buf, size_t size) {
  static const char ext[] = ".safetensors";
  size_t n = strlen(ckpt), le = sizeof ext - 1;
  if (n > le && strcmp(ckpt + n - le, ext) == 0) n -= le;
  snprintf(buf, size, "%.*s.ema.safetensors", (int)n, ckpt);
}
