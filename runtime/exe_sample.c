/* exe_sample.c — `sample`: image tokens drawn one position at a time from
 * a model's causal image logits (MODELS.md section 2: softmax over the
 * temperature, optionally top-k).
 *
 *   sample [--fn NAME] (--in text=FILE.npy | --captions FILE.txt --tokenizer TOK.json)
 *          [--params P.safetensors | --seed S] [--temperature T] [--top-k K]
 *          [--sample-seed S] [--out FILE.npy]
 *
 * Captions (one per line, blank lines skipped) are encoded with the BPE
 * tokenizer (runtime/bpe.h: cut at Lt, padded from the vocabulary it was
 * trained for) and fill the batch's rows in turn, repeating when there are
 * fewer than B: several draws of one caption.
 *
 * The entry (default "image_logits") takes the text and the image tokens,
 * i32 [B, Lt] and i32 [B, T], and returns f32 [B, T, K]: at position j the
 * logits of image token j, which may depend on tokens 0 .. j-1 only. Tokens
 * are drawn for j = 0 .. T-1, each by runtime/sample.h's default sampler
 * (Gumbel-max) for (seed, row, j), so a run is reproducible; the entry runs once per
 * position on the whole sequence (no KV cache yet). The tokens are written
 * as i32 [B, g, g] when T = g*g (the dVAE's decode_tokens input), else
 * [B, T]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "exe.h"
#include "bpe.h"
#include "npy.h"
#include "sample.h"

typedef struct {
  const char *fn, *text, *params, *out, *captions, *tokenizer;
  uint64_t seed, sample_seed;
  double temperature;
  uint64_t top_k;
} SampleArgs;

static int parse(int argc, char **argv, SampleArgs *a, RtErr *e) {
  *a = (SampleArgs){.fn = "image_logits", .out = "tokens.npy", .temperature = 1};
  const struct {
    const char *flag, **dst;
  } strs[] = {{"--fn", &a->fn},           {"--captions", &a->captions}, {"--tokenizer", &a->tokenizer},
              {"--params", &a->params},   {"--out", &a->out}};
  const struct {
    const char *flag;
    uint64_t *dst;
  } nums[] = {{"--seed", &a->seed}, {"--sample-seed", &a->sample_seed}, {"--top-k", &a->top_k}};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int m = 0;
    for (size_t k = 0; k < sizeof strs / sizeof strs[0] && !m; k++)
      if ((m = rt_exe_flag(argc, argv, &i, strs[k].flag, &v, e)) > 0) *strs[k].dst = v;
    for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !m; k++)
      if ((m = rt_exe_flag(argc, argv, &i, nums[k].flag, &v, e)) > 0 && rt_exe_u64(nums[k].flag, v, nums[k].dst, e))
        return -1;
    if (m < 0) return -1;
    if (m) continue;
    if ((m = rt_exe_flag(argc, argv, &i, "--in", &v, e))) {
      if (m < 0) return -1;
      if (strncmp(v, "text=", 5) != 0 || !v[5]) return rt_err(e, "sample: --in takes text=FILE.npy, got '%s'", v);
      a->text = v + 5;
    } else if ((m = rt_exe_flag(argc, argv, &i, "--temperature", &v, e))) {
      if (m < 0 || rt_exe_f64("--temperature", v, &a->temperature, e)) return -1;
      if (!(a->temperature >= 0)) return rt_err(e, "--temperature must be 0 (greedy) or more, got '%s'", v);
    } else {
      return rt_err(e, "sample: unknown option '%s' (options: --fn NAME --in text=FILE.npy --captions FILE.txt "
                       "--tokenizer TOK.json --params P --seed S --temperature T --top-k K --sample-seed S "
                       "--out FILE.npy)",
                    argv[i]);
    }
  }
  if (!a->text == !a->captions || !a->captions != !a->tokenizer)
    return rt_err(e, "sample needs --in text=FILE.npy (i32 [B, Lt] text ids), or --captions FILE.txt with "
                     "--tokenizer TOK.json");
  if (a->top_k > (1u << 30)) return rt_err(e, "--top-k is too large");
  return 0;
}

/* The text ids of the captions in a.captions, one row each in turn
 * (repeated to fill the batch), as *text: i32 [B, Lt]. */
static int encode_captions(const SampleArgs *a, int64_t B, int64_t Lt, RtTensor **text, RtErr *e) {
  RtBpe *tok = rt_bpe_load(a->tokenizer, e);
  if (!tok) return -1;
  FILE *f = fopen(a->captions, "r");
  char (*cap)[1024] = calloc((size_t)B, sizeof *cap);
  int rc = 0;
  int64_t n = 0;
  if (!f) rc = rt_err(e, "%s: cannot open", a->captions);
  char line[1024];
  while (rc == 0 && fgets(line, sizeof line, f)) {
    size_t len = strcspn(line, "\r\n");
    line[len] = 0;
    if (len == 0) continue;
    if (n == B) rc = rt_err(e, "%s: more captions than the %lld images the entry samples at a time", a->captions,
                            (long long)B);
    else memcpy(cap[n++], line, len + 1);
  }
  if (f) fclose(f);
  if (rc == 0 && n == 0) rc = rt_err(e, "%s: no captions (one per line)", a->captions);
  if (rc == 0 && !(*text = rt_tensor_new(RT_I32, 2, (int64_t[]){B, Lt}, e))) rc = -1;
  for (int64_t b = 0; b < B && rc == 0; b++) {
    rt_bpe_encode_padded(tok, cap[b % n], rt_bpe_vocab(tok), rt_i32(*text) + b * Lt, Lt);
    printf("%lld\t%s\n", (long long)b, cap[b % n]);
  }
  free(cap);
  rt_bpe_free(tok);
  return rc;
}

