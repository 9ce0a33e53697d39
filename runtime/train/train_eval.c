/* train_eval.c — the evaluations of a training run (train --eval-every K
 * --eval-fn NAME --eval-data SPEC, see train.h): an inference entry that
 * returns a scalar, averaged over the same M held-out batches each time,
 * on the parameters and, with --eval-ema, on their EMA. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/train/train.h"

typedef struct {
  int entry;
  const RtEntrySpec *en;
  RtDataset *data;
  int *scalar;      /* (ninput) the --set/--anneal schedule of a scalar input, -1 for a data input */
  RtTensor **in;    /* (ninput) */
  RtTensor **out;   /* (noutput) */
} Eval;

struct RtTrainEval {
  RtProgram *p;
  const RtTrainOptions *o;
  uint64_t seed;
  Eval fn[RT_TRAIN_MAX_EVALS];
  int n;
  RtTensorList *ema;  /* the EMA to evaluate as well (--eval-ema), or NULL */
  void *scratch;      /* the size of the largest parameter: swapping it with its EMA */
};

static bool is_scalar(const RtArgSpec *a) {
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != 1) return false;
  return true;
}

/* Opens the dataset of eval entry f and decides where each input comes from. */
static int open_fn(RtTrainEval *ev, Eval *f, const char *name, RtErr *e) {
  RtProgram *p = ev->p;
  const RtTrainOptions *o = ev->o;
  char buf[256];
  f->entry = rt_program_entry(p, name);
  if (f->entry < 0) return rt_err(e, "--eval-fn %s: %s has no entry '%s' (`info` lists them)", name, p->model, name);
  f->en = &p->entry[f->entry];
  const RtEntrySpec *en = f->en;
  if (en->train)
    return rt_err(e, "--eval-fn %s: '%s' is a training entry, and running it would update the parameters: give an "
                     "inference entry that returns the held-out loss", name, name);
  if (en->noutput < 1 || en->output[0].dtype != RT_F32 || !is_scalar(&en->output[0]))
    return rt_err(e, "--eval-fn %s: entry '%s' must return a scalar f32 first, not %s", name, name,
                  en->noutput < 1 ? "nothing" : rt_exe_arg_str(&en->output[0], buf, sizeof buf));
  f->scalar = calloc((size_t)en->ninput + 1, sizeof *f->scalar);
  f->in = calloc((size_t)en->ninput + 1, sizeof *f->in);
  f->out = calloc((size_t)en->noutput + 1, sizeof *f->out);
  if (!f->scalar || !f->in || !f->out) return rt_err(e, "out of memory");
  for (int i = 0; i < en->ninput; i++)
    if (!(f->in[i] = rt_tensor_new(en->input[i].dtype, en->input[i].rank, en->input[i].dim, e))) return -1;
  f->data = rt_data_open(o->eval_data, en, ev->seed, e);
  if (!f->data) return -1;
  int text = rt_entry_input(en, "text");
  if (o->tokenizer && text >= 0 && !rt_data_fills(f->data, text) && rt_data_set_tokenizer(f->data, o->tokenizer, e))
    return -1;
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *a = &en->input[i];
    f->scalar[i] = -1;
    if (rt_data_fills(f->data, i)) continue;
    for (int k = 0; k < o->nscalar; k++)
      if (strcmp(o->scalar[k].name, a->name) == 0) f->scalar[i] = k;
    if (f->scalar[i] >= 0 && is_scalar(a)) continue;
    if (is_scalar(a))
      return rt_err(e, "--eval-fn %s: input %s has no value: give it by --set %s=VALUE or --anneal (the training "
                       "run's schedules also feed the evaluation)", name, rt_exe_arg_str(a, buf, sizeof buf), a->name);
    return rt_err(e, "--eval-fn %s: input %s is not filled by --eval-data %s", name, rt_exe_arg_str(a, buf, sizeof buf),
                  o->eval_data);
  }
  return rt_data_check_steps(f->data, 0, o->eval_batches, e);
}

void rt_train_eval_free(RtTrainEval *ev) {
  if (!ev) return;
  for (int k = 0; k < ev->n; k++) {
    Eval *f = &ev->fn[k];
    for (int i = 0; f->in && i < f->en->ninput; i++) rt_tensor_free(f->in[i]);
    free(f->in);
    free(f->out);
    free(f->scalar);
    rt_data_free(f->data);
  }
  free(ev->scratch);
  free(ev);
}

