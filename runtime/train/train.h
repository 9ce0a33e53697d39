/* train.h — the training driver: the loop behind `EXE train ...`.
 *
 *   train --steps N [--fn NAME] [--data SPEC] [--tokenizer TOK.json] [--seed S] [--lr X]
 *         [--warmup K] [--lr-decay none|cos|linear] [--lr-min X]
 *         [--set NAME=V]... [--anneal NAME=FROM:TO[:SHAPE[:K]]]... [--params P.safetensors]
 *         [--init PREFIX=FILE.safetensors]... [--init-partial]
 *         [--checkpoint PATH] [--every K|none] [--resume PATH [--resume-changed]] [--log FILE.tsv] [--quiet]
 *         [--ema D] [--eval-every K --eval-fn NAME... --eval-data SPEC [--eval-batches M] [--eval-ema]]
 *         [--stop-on-divergence]
 *
 * Step s (0-based, s < N) runs the training entry once on: the dataset's
 * batch of step s for the inputs the dataset fills; the learning rate of
 * step s (below) for "opt.lr"; for every other (scalar) input a --set
 * constant or an --anneal schedule. The seed (default 0)
 * initialises the parameters, orders the data and draws the noise; every
 * one of those is a pure function of (seed, step), so the whole RNG state
 * of a run is its seed and its step.
 *
 * Schedules (train_schedule.c), each a pure function of the step s, so a
 * resumed run sees the values the uninterrupted one does:
 *   --anneal NAME=FROM:TO[:SHAPE[:K]]   FROM at step 0, TO at step K and
 *       after; K defaults to N-1 (the schedule spans the run). With
 *       t = min(1, s/K) (t = 0 when K = 0), SHAPE is
 *         geom    FROM * (TO/FROM)^t          (the default; FROM, TO non-zero, same sign)
 *         linear  FROM + (TO - FROM) * t
 *         cos     TO + (FROM - TO) * (1 + cos(pi t)) / 2
 *       e.g. tau=1:0.0625:cos (the dVAE's temperature, cosine over the run),
 *       beta=0:6.6:linear:5000 (the KL weight ramped over 5000 steps, then held).
 *   --lr X (default: the model's lr) with
 *   --warmup K      step s < K runs at X * (s+1)/K (linear from 0; X at step K-1)
 *   --lr-decay D    from step K (0 without --warmup) to step N-1: none (X
 *                   throughout, the default), cos (--lr-min + (X - --lr-min)
 *                   * (1 + cos(pi u)) / 2) or linear (X + (--lr-min - X) * u),
 *                   u = (s - K) / (N-1-K) (0 if N-1 <= K)
 *   --lr-min M      where the decay ends (default 0; 0 <= M <= X)
 *
 * --tokenizer TOK.json: the dataset's captions, BPE-encoded, fill the
 * entry's input "text" (data.h); a training entry with a "text" input and
 * a captioned dataset needs it. --params P sets every parameter from P
 * instead of the seed's initialisers; --init PREFIX=FILE then sets the
 * parameters under PREFIX from FILE (checkpoint.h: a trained dVAE inside
 * DALL-E), before step 0. Neither goes with --resume, which restores the
 * whole state; a checkpoint records the --init files (dal.init), and a
 * resumed run keeps that record.
 *
 * Checkpoints (checkpoint.h) go to --checkpoint (default: the --resume path,
 * else "MODEL-CONFIG.safetensors" in the current
 * directory, MODEL without directory or extension) every K steps (--every, default N/10
 * rounded up; --every none: only at the end) and at the end. SIGINT,
 * SIGTERM or SIGHUP (a closed terminal; not under nohup, which ignores it)
 * lets the running step finish, writes a checkpoint and stops the run (a
 * second signal ends the process at once; the last checkpoint stays whole).
 * Before any work (compiling, data, the first step) the checkpoint's and
 * the log's paths are checked for writing (fileio.h rt_check_writable),
 * and the run takes an advisory lock on "CKPT.lock" (rt_lock_take) for its
 * whole length: a second run on the same checkpoint is refused, naming
 * the holder's pid; a run that dies releases it (flock), so a leftover
 * lock file never blocks. Every write (checkpoints, the EMA model, the
 * log) is checked: a failure (a full disk) stops the run with an error
 * naming the file, the last complete checkpoint kept.
 * --resume PATH restores the state, step and seed of a checkpoint and goes
 * on to step N: with the same flags, a run interrupted at any point (a
 * signal, or SIGKILL between checkpoints) and resumed from its last
 * checkpoint computes bit-identically what the uninterrupted run does.
 * Flags that would break that are refused (the settings below,
 * train_settings.c), each named with its old and new value, unless
 * --resume-changed says the change is intended.
 *
 * --ema D (0 < D < 1, e.g. 0.999) keeps an exponential moving average of
 * every parameter, in f32: it starts as the parameters the run starts
 * from, and after step s (0-based)
 *     ema = d * ema + (1 - d) * param,   d = min(D, (1 + s) / (10 + s))
 * (computed in double, stored as f32). The warm-up of d, rather than a
 * zero start with bias correction, makes the average follow the
 * parameters closely early on (d = 0.1 after step 0, 0.9 after step 80,
 * 0.99 after step 890), so that it never weighs in the random
 * initialisation for long, which matters for runs of a few thousand steps
 * where 1/(1-D) is a large part of the run; D itself is reached at step
 * (10 D - 1) / (1 - D) (8990 for 0.999). Every checkpoint holds the EMA as
 * "ema.<name>" tensors with its decay (checkpoint.h), so a resumed run
 * continues it bit-identically (--resume without --ema keeps the
 * checkpoint's decay; another --ema D than the checkpoint's is an error,
 * and so is --ema with a checkpoint that has none); beside each checkpoint
 * goes the EMA model file rt_train_ema_path gives (CKPT.ema.safetensors),
 * the EMA as the parameters, which `generate --model` reads like a
 * checkpoint. rt_checkpoint_load_params_ema reads the EMA of a checkpoint
 * as the parameters.
 *
 * Evaluation (train_eval.c): --eval-every K --eval-fn NAME --eval-data SPEC
 * runs inference entry NAME (never a training entry: that would update the
 * parameters), which must return a scalar f32 first (a held-out loss the
 * model declares), on batches 0 .. M-1 of dataset SPEC (--eval-batches M,
 * default 8; e.g. shapes:test or fashion-mnist:test), after every step s
 * with (s+1) % K == 0 and after the last step, and logs the mean of the M
 * values. The batches are the same at every evaluation (batch j of the
 * dataset under the run's seed, with the noise of step j), so the numbers
 * are comparable along the run. The entry's inputs come from the dataset
 * (its captions encoded with --tokenizer into "text", as for training) and,
 * for scalar inputs of the same name as a --set/--anneal one (tau, beta),
 * from that schedule at step s. --eval-fn may be repeated (up to
 * RT_TRAIN_MAX_EVALS entries, each on its own copy of SPEC). --eval-ema
 * (with --ema) evaluates every entry a second time with the EMA in place of
 * the parameters (restored bit for bit afterwards). Evaluating changes
 * nothing of the training: its losses, state and checkpoints are the ones
 * the run without evaluation has.
 *
 * --log FILE.tsv gets a header "step<TAB>loss<TAB>scheduled inputs..." and one
 * line per step with the loss and the value every scheduled input had
 * (the learning rate under its input name "opt.lr"; %.9g: exact for
 * f32), then a column "eval.NAME" per --eval-fn (and "eval.NAME.ema" right
 * after it with --eval-ema), empty on the steps without an evaluation,
 * %.9g of the mean (a double) where there is one. On --resume the file keeps its lines for the steps before the
 * checkpoint's and drops later ones (a killed run may have logged steps that
 * are run again), so a resumed run's log equals the uninterrupted run's.
 * Numerics (train_numerics.c, runtime/core/numerics.h). A step whose loss
 * is not finite stops the run; before it does, the run goes back to the
 * last state it has on disk or started from (its last checkpoint, else
 * the --resume checkpoint, else the initial state) and runs the steps from
 * there to the failing one again with --check-numerics on, so the error
 * names the first op (and .dal line, buffer, element, step) that made a
 * non-finite value. The replay computes what the run did bit for bit (a
 * run's results are a function of its seed and steps), costs nothing
 * until a loss is non-finite, and writes no checkpoint or log line: the
 * last checkpoint is kept as it was. A loss that diverges (RtDiverge) is
 * reported once on stderr; with --stop-on-divergence the run then ends
 * with exit status 1 after writing the checkpoint of the last good state:
 * when step s trips the rule, the state after s - 1 steps (the parameters
 * whose loss, step s - 1's, did not trip it), the checkpoint of step
 * s - 1. For that the run keeps the state from before each of its last
 * two steps in memory (two copies of what a checkpoint holds, made only
 * with the flag).
 * Module prefix: rt_.
 */
