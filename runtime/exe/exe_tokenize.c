/* exe_tokenize.c — `tokenize`: a token cache (data.h) for training the GPT
 * without running the dVAE at every step.
 *
 *   tokenize --data SPEC [--count N] --tokenizer TOK.json --out FILE.safetensors
 *            [--fn tokens] [--len L] [--params P.safetensors]
 *            [--init PREFIX=FILE]... [--init-partial] [--seed S]
 *
 * Runs the image -> tokens entry (default "tokens": one input f32
 * [B, 3, S, S], output i32 [B, g, g] or [B, g*g]) over examples 0 .. N-1 of
 * the dataset, B at a time (the last batch padded with repeats of the last
 * example, whose rows are dropped), and writes their image tokens with
 * their captions' BPE ids (the text input's Lt: --len, else the Lt of the
 * program's training entry with a "text" input). Examples are the stored
 * ones in dataset order (fashion-mnist, folder; N defaults to all of them)
 * or the first N of a generated stream (shapes, shapes:test: --count is
 * required; the stream is the --seed's). The parameters come from --params
 * and/or --init (one of them is required: the dVAE must be trained). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"

typedef struct {
  const char *data, *tokenizer, *out, *fn, *params;
  uint64_t count, len, seed; /* count, len: 0 = not given */
  RtInitFrom init;
} TokArgs;

static int parse(int argc, char **argv, TokArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  a->fn = "tokens";
  for (int i = 0; i < argc; i++) {
    int m;
    if ((m = rt_exe_init_flag(argc, argv, &i, &a->init, e))) {
      if (m < 0) return -1;
      continue;
    }
    const RtExeOpt opts[] = {{"--data", .str = &a->data},
                             {"--tokenizer", .str = &a->tokenizer},
                             {"--out", .str = &a->out},
                             {"--fn", .str = &a->fn},
                             {"--params", .str = &a->params},
                             {"--count", .num = &a->count, .lo = 1, .hi = 1ull << 40},
                             {"--len", .num = &a->len, .lo = 1, .hi = 1u << 20},
                             {"--seed", .num = &a->seed}};
    if ((m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), e)) < 0) return -1;
    if (!m)
      return rt_err(e,
                    "tokenize: unknown option '%s' (options: --data SPEC --count N --tokenizer TOK.json --out "
                    "FILE.safetensors --fn NAME --len L --params P --init PREFIX=FILE --init-partial --seed S)",
                    argv[i]);
  }
  if (!a->data || !a->tokenizer || !a->out)
    return rt_err(e, "tokenize needs --data SPEC, --tokenizer TOK.json and --out FILE.safetensors");
  if (!a->params && !a->init.n)
    return rt_err(e, "tokenize needs the trained dVAE's parameters: --params P.safetensors or --init PREFIX=FILE");
  return 0;
}

/* The entry's shape: one input f32 [B, 3, S, S], output 0 i32 [B, g, g]
 * or [B, T]; sets *T. */
static int check_entry(const RtProgram *p, int entry, int64_t *T, RtErr *e) {
  const RtEntrySpec *en = &p->entry[entry];
  const RtArgSpec *x = en->ninput == 1 ? &en->input[0] : NULL, *o = en->noutput >= 1 ? &en->output[0] : NULL;
  if (!x || !o || x->dtype != RT_F32 || x->rank != 4 || x->dim[1] != 3 || x->dim[2] != x->dim[3] ||
      o->dtype != RT_I32 || (o->rank != 2 && o->rank != 3) || o->dim[0] != x->dim[0])
    return rt_err(e, "tokenize: entry '%s' of %s must take images f32[B, 3, S, S] and return their tokens i32[B, g, g] "
                     "or i32[B, g*g] (use --fn NAME)", en->name, p->model);
  *T = o->dim[1] * (o->rank == 3 ? o->dim[2] : 1);
  return 0;
}

/* Lt: --len, or the text length of a training entry with a "text" input. */
static int text_len(const RtProgram *p, const TokArgs *a, int64_t *len, RtErr *e) {
  for (int k = 0; k < p->nentry; k++) {
    int i = rt_entry_input(&p->entry[k], "text");
    const RtArgSpec *t = i >= 0 && p->entry[k].train ? &p->entry[k].input[i] : NULL;
    if (!t || t->dtype != RT_I32 || t->rank != 2) continue;
    if (a->len && (uint64_t)t->dim[1] != a->len)
      return rt_err(e, "tokenize --len %llu: training entry '%s' takes text of length %lld", (unsigned long long)a->len,
                    p->entry[k].name, (long long)t->dim[1]);
    *len = t->dim[1];
    return 0;
  }
  if (!a->len)
    return rt_err(e,
                  "tokenize needs --len L, the text length of the GPT (%s has no training entry with a 'text' "
                  "input to take it from)",
                  p->model);
  *len = (int64_t)a->len;
  return 0;
}

