/* train.c — the training loop: batches, scheduled scalar inputs,
 * checkpoints, signals and resuming (see train.h). */
#include "runtime/train/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/data/bpe.h"
#include "runtime/core/numerics.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/fileio.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/train/progress.h"

/* ---- signals: SIGINT, SIGTERM and SIGHUP stop the run after the current step ---- */

static volatile sig_atomic_t stop_signal;

/* The first SIGINT/SIGTERM/SIGHUP (a closed terminal or ssh session) asks
 * for a stop after the current step; the handler then reverts to the
 * default (SA_RESETHAND), so a second one ends the process at once,
 * leaving the last checkpoint as it was. */
static void on_stop_signal(int sig) {
  static const char msg[] = "\nstopping after this step to write a checkpoint (signal again to abort at once)\n";
  stop_signal = sig;
  ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)unused;
}

typedef struct {
  struct sigaction old_int, old_term, old_hup;
} Handlers;

static void handlers_install(Handlers *h) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  stop_signal = 0;
  sigaction(SIGINT, &sa, &h->old_int);
  sigaction(SIGTERM, &sa, &h->old_term);
  /* Under nohup SIGHUP stays ignored: the run is meant to outlive its terminal. */
  sigaction(SIGHUP, NULL, &h->old_hup);
  if (h->old_hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL);
}

static void handlers_restore(const Handlers *h) {
  sigaction(SIGINT, &h->old_int, NULL);
  sigaction(SIGTERM, &h->old_term, NULL);
  sigaction(SIGHUP, &h->old_hup, NULL);
}

/* ---- where each input of the step comes from ---- */

typedef enum { SRC_DATA, SRC_LR, SRC_SCALAR } Source;

typedef struct {
  RtProgram *p;
  const RtTrainOptions *o;
  int entry;
  const RtEntrySpec *en;
  RtDataset *data;
  Source *src;         /* (ninput) */
  int *scalar;         /* (ninput) index into o->scalar for SRC_SCALAR */
  RtTensor **in;       /* (ninput) */
  RtTensor **out;      /* (noutput) */
  FILE *log;
  double lr;
  uint64_t seed, first, every;
  char ckpt[1024];
  char init[1024];     /* what --init set (dal.init), kept across resumes */
  char *tokenizer;     /* --tokenizer's JSON, which checkpoints carry (a model file), or NULL */
  RtTensorList *ema;   /* --ema: "ema.<name>" per parameter (nparam), or NULL */
  double ema_decay;
  char ema_path[1024]; /* the EMA model file beside the checkpoint */
  RtTrainEval *eval;   /* --eval-every, or NULL */
  RtLock *lock;        /* on "<ckpt>.lock" for the whole run */
  char settings[4096]; /* dal.run of this run (rt_train_settings) */
  char then[4096];     /* dal.run of the checkpoint resumed from */
  char changed[2048];  /* dal.resume_changed, kept across resumes */
  bool saved_any;      /* a checkpoint was written by this run ... */
  uint64_t saved;      /* ... after this many steps (the last one) */
  RtDiverge diverge;   /* the divergence rule's state */
  RtTrainSnap snap[2]; /* --stop-on-divergence: the state before step s in snap[s % 2] */
} Run;

static bool is_scalar(const RtArgSpec *a) {
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != 1) return false;
  return true;
}

/* "NAME (f32[4, 3])" of input i for messages. */
static const char *input_str(const Run *r, int i, char *buf, size_t size) {
  return rt_exe_arg_str(&r->en->input[i], buf, size);
}

/* Decides the source of every input, with errors that say which flag
 * gives a missing value. */
