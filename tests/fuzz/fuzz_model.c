/* fuzz_model.c — the metadata of a model file / training checkpoint
 * (runtime/io/checkpoint*.c and what `generate --model` reads of it,
 * runtime/exe/exe_generate.c): dal.model, dal.config, dal.step, dal.seed,
 * dal.steps, dal.params, dal.init, dal.ema, dal.source_hash and
 * dal.tokenizer (a BPE tokenizer's JSON inside a JSON string).
 *
 * Input: the safetensors file. It goes through every reader of a model
 * file into a small stand-in program (model "m", config "tiny"; parameter
 * "w" f32 [2], optimizer state "opt.w" f32 [2]): rt_checkpoint_load,
 * rt_checkpoint_load_params, rt_checkpoint_load_params_ema and
 * rt_checkpoint_load_ema, then the tokenizer as generate parses it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/safetensors.h"
#include "tests/fuzz/fuzz.h"

#define MODEL_MAX_INPUT 32768

static RtProgram *stand_in(void) {
  static RtProgram p;
  if (p.state) return &p;
  RtErr e;
  const int64_t dim[1] = {2};
  p.model = "m.dal";
  p.config = "tiny";
  p.state = rt_list_new();
  rt_list_put(p.state, "w", rt_tensor_new(RT_F32, 1, dim, &e));
  rt_list_put(p.state, "opt.w", rt_tensor_new(RT_F32, 1, dim, &e));
  p.nparam = 1;
  p.nsaved = 2;
  return &p;
}

/* What generate does with the metadata (exe_generate.c open_model). */
static int tokenizer(const char *path) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  RtErr e = {{0}};
  if (rt_safetensors_read_meta(path, &l, &m, &e)) return fuzz_refused(e.msg);
  const char *model = rt_meta_get(m, "dal.model"), *config = rt_meta_get(m, "dal.config");
  const char *json = rt_meta_get(m, "dal.tokenizer");
  int rc = FUZZ_ACCEPTED;
  if (model && config && json && rt_same_model(model, "m.dal")) {
    RtBpe *b = rt_bpe_parse(json, "dal.tokenizer", &e);
    if (!b) rc = fuzz_refused(e.msg);
    else if (rt_bpe_vocab(b) < rt_bpe_size(b)) abort();
    rt_bpe_free(b);
  }
  rt_list_free(l);
  rt_meta_free(m);
  return rc;
}

int fuzz_model(const uint8_t *data, size_t n) {
  if (n > MODEL_MAX_INPUT) return FUZZ_SKIPPED;
  const char *path = fuzz_write("model.safetensors", data, n);
  if (!path) return FUZZ_SKIPPED;
  char file[1024];
  snprintf(file, sizeof file, "%s", path);
  RtProgram *p = stand_in();
  RtErr e = {{0}};
  RtCheckpointInfo info;
  int accepted = 0;
  if (rt_checkpoint_load(file, p, &info, &e) == 0) accepted++;
  else fuzz_refused(e.msg);
  e.msg[0] = 0;
  if (rt_checkpoint_load_params(file, p, &e) == 0) accepted++;
  else fuzz_refused(e.msg);
  e.msg[0] = 0;
  if (rt_checkpoint_load_params_ema(file, p, &e) == 0) accepted++;
  else fuzz_refused(e.msg);
  RtTensorList *ema = rt_list_new();
  const int64_t dim[1] = {2};
  rt_list_put(ema, "ema.w", rt_tensor_new(RT_F32, 1, dim, &e));
  double decay;
  e.msg[0] = 0;
  if (rt_checkpoint_load_ema(file, p, ema, &decay, &e) == 0) accepted++;
  else fuzz_refused(e.msg);
  rt_list_free(ema);
  if (tokenizer(file) == FUZZ_ACCEPTED) accepted++;
  return accepted ? FUZZ_ACCEPTED : FUZZ_REFUSED;
}
