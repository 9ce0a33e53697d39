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
 *   dal.source              the model's source file, as an absolute path when it exists
 *   dal.source_hash         RtProgram.source_hash, when the program has one
 *   dal.tokenizer           the captions' BPE tokenizer (its JSON), when the run had one
 * With the tokenizer, a checkpoint is a whole model file: `generate --model
 * FILE` needs nothing else (exe_generate.c).
 * Files are written atomically (fileio.h): a crash never leaves a partial one.
 * Module prefix: rt_.
 */
#ifndef DAL_RT_CHECKPOINT_H
#define DAL_RT_CHECKPOINT_H

#include <stdint.h>

#include "program.h"

typedef struct {
  uint64_t step;  /* steps completed */
  uint64_t seed;
  uint64_t steps; /* planned total */
  const char *tokenizer; /* the BPE tokenizer's JSON (bpe.h) for captions, or NULL; saved only */
} RtCheckpointInfo;

/* Writes p's state (all but the transient part) and 'info' to 'path'. */
int rt_checkpoint_save(const char *path, const RtProgram *p, const RtCheckpointInfo *info, RtErr *e);

/* Restores p's state (all but the transient part) from a checkpoint written for the same model
 * and config (model names compared without directory or extension), and
 * fills *info. Every state tensor must be present with its
 * dtype and shape and nothing else may be; the file's metadata must hold
 * dal.step and dal.seed. Everything is checked before anything is copied,
 * so on failure the state is unchanged. */
int rt_checkpoint_load(const char *path, RtProgram *p, RtCheckpointInfo *info, RtErr *e);

/* Sets p's parameters from any safetensors file that has them all (a
 * checkpoint, or parameters saved by PyTorch); other state tensors are
 * taken from the file when present and zeroed otherwise; tensors the
 * program does not have are ignored. On failure the state is unchanged. */
int rt_checkpoint_load_params(const char *path, RtProgram *p, RtErr *e);

#endif