#ifndef DAL_RT_TRAIN_H
#define DAL_RT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/io/checkpoint.h"
#include "runtime/sched/program.h"

/* How a schedule goes from FROM to TO (see the file comment). */
typedef enum { RT_ANNEAL_GEOM, RT_ANNEAL_LINEAR, RT_ANNEAL_COS } RtAnnealShape;

typedef struct {
  char name[128];     /* the input's name */
  bool anneal;        /* false: --set NAME=from; true: --anneal NAME=from:to[:shape[:over]] */
  double from, to;
  RtAnnealShape shape; /* --anneal's; RT_ANNEAL_GEOM unless given */
  uint64_t over;      /* --anneal's K: TO from step K on; 0: the whole run (TO at step N-1) */
} RtTrainScalar;

/* The learning rate's decay after the warm-up (--lr-decay). */
typedef enum { RT_LR_CONSTANT, RT_LR_COS, RT_LR_LINEAR } RtLrDecay;

#define RT_TRAIN_MAX_SCALARS 32
#define RT_TRAIN_MAX_EVALS 8

typedef struct {
  const char *fn;          /* the training entry; NULL: the program's only one, or "loss" */
  uint64_t steps;          /* N, > 0 */
  const char *data;        /* dataset spec (data.h); NULL: "shapes" */
  uint64_t seed;
  bool seed_given;         /* --seed was given (on --resume it must equal the checkpoint's) */
  double lr;
  bool lr_given;           /* else p->lr */
  uint64_t warmup;         /* --warmup K: steps of linear warm-up (0: none) */
  RtLrDecay lr_decay;      /* --lr-decay */
  double lr_min;           /* --lr-min: where the decay ends */
  bool lr_min_given;
  RtTrainScalar scalar[RT_TRAIN_MAX_SCALARS];
  int nscalar;
  const char *params;      /* start from these parameters instead of the seed's */
  RtInitFrom init;         /* --init PREFIX=FILE..., --init-partial: applied after params */
  const char *tokenizer;   /* --tokenizer: captions into the input "text" */
  const char *checkpoint;  /* NULL: the default above */
  uint64_t every;
  bool every_given;        /* else N/10 rounded up */
  const char *resume;
  const char *log;
  bool quiet;              /* no progress line or summary */
  double ema;              /* --ema D: the EMA's decay; 0: no EMA (on --resume: the checkpoint's) */
  const char *eval_fn[RT_TRAIN_MAX_EVALS]; /* --eval-fn NAME... */
  int neval;
  uint64_t eval_every;     /* --eval-every K (0: no evaluation) */
  const char *eval_data;   /* --eval-data SPEC */
  uint64_t eval_batches;   /* --eval-batches M (default 8) */
  bool eval_ema;           /* --eval-ema */
  bool resume_changed;     /* --resume-changed: resume although settings differ (train_settings.c) */
  bool stop_on_divergence; /* --stop-on-divergence: see RtDiverge */
} RtTrainOptions;