static int plan_inputs(Run *r, RtErr *e) {
  const RtTrainOptions *o = r->o;
  const RtEntrySpec *en = r->en;
  char buf[256];
  for (int k = 0; k < o->nscalar; k++) {
    int i = rt_entry_input(en, o->scalar[k].name);
    const char *flag = o->scalar[k].anneal ? "--anneal" : "--set";
    if (i < 0) {
      char names[512] = "";
      for (int j = 0; j < en->ninput; j++) {
        size_t at = strlen(names);
        snprintf(names + at, sizeof names - at, "%s%s", j ? ", " : "", en->input[j].name);
      }
      return rt_err(e, "%s %s: entry '%s' has no input '%s' (its inputs: %s)", flag, o->scalar[k].name, en->name,
                    o->scalar[k].name, names);
    }
    if (!is_scalar(&en->input[i]))
      return rt_err(e, "%s %s: input %s is not a scalar", flag, o->scalar[k].name, input_str(r, i, buf, sizeof buf));
    if (rt_data_fills(r->data, i))
      return rt_err(e, "%s %s: input '%s' comes from the dataset", flag, o->scalar[k].name, o->scalar[k].name);
    if (strcmp(o->scalar[k].name, RT_LR_INPUT) == 0)
      return rt_err(e, "%s %s: set the learning rate with --lr", flag, RT_LR_INPUT);
    r->src[i] = SRC_SCALAR;
    r->scalar[i] = k;
  }
  bool has_lr = false;
  for (int i = 0; i < en->ninput; i++) {
    const RtArgSpec *a = &en->input[i];
    if (rt_data_fills(r->data, i)) r->src[i] = SRC_DATA;
    else if (strcmp(a->name, RT_LR_INPUT) == 0 && is_scalar(a)) r->src[i] = SRC_LR, has_lr = true;
    else if (r->src[i] != SRC_SCALAR) {
      if (strcmp(a->name, "text") == 0 && a->dtype == RT_I32 && rt_data_has_captions(r->data))
        return rt_err(e, "input %s of training entry '%s' takes the captions as BPE ids: pass --tokenizer TOK.json "
                         "(a tokenizer from `dalc bpe train`)", input_str(r, i, buf, sizeof buf), en->name);
      if (is_scalar(a))
        return rt_err(e, "input %s of training entry '%s' has no value: give --set %s=VALUE or --anneal %s=FROM:TO",
                      input_str(r, i, buf, sizeof buf), en->name, a->name, a->name);
      return rt_err(e, "input %s of training entry '%s' is not filled by dataset '%s': choose a --data that "
                    "provides it (e.g. npy:%s=FILE.npy)", input_str(r, i, buf, sizeof buf), en->name,
                    r->o->data ? r->o->data : "shapes", a->name);
    }
  }
  if ((o->warmup || o->lr_decay != RT_LR_CONSTANT) && !has_lr)
    return rt_err(e, "%s: training entry '%s' has no learning-rate input '%s' to schedule", o->warmup ? "--warmup" : "--lr-decay",
                  en->name, RT_LR_INPUT);
  return 0;
}

/* Stores v in a one-element tensor of either dtype; returns what it stored. */
static double set_scalar(RtTensor *t, double v) {
  if (t->dtype == RT_I32) return rt_i32(t)[0] = (int32_t)llround(v);
  return rt_f32(t)[0] = (float)v;
}

/* Fills every input for step s; writes the scheduled values to the log line. */
static int fill_inputs(Run *r, uint64_t s, char *line, size_t size, RtErr *e) {
  if (rt_data_fill(r->data, s, r->in, e)) return -1;
  size_t at = strlen(line);
  for (int i = 0; i < r->en->ninput; i++) {
    double v;
    if (r->src[i] == SRC_LR) v = set_scalar(r->in[i], rt_train_lr(r->o, r->lr, s));
    else if (r->src[i] == SRC_SCALAR) v = set_scalar(r->in[i], rt_train_scalar_value(&r->o->scalar[r->scalar[i]], s, r->o->steps));
    else continue;
    at += (size_t)snprintf(line + at, at < size ? size - at : 0, "\t%.9g", v);
  }
  return 0;
}

/* The log's header: step, loss, then the scheduled inputs in input order. */
static void log_header(const Run *r, char *buf, size_t size) {
  size_t at = (size_t)snprintf(buf, size, "step\tloss");
  for (int i = 0; i < r->en->ninput && at < size; i++)
    if (r->src[i] != SRC_DATA) at += (size_t)snprintf(buf + at, size - at, "\t%s", r->en->input[i].name);
}

