/* train_args.c — `train`'s flags into RtTrainOptions (see train.h). */
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/train/train.h"

/* "NAME=V" (--set) or "NAME=FROM:TO[:SHAPE[:K]]" (--anneal) into a new scalar. */
static int parse_scalar(RtTrainOptions *o, const char *flag, const char *arg, bool anneal, RtErr *e) {
  char text[256];
  if (strlen(arg) >= sizeof text) return rt_err(e, "%s '%.40s...' is too long", flag, arg);
  strcpy(text, arg);
  char *eq = strchr(text, '=');
  if (!eq || eq == text || eq - text >= (long)sizeof o->scalar[0].name)
    return rt_err(e, "%s needs NAME=%s, got '%s'", flag, anneal ? "FROM:TO" : "VALUE", text);
  if (o->nscalar == RT_TRAIN_MAX_SCALARS)
    return rt_err(e, "too many --set/--anneal flags (at most %d)", RT_TRAIN_MAX_SCALARS);
  *eq = 0;
  for (int i = 0; i < o->nscalar; i++)
    if (strcmp(o->scalar[i].name, text) == 0) return rt_err(e, "input '%s' is given twice by --set/--anneal", text);
  RtTrainScalar *s = &o->scalar[o->nscalar];
  strcpy(s->name, text);
  s->anneal = anneal;
  s->shape = RT_ANNEAL_GEOM;
  char *value = eq + 1;
  if (anneal) {
    /* FROM:TO[:SHAPE[:K]] */
    char *part[5] = {value};
    int n = 1;
    for (char *c = value; *c && n < 5; c++)
      if (*c == ':') {
        *c = 0;
        part[n++] = c + 1;
      }
    if (n < 2 || n > 4)
      return rt_err(e, "--anneal %s needs FROM:TO[:SHAPE[:STEPS]] (e.g. tau=1:0.0625:cos or beta=0:6.6:linear:5000)",
                    text);
    if (rt_exe_f64("--anneal", part[0], &s->from, e) || rt_exe_f64("--anneal", part[1], &s->to, e)) return -1;
    if (n >= 3) {
      int shape = rt_anneal_shape_parse(part[2]);
      if (shape < 0)
        return rt_err(e, "--anneal %s: unknown schedule shape '%s' (shapes: geom, linear, cos)", text, part[2]);
      s->shape = (RtAnnealShape)shape;
    }
    if (n == 4) {
      if (rt_exe_u64("--anneal", part[3], &s->over, e)) return -1;
      if (s->over == 0) return rt_err(e, "--anneal %s: the schedule's STEPS must be at least 1", text);
    }
    if (s->shape == RT_ANNEAL_GEOM && !(s->from * s->to > 0))
      return rt_err(e, "--anneal %s=%g:%g: a geometric schedule needs FROM and TO non-zero and of the same sign "
                    "(use :linear or :cos for others)", text, s->from, s->to);
  } else {
    if (rt_exe_f64("--set", value, &s->from, e)) return -1;
    s->to = s->from;
  }
  o->nscalar++;
  return 0;
}

/* --every K (K >= 1) or "none": only the final checkpoint. */
static int parse_every(const char *v, RtTrainOptions *o, RtErr *e) {
  o->every_given = true;
  if (strcmp(v, "none") == 0) {
    o->every = 0;
    return 0;
  }
  if (rt_exe_u64("--every", v, &o->every, e)) return -1;
  if (o->every == 0)
    return rt_err(e, "--every: must be at least 1, got '0' (--every none writes only the final checkpoint)");
  return 0;
}

/* The ranges that depend on more than one flag, checked once every flag
 * is known. */
static int check_ranges(const RtTrainOptions *o, RtErr *e) {
  /* --warmup may exceed --steps: a run may stop inside its warmup and be
   * resumed with more steps (the recipes' short test runs do). */
  if (o->lr_given && o->lr_min_given && o->lr_min > o->lr)
    return rt_err(e, "--lr-min: must be at most --lr (%g), got %g", o->lr, o->lr_min);
  return 0;
}