/* The entry's shape: inputs (text i32 [B, Lt], image i32 [B, T]), output
 * f32 [B, T, K]. */
static int check_entry(const RtEntrySpec *en, RtErr *e) {
  const RtArgSpec *t = en->ninput == 2 ? &en->input[0] : NULL, *im = t ? &en->input[1] : NULL;
  const RtArgSpec *o = en->noutput == 1 ? &en->output[0] : NULL;
  if (!t || !o || t->dtype != RT_I32 || t->rank != 2 || im->dtype != RT_I32 || im->rank != 2 ||
      o->dtype != RT_F32 || o->rank != 3 || im->dim[0] != t->dim[0] || o->dim[0] != t->dim[0] ||
      o->dim[1] != im->dim[1] || o->dim[2] < 1)
    return rt_err(e, "sample: entry '%s' must take (text: i32[B, Lt], image: i32[B, T]) and return f32[B, T, K]",
                  en->name);
  return 0;
}

int rt_exe_sample(RtProgram *p, int argc, char **argv, RtErr *e) {
  SampleArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int entry = rt_program_entry(p, a.fn);
  if (entry < 0) return rt_err(e, "%s has no entry '%s' to sample from", p->model, a.fn);
  const RtEntrySpec *en = &p->entry[entry];
  if (check_entry(en, e)) return -1;
  int64_t B = en->input[0].dim[0], T = en->input[1].dim[1], K = en->output[0].dim[2];
  RtTensor *text = NULL, *image = NULL, *out[1] = {NULL};
  float *scratch = NULL;
  int rc = -1;
  if (a.captions ? encode_captions(&a, B, en->input[0].dim[1], &text, e) : rt_npy_read(a.text, &text, e)) goto done;
  if (text->dtype != RT_I32 || text->rank != 2 || text->dim[0] != B || text->dim[1] != en->input[0].dim[1]) {
    char want[160], got[160];
    rt_err(e, "%s: the text must be i32%s (entry '%s'), got %s%s", a.text,
           rt_shape_str(2, en->input[0].dim, want, sizeof want), en->name, rt_dtype_name(text->dtype),
           rt_shape_str(text->rank, text->dim, got, sizeof got));
    goto done;
  }
  if (a.params ? rt_checkpoint_load_params(a.params, p, e) : p->init(p, a.seed, e)) goto done;
  if (rt_program_prepare(p, entry, e)) goto done;
  int64_t side = (int64_t)llround(sqrt((double)T));
  int64_t dims[3] = {B, side, side}, flat[2] = {B, T};
  image = side * side == T ? rt_tensor_new(RT_I32, 3, dims, e) : rt_tensor_new(RT_I32, 2, flat, e);
  scratch = malloc(sizeof *scratch * (size_t)K);
  if (!image || !scratch) {
    if (!scratch) rt_err(e, "out of memory");
    goto done;
  }
  memset(image->data, 0, rt_tensor_bytes(image));
  /* the entry sees the tokens as [B, T] */
  RtTensor view = *image;
  view.rank = 2;
  view.dim[0] = B;
  view.dim[1] = T;
  RtTensor *in[2] = {text, &view};
  RtSampleOptions so = {.temperature = (float)a.temperature, .top_k = (int)a.top_k}; /* Gumbel-max */
  bool tty = isatty(2);
  for (int64_t j = 0; j < T; j++) {
    if (p->run(p, entry, in, out, a.seed, (uint64_t)j, e)) goto done;
    for (int64_t b = 0; b < B; b++) {
      const float *row = rt_f32(out[0]) + (b * T + j) * K;
      int tok = rt_sample_draw(row, (int)K, &so, a.sample_seed, (uint64_t)b, (uint64_t)j, scratch);
      if (tok < 0) {
        rt_err(e, "sample: the logits of sample %lld at position %lld are all NaN or -inf", (long long)b, (long long)j);
        goto done;
      }
      rt_i32(image)[b * T + j] = tok;
    }
    rt_tensor_free(out[0]);
    out[0] = NULL;
    if (tty) fprintf(stderr, "\rsample: %lld/%lld tokens", (long long)j + 1, (long long)T);
  }
  if (tty) fputc('\n', stderr);
  if (rt_npy_write(a.out, image, e)) goto done;
  char shape[160];
  printf("%s: i32%s image tokens (temperature %g, top-k %llu, sample seed %llu)\n", a.out,
         rt_shape_str(image->rank, image->dim, shape, sizeof shape), a.temperature, (unsigned long long)a.top_k,
         (unsigned long long)a.sample_seed);
  rc = 0;
done:
  rt_tensor_free(out[0]);
  rt_tensor_free(text);
  rt_tensor_free(image);
  free(scratch);
  return rc;
}