static int save(Run *r, uint64_t done, RtErr *e) {
  RtCheckpointInfo info = {.step = done, .seed = r->seed, .steps = r->o->steps};
  memcpy(info.init, r->init, sizeof info.init);
  info.tokenizer = r->tokenizer;
  info.ema = r->ema;
  info.ema_decay = r->ema ? r->ema_decay : 0;
  snprintf(info.run, sizeof info.run, "%s", r->settings);
  snprintf(info.changed, sizeof info.changed, "%s", r->changed);
  if (rt_checkpoint_save(r->ckpt, r->p, &info, e)) return -1;
  r->saved_any = true;
  r->saved = done;
  return r->ema ? rt_checkpoint_save_ema_model(r->ema_path, r->p, &info, e) : 0;
}

/* Restores or initialises the state; sets r->seed and r->first. */
static int start_state(Run *r, RtErr *e) {
  const RtTrainOptions *o = r->o;
  RtProgram *p = r->p;
  if (o->resume) {
    RtCheckpointInfo info;
    if (rt_checkpoint_load(o->resume, p, &info, e)) return -1;
    if (o->seed_given && o->seed != info.seed)
      return rt_err(e, "%s: the checkpoint's run used --seed %llu, not %llu (leave --seed out to resume it)",
                    o->resume, (unsigned long long)info.seed, (unsigned long long)o->seed);
    if (info.step > o->steps)
      return rt_err(e, "%s: the checkpoint is at step %llu, past --steps %llu", o->resume,
                    (unsigned long long)info.step, (unsigned long long)o->steps);
    r->seed = info.seed;
    r->first = info.step;
    memcpy(r->init, info.init, sizeof r->init);
    memcpy(r->then, info.run, sizeof r->then);
    memcpy(r->changed, info.changed, sizeof r->changed);
    if (info.ema_decay > 0) {
      if (o->ema > 0 && o->ema != info.ema_decay)
        return rt_err(e, "%s: the checkpoint's run kept its EMA with --ema %.17g, not %.17g (leave --ema out to "
                      "resume it)", o->resume, info.ema_decay, o->ema);
      if (!(r->ema = rt_ema_new(p, e))) return -1;
      return rt_checkpoint_load_ema(o->resume, p, r->ema, &r->ema_decay, e);
    }
    if (o->ema > 0)
      return rt_err(e, "--ema: %s holds no EMA (its run was trained without --ema), so a resumed run cannot continue "
                    "one", o->resume);
    return 0;
  }
  r->seed = o->seed;
  r->first = 0;
  rt_init_from_describe(&o->init, r->init, sizeof r->init);
  if (rt_exe_state_start(p, o->params, &o->init, r->seed, e)) return -1;
  if (o->ema > 0) { /* the average starts from the starting parameters */
    if (!(r->ema = rt_ema_new(p, e))) return -1;
    r->ema_decay = o->ema;
  }
  return 0;
}

/* Appends s to buf, cut to fit. */
static void append(char *buf, size_t size, const char *s) {
  size_t at = strlen(buf), n = strlen(s);
  if (at + n + 1 > size) n = size - at - 1;
  memcpy(buf + at, s, n);
  buf[at + n] = 0;
}

/* Before any work: the outputs can be written, and no other run writes
 * this checkpoint (a lock held until the run ends). */
static int guard_outputs(Run *r, RtErr *e) {
  if (rt_check_writable("--checkpoint", r->ckpt, e)) return -1;
  if (r->o->log && rt_check_writable("--log", r->o->log, e)) return -1;
  r->lock = rt_lock_take(r->ckpt, "this checkpoint", e);
  return r->lock ? 0 : -1;
}

/* The run's settings and, on --resume, their comparison with those of the
 * checkpoint's run (train.h). */