typedef struct {
  uint64_t step;           /* steps completed */
  double loss;             /* the last step's loss (NaN if no step ran) */
  int signal;              /* the signal that stopped the run early, else 0 */
  char checkpoint[1024];   /* the checkpoint path ("" if none was written) */
  char ema_model[1024];    /* the EMA model file written beside it ("" if none) */
} RtTrainResult;

/* Fills o from the arguments after "train" (argv[0] is the first flag). */
int rt_train_parse(int argc, char **argv, RtTrainOptions *o, RtErr *e);

/* Runs the training loop. Returns 0 when the run reached step N or was
 * stopped by a signal after writing its checkpoint (res->signal says which),
 * -1 with e->msg on any error (flags, data, files, a non-finite loss); the
 * last checkpoint written is then kept as it was. Progress and messages go
 * to stderr. */
int rt_train(RtProgram *p, const RtTrainOptions *o, RtTrainResult *res, RtErr *e);

/* ---- schedules (train_schedule.c) ---- */

/* The value of --set/--anneal schedule 'sc' at step s of a run of n steps. */
double rt_train_scalar_value(const RtTrainScalar *sc, uint64_t s, uint64_t n);
/* The learning rate of step s under o's --warmup/--lr-decay/--lr-min,
 * 'lr' the base rate (--lr or the model's) and o->steps the run's length. */