int rt_train_parse(int argc, char **argv, RtTrainOptions *o, RtErr *e) {
  memset(o, 0, sizeof *o);
  bool have_steps = false;
  for (int i = 0; i < argc; i++) {
    const char *v;
    int m;
#define FLAG(name) ((m = rt_exe_flag(argc, argv, &i, name, &v, e)) < 0 ? -1 : m)
    if (strcmp(argv[i], "--quiet") == 0) {
      o->quiet = true;
    } else if (FLAG("--steps")) {
      if (m < 0 || rt_exe_u64("--steps", v, &o->steps, e)) return -1;
      if (o->steps == 0) return rt_err(e, "--steps: must be at least 1");
      have_steps = true;
    } else if (FLAG("--fn")) {
      if (m < 0) return -1;
      o->fn = v;
    } else if (FLAG("--data")) {
      if (m < 0) return -1;
      o->data = v;
    } else if (FLAG("--seed")) {
      if (m < 0 || rt_exe_u64("--seed", v, &o->seed, e)) return -1;
      o->seed_given = true;
    } else if (FLAG("--lr")) {
      if (m < 0 || rt_exe_f64("--lr", v, &o->lr, e)) return -1;
      if (!(o->lr > 0)) return rt_err(e, "--lr: must be a positive number, got '%s'", v);
      o->lr_given = true;
    } else if (FLAG("--warmup")) {
      if (m < 0 || rt_exe_u64("--warmup", v, &o->warmup, e)) return -1;
    } else if (FLAG("--lr-decay")) {
      if (m < 0) return -1;
      if (strcmp(v, "none") == 0) o->lr_decay = RT_LR_CONSTANT;
      else if (strcmp(v, "cos") == 0) o->lr_decay = RT_LR_COS;
      else if (strcmp(v, "linear") == 0) o->lr_decay = RT_LR_LINEAR;
      else return rt_err(e, "--lr-decay: must be none, cos or linear, not '%s'", v);
    } else if (FLAG("--lr-min")) {
      if (m < 0 || rt_exe_f64("--lr-min", v, &o->lr_min, e)) return -1;
      if (o->lr_min < 0) return rt_err(e, "--lr-min: must not be negative, got '%s'", v);
      o->lr_min_given = true;
    } else if (FLAG("--ema")) {
      if (m < 0 || rt_exe_f64("--ema", v, &o->ema, e)) return -1;
      if (!(o->ema > 0 && o->ema < 1))
        return rt_err(e, "--ema: must be a decay between 0 and 1 (e.g. 0.999), got '%s'", v);
    } else if (FLAG("--eval-every")) {
      if (m < 0 || rt_exe_u64("--eval-every", v, &o->eval_every, e)) return -1;
      if (o->eval_every == 0) return rt_err(e, "--eval-every: must be at least 1");
    } else if (FLAG("--eval-fn")) {
      if (m < 0) return -1;
      if (o->neval == RT_TRAIN_MAX_EVALS) return rt_err(e, "too many --eval-fn flags (at most %d)", RT_TRAIN_MAX_EVALS);
      o->eval_fn[o->neval++] = v;
    } else if (FLAG("--eval-data")) {
      if (m < 0) return -1;
      o->eval_data = v;
    } else if (FLAG("--eval-batches")) {
      if (m < 0 || rt_exe_u64("--eval-batches", v, &o->eval_batches, e)) return -1;
      if (o->eval_batches == 0) return rt_err(e, "--eval-batches: must be at least 1");
    } else if (strcmp(argv[i], "--resume-changed") == 0) {
      o->resume_changed = true;
    } else if (strcmp(argv[i], "--eval-ema") == 0) {
      o->eval_ema = true;
    } else if (strcmp(argv[i], "--stop-on-divergence") == 0) {
      o->stop_on_divergence = true;
    } else if (FLAG("--set")) {
      if (m < 0 || parse_scalar(o, "--set", v, false, e)) return -1;
    } else if (FLAG("--anneal")) {
      if (m < 0 || parse_scalar(o, "--anneal", v, true, e)) return -1;
    } else if ((m = rt_exe_init_flag(argc, argv, &i, &o->init, e))) {
      if (m < 0) return -1;
    } else if (FLAG("--tokenizer")) {
      if (m < 0) return -1;
      o->tokenizer = v;
    } else if (FLAG("--params")) {
      if (m < 0) return -1;
      o->params = v;
    } else if (FLAG("--checkpoint")) {
      if (m < 0) return -1;
      o->checkpoint = v;
    } else if (FLAG("--every")) {
      if (m < 0 || parse_every(v, o, e)) return -1;
    } else if (FLAG("--resume")) {
      if (m < 0) return -1;
      o->resume = v;
    } else if (FLAG("--log")) {
      if (m < 0) return -1;
      o->log = v;
    } else {
      return rt_err(e, "train: unknown option '%s' (options: --steps N --fn NAME --data SPEC --seed S --lr X "
                    "--warmup K --lr-decay none|cos|linear --lr-min X --set NAME=V --anneal NAME=FROM:TO[:SHAPE[:STEPS]] --tokenizer TOK.json --params P --init PREFIX=FILE --init-partial --checkpoint PATH --every K|none --resume PATH "
                    "--resume-changed --log FILE.tsv --ema D --eval-every K --eval-fn NAME --eval-data SPEC --eval-batches M --eval-ema --quiet "
                    "--stop-on-divergence; and any command's --check-numerics --allow-nonfinite)", argv[i]);
    }
#undef FLAG
  }
  if (!have_steps) return rt_err(e, "train needs --steps N");
  if (o->params && o->resume) return rt_err(e, "--params and --resume cannot be used together");
  if (o->init.n && o->resume)
    return rt_err(e, "--init and --resume cannot be used together: the checkpoint restores the whole state");
  bool eval_flags = o->neval || o->eval_data || o->eval_batches || o->eval_ema;
  if (o->eval_every && !o->neval) return rt_err(e, "--eval-every needs --eval-fn NAME (an inference entry returning a scalar)");
  if (o->eval_every && !o->eval_data)
    return rt_err(e, "--eval-every needs --eval-data SPEC (held-out data, e.g. shapes:test)");
  if (eval_flags && !o->eval_every)
    return rt_err(e, "--eval-fn, --eval-data, --eval-batches and --eval-ema go with --eval-every K");
  if (!o->eval_batches) o->eval_batches = 8;
  if (o->lr_min_given && o->lr_decay == RT_LR_CONSTANT)
    return rt_err(e, "--lr-min goes with --lr-decay cos|linear (the learning rate decays to it)");
  if (o->init.partial && !o->init.n) return rt_err(e, "--init-partial goes with --init PREFIX=FILE");
  if (o->resume_changed && !o->resume) return rt_err(e, "--resume-changed goes with --resume PATH");
  return check_ranges(o, e);
}