static int check_settings(Run *r, RtErr *e) {
  const RtTrainOptions *o = r->o;
  /* the tokenizer matters only to an entry that reads the captions */
  const char *tok = rt_entry_input(r->en, "text") >= 0 ? r->tokenizer : NULL;
  rt_train_settings(r->p, o, r->en, r->lr, tok, r->settings, sizeof r->settings);
  if (!o->resume) return 0;
  if (r->changed[0]) /* even under --quiet: the run is not the one its flags describe */
    fprintf(stderr, "note: %s comes from a run resumed with changed settings (%s)\n", o->resume, r->changed);
  char changes[2048];
  if (!rt_train_settings_diff(r->then, r->settings, changes, sizeof changes)) return 0;
  if (!o->resume_changed)
    return rt_err(e, "%s: settings differ from the checkpoint's run, so this would not continue it bit-identically: "
                  "%s (give the run's own flags, or --resume-changed to resume anyway)", o->resume, changes);
  fprintf(stderr, "note: resuming %s with changed settings: %s; the checkpoints record it (dal.resume_changed)\n",
          o->resume, changes);
  char head[48];
  snprintf(head, sizeof head, "%sstep %llu: ", r->changed[0] ? "; " : "", (unsigned long long)r->first);
  /* a record cut at its size still says that and where the run changed */
  append(r->changed, sizeof r->changed, head);
  append(r->changed, sizeof r->changed, changes);
  return 0;
}

static int setup(Run *r, RtErr *e) {
  const RtTrainOptions *o = r->o;
  RtProgram *p = r->p;
  r->entry = rt_exe_train_entry(p, o->fn, e);
  if (r->entry < 0) return -1;
  r->en = &p->entry[r->entry];
  const RtEntrySpec *en = r->en;
  if (en->noutput < 1 || en->output[0].dtype != RT_F32 || !is_scalar(&en->output[0]))
    return rt_err(e, "training entry '%s' must return the loss, a scalar f32, first", en->name);
  r->lr = o->lr_given ? o->lr : p->lr;
  if (o->lr_min_given && o->lr_min > r->lr)
    return rt_err(e, "--lr-min %g is above the learning rate %g it decays from", o->lr_min, r->lr);
  const char *base = o->resume ? o->resume : NULL;
  if (o->checkpoint) base = o->checkpoint;
  if (base) {
    snprintf(r->ckpt, sizeof r->ckpt, "%s", base);
  } else {
    /* In the current directory, named after the model without its
     * directory or extension (a backend may name it by its source file). */
    const char *name = p->model && *p->model ? p->model : "model";
    const char *slash = strrchr(name, '/'), *dot;
    name = slash ? slash + 1 : name;
    dot = strrchr(name, '.');
    int len = dot && dot != name ? (int)(dot - name) : (int)strlen(name);
    if (p->config && *p->config) snprintf(r->ckpt, sizeof r->ckpt, "%.*s-%s.safetensors", len, name, p->config);
    else snprintf(r->ckpt, sizeof r->ckpt, "%.*s.safetensors", len, name);
  }
  r->every = o->every_given ? o->every : (o->steps + 9) / 10;
  rt_train_ema_path(r->ckpt, r->ema_path, sizeof r->ema_path);
  if (guard_outputs(r, e)) return -1;

  r->src = calloc((size_t)en->ninput + 1, sizeof *r->src);
  r->scalar = calloc((size_t)en->ninput + 1, sizeof *r->scalar);
  r->in = calloc((size_t)en->ninput + 1, sizeof *r->in);
  r->out = calloc((size_t)en->noutput + 1, sizeof *r->out);
  if (!r->src || !r->scalar || !r->in || !r->out) return rt_err(e, "out of memory");
  for (int i = 0; i < en->ninput; i++) {
    r->in[i] = rt_tensor_new(en->input[i].dtype, en->input[i].rank, en->input[i].dim, e);
    if (!r->in[i]) return -1;
  }
  /* The seed of the data is the run's: known only after a resume has read
   * it, so the state comes first. */
  if (start_state(r, e)) return -1;
  r->data = rt_data_open(o->data ? o->data : "shapes", en, r->seed, e);
  if (!r->data || (o->tokenizer && rt_data_set_tokenizer(r->data, o->tokenizer, e))) return -1;
  if (o->tokenizer) { /* into every checkpoint, so it is a whole model file for `generate` */
    RtBpe *tok = rt_bpe_load(o->tokenizer, e);
    r->tokenizer = tok ? rt_bpe_json(tok) : NULL;
    rt_bpe_free(tok);
    if (!r->tokenizer) return tok ? rt_err(e, "out of memory") : -1;
  }
  if (plan_inputs(r, e) || rt_data_check_steps(r->data, r->first, o->steps, e) || check_settings(r, e)) return -1;
  if (o->eval_every && !(r->eval = rt_train_eval_open(p, o, r->seed, r->ema, e))) return -1;
  if (o->log) {
    char header[2048];
    log_header(r, header, sizeof header);
    if (r->eval) rt_train_eval_header(r->eval, header, sizeof header);
    r->log = rt_train_log_open(o->log, header, r->first, e);
    if (!r->log) return -1;
  }
  return 0;
}