static void progress(int64_t done, int64_t n, bool tty, int64_t *next) {
  if (tty) {
    fprintf(stderr, "\rtokenize: %lld/%lld examples", (long long)done, (long long)n);
    if (done == n) fputc('\n', stderr);
  } else if (done >= *next || done == n) {
    fprintf(stderr, "tokenize: %lld/%lld examples\n", (long long)done, (long long)n);
    *next = done + (n + 9) / 10;
  }
}

int rt_exe_tokenize(RtProgram *p, int argc, char **argv, RtErr *e) {
  TokArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int entry = rt_program_entry(p, a.fn);
  if (entry < 0) return rt_err(e, "%s has no entry '%s' (tokenize --fn NAME names the image -> tokens one)", p->model, a.fn);
  const RtEntrySpec *en = &p->entry[entry];
  int64_t T = 0, len = 0, B = en->input[0].dim[0];
  if (check_entry(p, entry, &T, e) || text_len(p, &a, &len, e)) return -1;
  RtDataset *d = rt_data_open(a.data, en, a.seed, e);
  RtTextEncoder *enc = NULL;
  RtTensor *x = NULL, **out = calloc((size_t)en->noutput, sizeof *out), *text = NULL, *image = NULL;
  uint64_t *k = NULL;
  int rc = -1;
  if (!d || !out) {
    if (!out) rt_err(e, "out of memory");
    goto done;
  }
  int64_t size = rt_data_size(d), n = (int64_t)a.count;
  if (!rt_data_has_captions(d)) {
    rt_err(e, "tokenize: dataset '%s' has no captions (use shapes, fashion-mnist or folder:PATH)", a.data);
    goto done;
  }
  if (size == 0 && !a.count) {
    rt_err(e, "tokenize --data %s needs --count N: a generated stream has no end", a.data);
    goto done;
  }
  if (!a.count) n = size;
  if (size > 0 && n > size) {
    rt_err(e, "tokenize --count %lld: dataset '%s' has %lld examples", (long long)n, a.data, (long long)size);
    goto done;
  }
  if (!(enc = rt_text_encoder_new(a.tokenizer, len, e)) || rt_data_check_text(d, enc, e)) goto done;
  if (rt_exe_state_start(p, a.params, &a.init, a.seed, e) || rt_program_prepare(p, entry, e)) goto done;
  x = rt_tensor_new(RT_F32, 4, en->input[0].dim, e);
  text = rt_tensor_new(RT_I32, 2, (int64_t[]){n, len}, e);
  image = rt_tensor_new(RT_I32, 2, (int64_t[]){n, T}, e);
  k = malloc(sizeof *k * (size_t)B);
  if (!x || !text || !image || !k) {
    if (!k) rt_err(e, "out of memory");
    goto done;
  }
  bool tty = isatty(2);
  int64_t next = 0;
  for (int64_t base = 0; base < n; base += B) {
    int64_t rows = n - base < B ? n - base : B;
    for (int64_t j = 0; j < B; j++) k[j] = (uint64_t)(base + (j < rows ? j : rows - 1));
    if (rt_data_fill_examples(d, k, &x, e)) goto done;
    if (p->run(p, entry, &x, out, a.seed, 0, e)) goto done;
    if (out[0]->dtype != RT_I32 || out[0]->dim[0] != B || rt_tensor_numel(out[0]) != B * T) {
      rt_err(e, "tokenize: entry '%s' returned a tensor of another type than its signature's", a.fn);
      goto done;
    }
    memcpy(rt_i32(image) + base * T, rt_i32(out[0]), sizeof(int32_t) * (size_t)(rows * T));
    for (int i = 0; i < en->noutput; i++) {
      rt_tensor_free(out[i]);
      out[i] = NULL;
    }
    for (int64_t j = 0; j < rows; j++)
      if (rt_text_encode(enc, rt_data_caption(d, j), rt_i32(text) + (base + j) * len, e)) goto done;
    progress(base + rows, n, tty, &next);
  }
  char init[1024];
  rt_init_from_describe(&a.init, init, sizeof init);
  RtTokenCacheInfo info = {.data = a.data, .size = size, .seed = a.seed, .text = enc, .model = p->model,
                           .config = p->config, .fn = a.fn, .params = a.params, .init = init};
  if (rt_token_cache_write(a.out, text, image, &info, e)) goto done;
  printf("%s: text i32[%lld, %lld] and image tokens i32[%lld, %lld] of examples 0 .. %lld of %s", a.out, (long long)n,
         (long long)len, (long long)n, (long long)T, (long long)n - 1, a.data);
  if (rt_text_encoder_cut(enc)) printf(" (%lld distinct captions cut to %lld tokens)", (long long)rt_text_encoder_cut(enc),
                                      (long long)len);
  printf("\n");
  rc = 0;
done:
  for (int i = 0; out && i < en->noutput; i++) rt_tensor_free(out[i]);
  free(out);
  rt_tensor_free(x);
  rt_tensor_free(text);
  rt_tensor_free(image);
  free(k);
  rt_text_encoder_free(enc);
  rt_data_free(d);
  return rc;
}