double rt_train_lr(const RtTrainOptions *o, double lr, uint64_t s);
/* "geom", "linear", "cos" (NULL: unknown) and back (-1: unknown). */
const char *rt_anneal_shape_name(RtAnnealShape shape);
int rt_anneal_shape_parse(const char *name);

/* ---- the EMA of the parameters (train_ema.c) ---- */

/* "ema.<name>" copies of p's parameters (f32 only: an error names another). */
RtTensorList *rt_ema_new(const RtProgram *p, RtErr *e);
/* The decay applied after step t: min(decay, (1 + t) / (10 + t)). */
double rt_ema_decay(double decay, uint64_t t);
/* ema = d ema + (1 - d) param for every parameter, d = rt_ema_decay(decay, t). */
void rt_ema_update(RtTensorList *ema, const RtProgram *p, double decay, uint64_t t);
/* The EMA model file beside checkpoint 'ckpt': "X.ema.safetensors" for
 * "X.safetensors", else ckpt + ".ema.safetensors". */
void rt_train_ema_path(const char *ckpt, char *buf, size_t size);

/* ---- evaluation during training (train_eval.c) ---- */

typedef struct RtTrainEval RtTrainEval;

/* Opens o's --eval-fn entries on o->eval_data under 'seed'; 'ema' is the
 * run's EMA (NULL: none; --eval-ema needs one). NULL with a message naming
 * the flag, entry or input on error. */
RtTrainEval *rt_train_eval_open(RtProgram *p, const RtTrainOptions *o, uint64_t seed, RtTensorList *ema, RtErr *e);
void rt_train_eval_free(RtTrainEval *ev); /* NULL is a no-op */
/* How many log columns the evaluations add, and their names, each after a
 * tab, appended to buf. */
int rt_train_eval_columns(const RtTrainEval *ev);
void rt_train_eval_header(const RtTrainEval *ev, char *buf, size_t size);
/* Whether an evaluation follows step s (ev NULL: never). */
bool rt_train_eval_due(const RtTrainEval *ev, uint64_t s);
/* Compiles the entries up front when the program compiles on demand. */
int rt_train_eval_prepare(RtTrainEval *ev, RtErr *e);
/* Evaluates after step s: values[0 .. rt_train_eval_columns) in column order. */
int rt_train_eval_run(RtTrainEval *ev, uint64_t s, double *values, RtErr *e);