static void teardown(Run *r) {
  for (int i = 0; r->in && i < r->en->ninput; i++) rt_tensor_free(r->in[i]);
  free(r->in);
  free(r->out);
  free(r->src);
  free(r->scalar);
  rt_data_free(r->data);
  free(r->tokenizer);
  rt_train_eval_free(r->eval);
  rt_list_free(r->ema);
  rt_lock_release(r->lock);
  rt_train_snap_free(&r->snap[0]);
  rt_train_snap_free(&r->snap[1]);
  if (r->log) fclose(r->log); /* after an error; rt_train closes it with a check otherwise */
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

/* The log fields of the evaluations after step s into buf: "\tV" per
 * column, or "\t" when none is due; the first value goes on the progress line. */
static int eval_after(Run *r, uint64_t s, RtProgress *pr, char *buf, size_t size, RtErr *e) {
  int n = rt_train_eval_columns(r->eval);
  size_t at = 0;
  if (!rt_train_eval_due(r->eval, s)) {
    for (int k = 0; k < n && at + 1 < size; k++) buf[at++] = '\t';
    buf[at] = 0;
    return 0;
  }
  double v[RT_TRAIN_MAX_EVALS * 2];
  if (rt_train_eval_run(r->eval, s, v, e)) return -1;
  for (int k = 0; k < n && at < size; k++) at += (size_t)snprintf(buf + at, size - at, "\t%.9g", v[k]);
  char note[96];
  snprintf(note, sizeof note, "eval.%s %.4g", r->o->eval_fn[0], v[0]);
  rt_progress_note(pr, note);
  return 0;
}

/* ---- numerics (see train.h) ---- */

/* "step S: " before e's message. */
static void prefix_step(RtErr *e, uint64_t s) {
  char head[48];
  size_t n = (size_t)snprintf(head, sizeof head, "step %llu: ", (unsigned long long)s), len = strlen(e->msg);
  if (n + len >= sizeof e->msg) len = sizeof e->msg - n - 1;
  memmove(e->msg + n, e->msg, len);
  memcpy(e->msg, head, n);
  e->msg[n + len] = 0;
}

/* Puts back the last state the run has on disk or started from; *from
 * gets its step. Non-finite values are accepted here: finding where they
 * come from is the point. */
static int restore_start(Run *r, uint64_t *from, RtErr *e) {
  const RtTrainOptions *o = r->o;
  bool allow = rt_numerics_allow();
  rt_numerics_set_allow(true);
  RtCheckpointInfo info;
  int rc;
  if (r->saved_any || o->resume) rc = rt_checkpoint_load(r->saved_any ? r->ckpt : o->resume, r->p, &info, e);
  else rc = rt_exe_state_start(r->p, o->params, &o->init, r->seed, e);
  rt_numerics_set_allow(allow);
  *from = r->saved_any ? r->saved : r->first;
  if (rc) return -1;
  for (int i = 0; i < r->p->nsaved; i++) {
    const RtTensor *t = r->p->state->tensor[i];
    int64_t at;
    if (t->dtype != RT_F32 || rt_all_finite(rt_f32(t), rt_tensor_numel(t), &at)) continue;
    char idx[160];
    return rt_err(e, "the state of step %llu it would start again from (%s) already holds non-finite values: '%s' "
                  "element %s is %g (run from the start with --check-numerics to find their op)",
                  (unsigned long long)*from, r->saved_any ? r->ckpt : o->resume ? o->resume : "the initial state",
                  r->p->state->name[i], rt_index_str(t->rank, t->dim, at, idx, sizeof idx), (double)rt_f32(t)[at]);
  }
  return 0;
}

/* Runs steps from the last good state to 'bad' again with --check-numerics
 * (train.h): e gets the first non-finite value's op, or why none was found. */
static void replay_checked(Run *r, uint64_t bad, RtErr *e) {
  uint64_t from;
  if (restore_start(r, &from, e)) return;
  bool check = rt_numerics_check();
  rt_numerics_set_check(true);
  bool found = false;
  for (uint64_t t = from; t <= bad && !found; t++) {
    char sched[1800] = "";
    if (fill_inputs(r, t, sched, sizeof sched, e)) break;
    found = r->p->run(r->p, r->entry, r->in, r->out, r->seed, t, e) != 0;
    for (int k = 0; k < r->en->noutput; k++) {
      rt_tensor_free(r->out[k]);
      r->out[k] = NULL;
    }
    if (found) prefix_step(e, t);
  }
  rt_numerics_set_check(check);
  if (!found)
    rt_err(e, "running steps %llu..%llu again with --check-numerics found no non-finite value",
           (unsigned long long)from, (unsigned long long)bad);
}

/* Step s's loss is not finite: the error, with the op that made it. */
static int nonfinite_loss(Run *r, uint64_t s, float loss, RtErr *e) {
  fprintf(stderr, "step %llu: the loss is %g; running the steps since the last checkpoint again with "
          "--check-numerics to find the op that made it\n", (unsigned long long)s, (double)loss);
  replay_checked(r, s, e);
  char why[sizeof e->msg];
  snprintf(why, sizeof why, "%s", e->msg);
  return rt_err(e, "%s; training stopped at step %llu (loss %g; the last checkpoint, if any, is kept)", why,
                (unsigned long long)s, (double)loss);
}

/* The divergence rule after step s (train.h): a report once, and with
 * --stop-on-divergence the checkpoint of the last good state and -1. */
static int check_divergence(Run *r, uint64_t s, double loss, RtProgress *pr, RtErr *e) {
  if (!rt_diverge_add(&r->diverge, s, loss)) return 0;
  const RtDiverge *d = &r->diverge;
  rt_progress_end(pr);
  fprintf(stderr, "warning: step %llu: the loss is diverging: smoothed %.4g, above %g times its start %.4g (step %llu)%s\n",
          (unsigned long long)s, d->smoothed, RT_DIVERGE_FACTOR, d->start, (unsigned long long)d->first,
          r->o->stop_on_divergence ? "" : "; --stop-on-divergence would stop here");
  if (!r->o->stop_on_divergence) return 0;
  const RtTrainSnap *good = &r->snap[(s - 1) % 2];
  if (s == 0 || !good->valid || good->step != s - 1)
    return rt_err(e, "step %llu: training diverged; no earlier state to save (the last checkpoint, if any, is kept)",
                  (unsigned long long)s);
  rt_train_snap_restore(good, r->p, r->ema);
  if (save(r, s - 1, e)) return -1;
  return rt_err(e, "step %llu: training diverged (smoothed loss %.4g, start %.4g); stopped by --stop-on-divergence "
                "with the checkpoint of step %llu, the last good state, in %s", (unsigned long long)s, d->smoothed,
                d->start, (unsigned long long)(s - 1), r->ckpt);
}

/* The loop proper: steps r->first .. steps-1. */
static int loop(Run *r, RtTrainResult *res, RtErr *e) {
  const RtTrainOptions *o = r->o;
  RtProgress pr;
  rt_progress_begin(&pr, stderr, r->first, o->steps, o->quiet);
  uint64_t s = r->first;
  for (; s < o->steps; s++) {
    char line[4096];
    snprintf(line, sizeof line, "%llu\t", (unsigned long long)s);
    size_t loss_at = strlen(line);
    char sched[1800] = "";
    if (fill_inputs(r, s, sched, sizeof sched, e)) goto fail;
    if (o->stop_on_divergence && rt_train_snap_take(&r->snap[s % 2], r->p, r->ema, s, e)) goto fail;
    if (r->p->run(r->p, r->entry, r->in, r->out, r->seed, s, e)) {
      if (rt_numerics_check()) prefix_step(e, s);
      goto fail;
    }
    float loss = rt_f32(r->out[0])[0];
    for (int k = 0; k < r->en->noutput; k++) {
      rt_tensor_free(r->out[k]);
      r->out[k] = NULL;
    }
    res->loss = loss;
    if (!isfinite(loss)) {
      rt_progress_end(&pr);
      return nonfinite_loss(r, s, loss, e);
    }
    if (r->ema) rt_ema_update(r->ema, r->p, r->ema_decay, s);
    char evals[RT_TRAIN_MAX_EVALS * 2 * 24 + 1] = "";
    if (r->eval && eval_after(r, s, &pr, evals, sizeof evals, e)) goto fail;
    if (r->log) {
      snprintf(line + loss_at, sizeof line - loss_at, "%.9g%s%s\n", (double)loss, sched, evals);
      fputs(line, r->log);
      if (rt_stream_check(r->log, o->log, e)) goto fail; /* a full disk: stop, as a checkpoint's failure does */
    }
    rt_progress_step(&pr, s, loss);
    res->step = s + 1;
    if (check_divergence(r, s, loss, &pr, e)) return -1;
    if (stop_signal && s + 1 < o->steps) {
      rt_progress_end(&pr);
      if (save(r, s + 1, e)) return -1;
      res->signal = stop_signal;
      snprintf(res->checkpoint, sizeof res->checkpoint, "%s", r->ckpt);
      if (r->ema) snprintf(res->ema_model, sizeof res->ema_model, "%s", r->ema_path);
      fprintf(stderr, "interrupted by %s after step %llu of %llu; checkpoint written to %s (continue with "
              "--resume %s)\n", signal_name(stop_signal), (unsigned long long)(s + 1), (unsigned long long)o->steps,
              r->ckpt, r->ckpt);
      return 0;
    }
    if (r->every && (s + 1) % r->every == 0 && s + 1 < o->steps && save(r, s + 1, e)) goto fail;
  }
  rt_progress_end(&pr);
  if (save(r, o->steps, e)) return -1;
  snprintf(res->checkpoint, sizeof res->checkpoint, "%s", r->ckpt);
  if (r->ema) snprintf(res->ema_model, sizeof res->ema_model, "%s", r->ema_path);
  if (!o->quiet)
    fprintf(stderr, "trained steps %llu..%llu of %s (%s): last loss %.6g, smoothed %.6g; checkpoint %s%s%s\n",
            (unsigned long long)r->first, (unsigned long long)o->steps, r->p->model, r->p->config, res->loss,
            rt_progress_avg(&pr), r->ckpt, r->ema ? ", EMA model " : "", r->ema ? r->ema_path : "");
  const RtTextEncoder *text = rt_data_text(r->data);
  if (!o->quiet && text && rt_text_encoder_cut(text) > 0)
    fprintf(stderr, "%lld distinct captions were longer than the text input and cut\n",
            (long long)rt_text_encoder_cut(text));
  return 0;
fail:
  rt_progress_end(&pr);
  return -1;
}

/* Compiles the training entry before the first step when the program
 * compiles on demand, so step times and the ETA are the steps' own. */
static int prepare(Run *r, RtErr *e) {
  if (!r->p->prepare) return 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (!r->o->quiet) fprintf(stderr, "compiling %s ...", r->en->name);
  int rc = rt_program_prepare(r->p, r->entry, e);
  if (rc == 0 && r->eval) rc = rt_train_eval_prepare(r->eval, e);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!r->o->quiet)
    fprintf(stderr, rc ? " failed\n" : " %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
  return rc;
}

int rt_train(RtProgram *p, const RtTrainOptions *o, RtTrainResult *res, RtErr *e) {
  memset(res, 0, sizeof *res);
  res->loss = NAN;
  Run r = {.p = p, .o = o};
  Handlers h;
  handlers_install(&h);
  int rc = setup(&r, e);
  if (rc == 0) {
    res->step = r.first;
    if (r.first == o->steps) {
      if (!o->quiet)
        fprintf(stderr, "%s: already trained for %llu steps; nothing to do\n", o->resume,
                (unsigned long long)o->steps);
    } else {
      rc = prepare(&r, e);
      if (rc == 0) rc = loop(&r, res, e);
    }
  }
  if (r.log) {
    if (rt_stream_close(r.log, o->log, rc ? NULL : e)) rc = -1;
    r.log = NULL;
  }
  teardown(&r);
  handlers_restore(&h);
  return rc;
}
