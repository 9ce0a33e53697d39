/* checkpoint.h — saving and restoring an RtProgram's state.
 *
 * A checkpoint is a safetensors file (safetensors.h) holding every state
 * tensor under its own name (parameters with their MODELS.md names, so the
 * file loads into the PyTorch reference; optimizer state as "opt.*"), in
 * state order, with string metadata:
 *   dal.model, dal.config   what the state belongs to
 *   dal.step                training steps completed (the next step to run)
 *   dal.seed                the run's seed: with dal.step it is the whole RNG
 *                           state, since every random draw (initialisation,
 *                           data, noise) is counter-based
 *   dal.steps               the run's planned number of steps
 *   dal.init                (only when the run used --init) which files
 *                           initialised which parameters: "PREFIX=FILE;..."
 *   dal.source              the model's source file, as an absolute path when it exists
 *   dal.source_hash         RtProgram.source_hash, when the program has one
 *   dal.tokenizer           the captions' BPE tokenizer (its JSON), when the run had one
 *   dal.ema                 (only when the run keeps an EMA, train --ema) its decay
 *   dal.run                 the settings a resume must keep (train.h), when a training run wrote it
 *   dal.resume_changed      (only after a `--resume-changed`) which settings changed at which step
 * With the tokenizer, a checkpoint is a whole model file: `generate --model
 * FILE` needs nothing else (exe_generate.c).
 *
 * EMA. A run with `train --ema D` keeps an exponential moving average of
 * every parameter; its checkpoints hold it after the state, as tensors
 * "ema.<name>" (f32, the parameter's shape), one per parameter. Beside each
 * such checkpoint the run writes an EMA model file (train.h): the EMA
 * under the parameters' own names, the state other than the optimizer's
 * ("opt.*"), the checkpoint's metadata and dal.params = "ema". It is a
 * model file (`generate --model`, `--params`) but not a checkpoint to
 * resume from.
 * Files are written atomically (fileio.h): a crash never leaves a partial one.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_CHECKPOINT_H
#define DAL_RT_CHECKPOINT_H

#include <stdint.h>

#include "runtime/sched/program.h"

typedef struct {
  uint64_t step;  /* steps completed */
  uint64_t seed;
  uint64_t steps; /* planned total */
  const char *tokenizer; /* the BPE tokenizer's JSON (bpe.h) for captions, or NULL; saved only */
  char init[1024]; /* dal.init, "" if none */
  double ema_decay; /* dal.ema: the decay of the EMA the file holds; 0: none */
  const RtTensorList *ema; /* "ema.<name>" tensors written after the state, or NULL; saved only */
  char run[4096];     /* dal.run: the run's settings (train.h, rt_train_settings), "" if none */
  char changed[2048]; /* dal.resume_changed: settings changed on resumes (train.h), "" if none */
} RtCheckpointInfo;

#define RT_EMA_PREFIX "ema."

/* Whether two model names are the same model: compared without directory
 * or extension, since a backend may name the model by its source path,
 * which depends on where it was run from. */
bool rt_same_model(const char *a, const char *b);

/* Writes p's state (all but the transient part) and 'info' to 'path'. */
int rt_checkpoint_save(const char *path, const RtProgram *p, const RtCheckpointInfo *info, RtErr *e);

/* Restores p's state (all but the transient part) from a checkpoint written for the same model
 * and config (model names compared without directory or extension), and
 * fills *info (info->ema stays NULL: rt_checkpoint_load_ema reads the EMA).
 * Every state tensor must be present with its
 * dtype and shape and nothing else may be but "ema.<name>" of the shape of
 * parameter <name>; the file's metadata must hold
 * dal.step and dal.seed. Everything is checked before anything is copied,
 * so on failure the state is unchanged. An EMA model file is refused. */
int rt_checkpoint_load(const char *path, RtProgram *p, RtCheckpointInfo *info, RtErr *e);

/* Sets p's parameters from any safetensors file that has them all (a
 * checkpoint, or parameters saved by PyTorch); other state tensors are
 * taken from the file when present and zeroed otherwise; tensors the
 * program does not have are ignored. On failure the state is unchanged. */
int rt_checkpoint_load_params(const char *path, RtProgram *p, RtErr *e);
/* The same from tensors already read ('path' names them in messages). */
int rt_checkpoint_set_params(const RtTensorList *l, const char *path, RtProgram *p, RtErr *e);

/* rt_checkpoint_load_params with the EMA as the parameters: every
 * parameter <name> from "ema.<name>" of a checkpoint written with --ema
 * (the other state as rt_checkpoint_load_params takes it), or from an EMA
 * model file's parameters. An error naming the file when it holds no EMA
 * or lacks one parameter's. On failure the state is unchanged. */
int rt_checkpoint_load_params_ema(const char *path, RtProgram *p, RtErr *e);

/* Copies the "ema.<name>" tensors of the checkpoint at 'path' into 'ema'
 * (a list of f32 tensors shaped like p's parameters, entry i for parameter
 * i, named "ema.<name>") and sets *decay from dal.ema. An error if the file
 * has no EMA or any of them is missing or misshapen; 'ema' is then
 * unchanged. */
int rt_checkpoint_load_ema(const char *path, const RtProgram *p, RtTensorList *ema, double *decay, RtErr *e);

/* Writes the EMA model file of a checkpoint (see the file comment):
 * info->ema must hold the EMA. */
int rt_checkpoint_save_ema_model(const char *path, const RtProgram *p, const RtCheckpointInfo *info, RtErr *e);

/* ---- initialising part of a model from other files (checkpoint_init.c) ----
 *
 * `--init PREFIX=FILE.safetensors` (repeatable): every tensor NAME of FILE
 * sets the program's parameter PREFIX.NAME (PREFIX empty: `--init =FILE`
 * or `--init FILE`, NAME itself; a trailing '.' on PREFIX is allowed).
 * Tensors named "opt.*" (optimizer moments and counters of a training
 * checkpoint) and "ema.*" (its EMA) are skipped: the program's optimizer
 * state is not touched (to start from an EMA, --init from the run's EMA
 * model file).
 * Errors, each naming the file and the tensor: a tensor with no parameter
 * of that name; a shape or dtype that differs (both shapes given); a
 * parameter under PREFIX (every parameter when PREFIX is empty) that the
 * file does not set; a parameter set by two --init files; a file that sets
 * nothing. With --init-partial the first and third are allowed (tensors
 * without a parameter are skipped, parameters the file lacks keep their
 * values), with a note on stderr saying how many. Everything is checked
 * before anything is copied: on failure the state is unchanged. */
#define RT_INIT_MAX 16

typedef struct {
  char prefix[128];  /* without its trailing '.'; "" for none */
  const char *path;
} RtInitFile;

typedef struct {
  RtInitFile file[RT_INIT_MAX];
  int n;
  bool partial;      /* --init-partial */
} RtInitFrom;

/* Appends "PREFIX=FILE", "=FILE" or "FILE" (the value of an --init flag;
 * the path is split at the first '=', so a path holding one needs the
 * "=FILE" form). The entry points into 'arg', which must outlive l (argv). */
int rt_init_from_add(RtInitFrom *l, const char *arg, RtErr *e);
/* Sets the parameters from every file of l, in order (see above). */
int rt_init_from_apply(RtProgram *p, const RtInitFrom *l, RtErr *e);
/* "vae=dvae.safetensors;=other.safetensors" into buf ("" if l is empty). */
void rt_init_from_describe(const RtInitFrom *l, char *buf, size_t size);

#endif
