/* train_numerics.c — the divergence rule and the state snapshots of
 * --stop-on-divergence (see train.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/train/train.h"

bool rt_diverge_add(RtDiverge *d, uint64_t s, double loss) {
  if (!d->started) {
    *d = (RtDiverge){.started = true, .first = s, .start = loss, .smoothed = loss};
    return false;
  }
  d->smoothed = RT_DIVERGE_SMOOTH * d->smoothed + (1 - RT_DIVERGE_SMOOTH) * loss;
  if (d->diverged || !(d->start > 0) || !(d->smoothed > RT_DIVERGE_FACTOR * d->start)) return false;
  d->diverged = true;
  return true;
}

/* The tensors a snapshot holds, in order: the saved state, then the EMA. */
static size_t snap_bytes(const RtProgram *p, const RtTensorList *ema) {
  size_t n = 0;
  for (int i = 0; i < p->nsaved; i++) n += rt_tensor_bytes(p->state->tensor[i]);
  for (int i = 0; ema && i < ema->n; i++) n += rt_tensor_bytes(ema->tensor[i]);
  return n;
}

int rt_train_snap_take(RtTrainSnap *sn, const RtProgram *p, const RtTensorList *ema, uint64_t step, RtErr *e) {
  size_t n = snap_bytes(p, ema);
  if (!sn->data || sn->bytes != n) {
    free(sn->data);
    if (!(sn->data = malloc(n ? n : 1))) {
      sn->valid = false;
      return rt_err(e, "--stop-on-divergence: out of memory for a copy of the state (%zu bytes)", n);
    }
    sn->bytes = n;
  }
  size_t at = 0;
  for (int i = 0; i < p->nsaved; i++) {
    size_t b = rt_tensor_bytes(p->state->tensor[i]);
    memcpy(sn->data + at, p->state->tensor[i]->data, b);
    at += b;
  }
  for (int i = 0; ema && i < ema->n; i++) {
    size_t b = rt_tensor_bytes(ema->tensor[i]);
    memcpy(sn->data + at, ema->tensor[i]->data, b);
    at += b;
  }
  sn->valid = true;
  sn->step = step;
  return 0;
}

void rt_train_snap_restore(const RtTrainSnap *sn, RtProgram *p, RtTensorList *ema) {
  size_t at = 0;
  for (int i = 0; i < p->nsaved; i++) {
    size_t b = rt_tensor_bytes(p->state->tensor[i]);
    memcpy(p->state->tensor[i]->data, sn->data + at, b);
    at += b;
  }
  for (int i = 0; ema && i < ema->n; i++) {
    size_t b = rt_tensor_bytes(ema->tensor[i]);
    memcpy(ema->tensor[i]->data, sn->data + at, b);
    at += b;
  }
}

void rt_train_snap_free(RtTrainSnap *sn) {
  free(sn->data);
  *sn = (RtTrainSnap){0};
}