/* ---- the settings a resume must keep (train_settings.c) ----
 *
 * A checkpoint records (dal.run) the settings that decide what the run's
 * steps compute, one "KEY=VALUE" line each, KEY the flag that sets it: the
 * training entry (--fn); the fingerprint of the model's source ("model
 * source"); the data (--data) and the tokenizer's fingerprint; the
 * learning-rate schedule (--lr, the model's when not given, --warmup,
 * --lr-decay, --lr-min) and, when a schedule spans the run, --steps; for
 * every input of the entry ("input NAME") its type, which holds the batch
 * size, or its --set/--anneal schedule. The seed and --ema are checked on
 * their own (start_state). A --resume whose settings differ is refused,
 * naming each change, unless --resume-changed says it is intended; the
 * checkpoints of that run then record the change (dal.resume_changed:
 * "step K: CHANGES", accumulated over resumes). */

/* The settings of a run of o on entry 'en' at learning rate 'lr' with
 * 'tokenizer' (its JSON, or NULL) into buf ("KEY=VALUE\n" lines). */
void rt_train_settings(const RtProgram *p, const RtTrainOptions *o, const RtEntrySpec *en, double lr,
                       const char *tokenizer, char *buf, size_t size);
/* Whether settings 'now' differ from a checkpoint's 'then' ("" when the
 * checkpoint predates dal.run: never); 'changes' gets "KEY OLD -> NEW; ...". */
bool rt_train_settings_diff(const char *then, const char *now, char *changes, size_t size);

/* The log file (train_log.c): opens 'path' for appending step lines after
 * 'first' steps: a fresh file with 'header' when first == 0 (or the file
 * does not exist), else the old file cut to its header and its lines for
 * steps < first (rewritten atomically). */
FILE *rt_train_log_open(const char *path, const char *header, uint64_t first, RtErr *e);

/* ---- numerics: divergence and snapshots (train_numerics.c) ---- */

/* Divergence (reported once per run; --stop-on-divergence stops there).
 * The smoothed loss is an exponential moving average of the step losses,
 *     smoothed = 0.9 smoothed + 0.1 loss,   starting at the run's first loss,
 * and the run diverges at the first step where smoothed > 10 * start,
 * start being the first step's loss of this run (after a --resume: the
 * first step it runs), when that is positive. `--lr 1e6` on the dVAE tiny
 * (loss 0.65, then 4.5e27) trips it at its second step. A schedule that
 * raises the loss on purpose (a KL weight annealed up by a large factor)
 * can trip it too: it is a report, and stopping is opt-in. */
#define RT_DIVERGE_FACTOR 10.0
#define RT_DIVERGE_SMOOTH 0.9
typedef struct {
  bool started, diverged;
  uint64_t first;          /* the step of 'start' */
  double start, smoothed;
} RtDiverge;

/* Adds step s's (finite) loss; true at the step the rule first trips. */
bool rt_diverge_add(RtDiverge *d, uint64_t s, double loss);

/* A copy of the state a checkpoint holds (the program's saved tensors and
 * the EMA, if any) as it was before step 'step' ran: what
 * --stop-on-divergence goes back to. */
typedef struct {
  bool valid;
  uint64_t step;
  size_t bytes;
  unsigned char *data;
} RtTrainSnap;

int rt_train_snap_take(RtTrainSnap *sn, const RtProgram *p, const RtTensorList *ema, uint64_t step, RtErr *e);
/* Puts the state (and EMA) back as it was at rt_train_snap_take. */
void rt_train_snap_restore(const RtTrainSnap *sn, RtProgram *p, RtTensorList *ema);
void rt_train_snap_free(RtTrainSnap *sn);

#endif