RtTrainEval *rt_train_eval_open(RtProgram *p, const RtTrainOptions *o, uint64_t seed, RtTensorList *ema, RtErr *e) {
  if (o->eval_ema && !ema) {
    rt_err(e, "--eval-ema evaluates the EMA of the parameters: give --ema D too");
    return NULL;
  }
  RtTrainEval *ev = calloc(1, sizeof *ev);
  if (!ev) {
    rt_err(e, "out of memory");
    return NULL;
  }
  ev->p = p;
  ev->o = o;
  ev->seed = seed;
  ev->ema = o->eval_ema ? ema : NULL;
  if (ev->ema) {
    size_t most = 1;
    for (int i = 0; i < p->nparam; i++)
      if (rt_tensor_bytes(p->state->tensor[i]) > most) most = rt_tensor_bytes(p->state->tensor[i]);
    if (!(ev->scratch = malloc(most))) {
      rt_err(e, "out of memory");
      free(ev);
      return NULL;
    }
  }
  for (int k = 0; k < o->neval; k++) {
    for (int j = 0; j < k; j++)
      if (strcmp(o->eval_fn[j], o->eval_fn[k]) == 0) {
        rt_err(e, "--eval-fn %s is given twice", o->eval_fn[k]);
        rt_train_eval_free(ev);
        return NULL;
      }
    ev->n++;
    if (open_fn(ev, &ev->fn[k], o->eval_fn[k], e)) {
      rt_train_eval_free(ev);
      return NULL;
    }
  }
  return ev;
}

int rt_train_eval_columns(const RtTrainEval *ev) { return ev->n * (ev->ema ? 2 : 1); }

void rt_train_eval_header(const RtTrainEval *ev, char *buf, size_t size) {
  size_t at = strlen(buf);
  for (int k = 0; k < ev->n && at < size; k++) {
    at += (size_t)snprintf(buf + at, size - at, "\teval.%s", ev->fn[k].en->name);
    if (ev->ema && at < size) at += (size_t)snprintf(buf + at, size - at, "\teval.%s.ema", ev->fn[k].en->name);
  }
}

bool rt_train_eval_due(const RtTrainEval *ev, uint64_t s) {
  return ev && ev->n > 0 && ((s + 1) % ev->o->eval_every == 0 || s + 1 == ev->o->steps);
}

int rt_train_eval_prepare(RtTrainEval *ev, RtErr *e) {
  for (int k = 0; k < ev->n; k++)
    if (rt_program_prepare(ev->p, ev->fn[k].entry, e)) return -1;
  return 0;
}

/* The mean of f's scalar over batches 0 .. M-1 after step s. */
static int eval_fn(RtTrainEval *ev, Eval *f, uint64_t s, double *mean, RtErr *e) {
  const RtTrainOptions *o = ev->o;
  double sum = 0;
  for (uint64_t j = 0; j < o->eval_batches; j++) {
    if (rt_data_fill(f->data, j, f->in, e)) return -1;
    for (int i = 0; i < f->en->ninput; i++) {
      if (f->scalar[i] < 0) continue;
      double v = rt_train_scalar_value(&o->scalar[f->scalar[i]], s, o->steps);
      if (f->in[i]->dtype == RT_I32) rt_i32(f->in[i])[0] = (int32_t)llround(v);
      else rt_f32(f->in[i])[0] = (float)v;
    }
    /* the noise of batch j, the same at every evaluation */
    if (ev->p->run(ev->p, f->entry, f->in, f->out, ev->seed, j, e)) {
      char msg[sizeof e->msg];
      memcpy(msg, e->msg, sizeof msg);
      return rt_err(e, "--eval-fn %s after step %llu: %s", f->en->name, (unsigned long long)s, msg);
    }
    sum += rt_f32(f->out[0])[0];
    for (int k = 0; k < f->en->noutput; k++) {
      rt_tensor_free(f->out[k]);
      f->out[k] = NULL;
    }
  }
  *mean = sum / (double)o->eval_batches;
  return 0;
}

/* Swaps the parameters' values with the EMA's (twice: back as they were,
 * bit for bit; the tensors themselves stay, as program.h requires). */
static void swap_ema(RtTrainEval *ev) {
  RtProgram *p = ev->p;
  for (int i = 0; i < p->nparam; i++) {
    void *a = p->state->tensor[i]->data, *b = ev->ema->tensor[i]->data;
    size_t n = rt_tensor_bytes(p->state->tensor[i]);
    memcpy(ev->scratch, a, n);
    memcpy(a, b, n);
    memcpy(b, ev->scratch, n);
  }
}

int rt_train_eval_run(RtTrainEval *ev, uint64_t s, double *values, RtErr *e) {
  int c = 0;
  for (int k = 0; k < ev->n; k++) {
    if (eval_fn(ev, &ev->fn[k], s, &values[c], e)) return -1;
    c += ev->ema ? 2 : 1;
  }
  if (!ev->ema) return 0;
  swap_ema(ev);
  int rc = 0;
  for (int k = 0; k < ev->n && rc == 0; k++) rc = eval_fn(ev, &ev->fn[k], s, &values[2 * k + 1], e);
  swap_ema(ev);
  return rc;
}
