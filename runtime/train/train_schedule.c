/* train_schedule.c — the training run's schedules: --set/--anneal values
 * and the learning rate with --warmup/--lr-decay, each a pure function of
 * the step (see train.h). */
#include <math.h>
#include <string.h>

#include "runtime/train/train.h"

static const char *const shape_names[] = {[RT_ANNEAL_GEOM] = "geom", [RT_ANNEAL_LINEAR] = "linear",
                                          [RT_ANNEAL_COS] = "cos"};

const char *rt_anneal_shape_name(RtAnnealShape shape) {
  return (unsigned)shape < sizeof shape_names / sizeof *shape_names ? shape_names[shape] : NULL;
}

int rt_anneal_shape_parse(const char *name) {
  for (int i = 0; i < (int)(sizeof shape_names / sizeof *shape_names); i++)
    if (strcmp(name, shape_names[i]) == 0) return i;
  return -1;
}

/* Half a cosine from 1 at t = 0 to 0 at t = 1. */
static double cos_down(double t) { return 0.5 * (1.0 + cos(M_PI * t)); }

double rt_train_scalar_value(const RtTrainScalar *sc, uint64_t s, uint64_t n) {
  if (!sc->anneal) return sc->from;
  uint64_t k = sc->over ? sc->over : (n > 0 ? n - 1 : 0);
  if (k == 0) return sc->from;
  double t = s >= k ? 1.0 : (double)s / (double)k;
  switch (sc->shape) {
  case RT_ANNEAL_LINEAR: return sc->from + (sc->to - sc->from) * t;
  case RT_ANNEAL_COS: return sc->to + (sc->from - sc->to) * cos_down(t);
  case RT_ANNEAL_GEOM: break;
  }
  return sc->from * pow(sc->to / sc->from, t);
}

double rt_train_lr(const RtTrainOptions *o, double lr, uint64_t s) {
  uint64_t k = o->warmup;
  if (s < k) return lr * (double)(s + 1) / (double)k;
  if (o->lr_decay == RT_LR_CONSTANT) return lr;
  uint64_t last = o->steps > 0 ? o->steps - 1 : 0;
  double u = last > k ? (double)(s - k) / (double)(last - k) : 0.0;
  if (u > 1) u = 1;
  double lo = o->lr_min_given ? o->lr_min : 0.0;
  if (o->lr_decay == RT_LR_COS) return lo + (lr - lo) * cos_down(u);
  return lr + (lo - lr) * u;
}
