/* program.h — the runtime's view of a runnable model, whatever compiled it.
 *
 * A backend (the reference executor through ir/ref/ref_program.h, or the
 * code that an AOT-built executable links in) describes its model as an
 * RtProgram: the persistent state, the entry functions with their argument
 * types, and a function that runs one entry. Everything the executables do
 * from their command line (training, running an entry on .npy files,
 * checkpoints, datasets) is written against this struct alone, so it works
 * the same for every backend and never needs the compiler.
 *
 * State. p->state holds every persistent tensor by name: first the
 * trainable parameters (state->tensor[0 .. nparam), named as in MODELS.md),
 * then the non-trainable state (optimizer moments "opt.m.<name>",
 * "opt.v.<name>", the step counter "opt.step", ...), then the transient
 * state (tensor[nsaved .. n)): scratch that entries keep from one run to
 * the next, such as a sampler's KV cache, which checkpoints never hold.
 * The backend allocates
 * these tensors once and may keep pointers to them: their contents change
 * (a training step, init, a checkpoint being restored) but the tensors are
 * never replaced, and nobody but the backend adds or removes entries.
 *
 * Module prefix: rt_.
 */
#ifndef DAL_RT_PROGRAM_H
#define DAL_RT_PROGRAM_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

/* One argument or result of an entry: its name, dtype and shape. */
typedef struct {
  const char *name;
  RtDType dtype;
  int rank;
  int64_t dim[RT_MAX_RANK];
} RtArgSpec;

/* The name of the learning-rate input of a training step (a scalar f32). */
#define RT_LR_INPUT "opt.lr"

typedef struct {
  const char *name;
  bool train;                 /* one training step: output 0 is the scalar f32 loss and
                                 running it updates the program's state */
  int ninput;
  const RtArgSpec *input;     /* (ninput), in signature order; a training step also has
                                 the scalar input RT_LR_INPUT when its optimizer needs one */
  int noutput;
  const RtArgSpec *output;    /* (noutput) */
} RtEntrySpec;

typedef struct RtProgram RtProgram;
struct RtProgram {
  const char *model, *config; /* for messages and checkpoint metadata */
  RtTensorList *state;        /* see the file comment */
  int nparam;                 /* state->tensor[0 .. nparam) are the parameters */
  int nsaved;                 /* state->tensor[0 .. nsaved) are what checkpoints hold */
  int nentry;
  const RtEntrySpec *entry;   /* (nentry) */
  double lr;                  /* the model's default learning rate (config constant `lr`) */
  const char *source_hash;    /* fingerprint of the .dal sources (frontend.h fe_source_hash), or NULL */

  /* Resets the state: parameters from their initialisers under 'seed' (the
   * same values for the same name and seed, see runtime/core/init.h), every
   * other state tensor to zeros. */
  int (*init)(RtProgram *p, uint64_t seed, RtErr *e);
  /* Runs entry 'entry' on inputs[0 .. ninput) (matching entry[entry].input
   * in dtype and shape; errors name the input). On success outputs[k] are
   * new tensors the caller frees; on failure they are NULL, e->msg says why
   * and the state is unchanged. Random noise inside the entry (the dVAE's
   * Gumbel noise) is a pure function of (seed, step): the same values for
   * the same seed and step. */
  int (*run)(RtProgram *p, int entry, RtTensor *const *inputs, RtTensor **outputs, uint64_t seed,
             uint64_t step, RtErr *e);
  /* Makes entry 'entry' ready to run, so its first run costs what any run
   * does (a program that compiles entries on demand compiles it now); NULL
   * when every entry is always ready. Runs call it themselves if needed. */
  int (*prepare)(RtProgram *p, int entry, RtErr *e);
  void (*free)(RtProgram *p); /* frees everything, p included */
  void *ctx;                  /* the backend's */
};

/* The entry called 'name', or -1. */
static inline int rt_program_entry(const RtProgram *p, const char *name) {
  for (int i = 0; i < p->nentry; i++)
    if (strcmp(p->entry[i].name, name) == 0) return i;
  return -1;
}

/* Input 'name' of an entry, or -1. */
static inline int rt_entry_input(const RtEntrySpec *en, const char *name) {
  for (int i = 0; i < en->ninput; i++)
    if (strcmp(en->input[i].name, name) == 0) return i;
  return -1;
}

static inline int rt_program_prepare(RtProgram *p, int entry, RtErr *e) {
  return p->prepare ? p->prepare(p, entry, e) : 0;
}

static inline void rt_program_free(RtProgram *p) {
  if (p) p->free(p);
}

/* The executables' command line; returns the process exit status.
 * argv[0] names the program in messages, argv[1] is the command:
 *
 *   info                               the model, its entries and state
 *   train --steps N [options]          training (runtime/train/train.h lists the options)
 *   run --fn NAME --in NAME=FILE.npy|NAME=NUMBER ... [--out NAME=FILE.npy ...]
 *       [--params P.safetensors] [--save-state P.safetensors] [--seed S] [--step K]
 *                                      one entry on .npy inputs
 *   data [--data SPEC] [--out grid.png] [--batch B] [--size S] [--step K] [--seed S]
 *                                      one batch of a dataset, as a PNG grid and captions
 *   tokenize --data SPEC --tokenizer T --out FILE [--count N] ...
 *                                      a token cache for --data tokens:FILE (exe_tokenize.c)
 *   eval dvae|gpt|classify --data SPEC ... [--json]
 *                                      held-out figures (exe_eval.c)
 *   sample (--in text=FILE.npy | --captions F --tokenizer T | --bench) [--params P]
 *       [--temperature T] [--top-k K] [--sample-seed S] [--no-cache] [--json] [--out FILE.npy]
 *                                      image tokens drawn with the KV cache (exe_sample.c)
 *   generate --model FILE [CAPTION ...] [--n N] [--out grid.png] ...
 *                                      images from captions, from one model file (exe_generate.c)
 *   bench [...]                        ms/step of an entry (exe_bench.c)
 *   help                               this list
 *
 * Errors (bad flags, files, data) print "NAME: error: ..." on stderr and give
 * status 1; an interrupted training run gives 128 + the signal number (130
 * for SIGINT) after writing its checkpoint. rt_main never exits the process
 * itself and frees nothing of p. */
int rt_main(RtProgram *p, int argc, char **argv);

#endif
