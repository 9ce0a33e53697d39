/* exe_sample.c — `sample`: the image tokens of a batch of texts, drawn
 * with the model's KV cache (runtime/sample/sampler.h).
 *
 *   sample (--in text=FILE.npy | --captions FILE.txt --tokenizer TOK.json | --bench)
 *          [--params P.safetensors | --seed S] [--init PREFIX=FILE]... [--temperature T] [--top-k K]
 *          [--sample-seed S] [--sampler gumbel|cdf] [--no-cache] [--out FILE.npy] [--json]
 *          [--logits-out FILE.npy]
 *
 * Captions (one per line, blank lines skipped) are encoded with the BPE
 * tokenizer (runtime/data/bpe.h: cut at Lt, padded from the vocabulary it was
 * trained for) and fill the batch's rows in turn, repeating when there are
 * fewer than B: several draws of one caption. The tokens are written as
 * i32 [B, g, g] when T = g*g (the dVAE's decode_tokens input), else [B, T].
 * --logits-out writes the logits each token was drawn from, f32 [B, T, K]:
 * how tests compare the cached path with image_logits on the same tokens.
 *
 * --bench times the sampling loop alone (entries compiled before it starts,
 * a warm-up run, then the median of --reps runs, default 5) on random text
 * ids and the seed's parameters, and with --json prints
 * {"image_tokens", "seconds", "tokens_per_s", "cache", "peak_rss_mib"} on
 * stdout: what `make bench` compares with PyTorch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "runtime/io/checkpoint.h"
#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"
#include "runtime/core/rng.h"
#include "runtime/sample/sampler.h"

typedef struct {
  const char *text, *params, *out, *captions, *tokenizer, *sampler, *logits_out;
  uint64_t seed, sample_seed, top_k, reps;
  double temperature;
  bool no_cache, bench, json;
  RtInitFrom init; /* --init PREFIX=FILE ... */
} SampleArgs;

static int parse(int argc, char **argv, SampleArgs *a, RtErr *e) {
  *a = (SampleArgs){.out = "tokens.npy", .temperature = 1, .sampler = "gumbel", .reps = 5};
  const RtExeOpt opts[] = {
      {"--captions", .str = &a->captions}, {"--tokenizer", .str = &a->tokenizer}, {"--params", .str = &a->params},
      {"--out", .str = &a->out},           {"--sampler", .str = &a->sampler},     {"--logits-out", .str = &a->logits_out},
      {"--seed", .num = &a->seed},         {"--sample-seed", .num = &a->sample_seed},
      {"--top-k", .num = &a->top_k},       {"--reps", .num = &a->reps},
      {"--no-cache", .on = &a->no_cache},  {"--bench", .on = &a->bench},          {"--json", .on = &a->json}};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof opts[0]), e);
    if (!m) m = rt_exe_init_flag(argc, argv, &i, &a->init, e);
    if (m < 0) return -1;
    if (m) continue;
    if ((m = rt_exe_flag(argc, argv, &i, "--in", &v, e))) {
      if (m < 0) return -1;
      if (strncmp(v, "text=", 5) != 0 || !v[5]) return rt_err(e, "sample: --in takes text=FILE.npy, got '%s'", v);
      a->text = v + 5;
    } else if ((m = rt_exe_flag(argc, argv, &i, "--temperature", &v, e))) {
      if (m < 0 || rt_exe_f64("--temperature", v, &a->temperature, e)) return -1;
      if (!(a->temperature >= 0 && a->temperature <= 1e6))
        return rt_err(e, "--temperature must be 0 (greedy) or more, at most 1e6, got '%s'", v);
    } else {
      return rt_err(e, "sample: unknown option '%s' (options: --in text=FILE.npy --captions FILE.txt "
                       "--tokenizer TOK.json --bench --params P --init PREFIX=FILE --seed S --temperature T --top-k K "
                       "--sample-seed S --sampler gumbel|cdf --no-cache --out FILE.npy --json --reps N "
                       "--logits-out FILE.npy)",
                    argv[i]);
    }
  }
  if ((!!a->text + !!a->captions + a->bench) != 1 || !a->captions != !a->tokenizer)
    return rt_err(e, "sample needs --in text=FILE.npy (i32 [B, Lt] text ids), or --captions FILE.txt with "
                     "--tokenizer TOK.json, or --bench (random text)");
  if (strcmp(a->sampler, "gumbel") != 0 && strcmp(a->sampler, "cdf") != 0)
    return rt_err(e, "--sampler must be gumbel (argmax of logits/T plus Gumbel noise) or cdf, got '%s'", a->sampler);
  if (a->top_k > (1u << 30)) return rt_err(e, "--top-k is too large");
  if (a->reps < 1 || a->reps > 15) return rt_err(e, "--reps must be 1 .. 15");
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

/* Random text ids for --bench: uniform over the rows of the text
 * embedding (any "text_emb.weight"), else over [0, Lt). */
static int bench_text(const RtProgram *p, int64_t B, int64_t Lt, RtTensor **text, RtErr *e) {
  int64_t rows = Lt;
  for (int i = 0; i < p->state->n; i++) {
    const char *name = p->state->name[i];
    size_t n = strlen(name), k = strlen("text_emb.weight");
    if (n >= k && strcmp(name + n - k, "text_emb.weight") == 0 && p->state->tensor[i]->rank == 2)
      rows = p->state->tensor[i]->dim[0];
  }
  if (!(*text = rt_tensor_new(RT_I32, 2, (int64_t[]){B, Lt}, e))) return -1;
  for (int64_t i = 0; i < B * Lt; i++) {
    uint32_t ctr[4] = {(uint32_t)i, 0, 0x54455854u /* "TEXT" */, 0}, key[2] = {7, 0}, out[4];
    rt_philox4x32_10(ctr, key, out);
    rt_i32(*text)[i] = (int32_t)(out[0] % (uint32_t)rows);
  }
  return 0;
}

int rt_exe_sample(RtProgram *p, int argc, char **argv, RtErr *e) {
  SampleArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int64_t B, Lt, T, K;
  if (rt_sampler_prepare(p, a.no_cache, &B, &Lt, &T, &K, e)) return -1;
  if (a.top_k > (uint64_t)K)
    return rt_err(e, "--top-k %llu is more than the %lld image tokens the model can draw from",
                  (unsigned long long)a.top_k, (long long)K);
  RtTensor *text = NULL, *image = NULL, *logits = NULL;
  int rc = -1;
  if (rt_exe_state_start(p, a.params, &a.init, a.seed, e)) goto done;
  if (a.bench ? bench_text(p, B, Lt, &text, e)
              : a.captions ? encode_captions(&a, B, Lt, &text, e) : rt_npy_read(a.text, &text, e))
    goto done;
  if (text->dtype != RT_I32 || text->rank != 2 || text->dim[0] != B || text->dim[1] != Lt) {
    char got[160];
    rt_err(e, "%s: the text must be i32[%lld, %lld], got %s%s", a.text ? a.text : "sample", (long long)B,
           (long long)Lt, rt_dtype_name(text->dtype), rt_shape_str(text->rank, text->dim, got, sizeof got));
    goto done;
  }
  int64_t side = (int64_t)llround(sqrt((double)T));
  image = side * side == T ? rt_tensor_new(RT_I32, 3, (int64_t[]){B, side, side}, e)
                           : rt_tensor_new(RT_I32, 2, (int64_t[]){B, T}, e);
  if (!image) goto done;
  RtSamplerOptions so = {.draw = {.temperature = (float)a.temperature, .top_k = (int)a.top_k,
                                  .sampler = strcmp(a.sampler, "cdf") == 0 ? RT_SAMPLER_CDF : RT_SAMPLER_GUMBEL},
                         .no_cache = a.no_cache, .seed = a.sample_seed, .progress = !a.json};
  if (a.logits_out && !(so.logits = logits = rt_tensor_new(RT_F32, 3, (int64_t[]){B, T, K}, e))) goto done;
  RtSamplerStats st;
  /* --bench: a warm-up run, then the median of 'reps' timed runs */
  double secs[16];
  int reps = a.bench ? (int)a.reps : 1;
  for (int r = 0; r < reps + (a.bench ? 1 : 0); r++) {
    if (rt_sampler_run(p, text, image, &so, &st, e)) goto done;
    if (r > 0 || !a.bench) secs[r - (a.bench ? 1 : 0)] = st.seconds;
    so.progress = false;
  }
  for (int i = 1; i < reps; i++) /* insertion sort of a handful */
    for (int k = i; k > 0 && secs[k] < secs[k - 1]; k--) {
      double t = secs[k];
      secs[k] = secs[k - 1], secs[k - 1] = t;
    }
  st.seconds = secs[reps / 2];
  if (a.json) {
    long long rss = rt_exe_peak_rss_kib();
    printf("{\"image_tokens\": %lld, \"seconds\": %.6f, \"tokens_per_s\": %.3f, \"cache\": %s, "
           "\"peak_rss_mib\": %.1f}\n",
           (long long)st.tokens, st.seconds, (double)st.tokens / st.seconds, a.no_cache ? "false" : "true",
           rss < 0 ? -1.0 : (double)rss / 1024);
  }
  if (!a.bench || strcmp(a.out, "tokens.npy") != 0) {
    if (rt_npy_write(a.out, image, e)) goto done;
    char shape[160];
    if (!a.json)
      printf("%s: i32%s image tokens (%s, %s, temperature %g, top-k %llu, sample seed %llu)\n", a.out,
             rt_shape_str(image->rank, image->dim, shape, sizeof shape), a.no_cache ? "no cache" : "KV cache",
             so.draw.sampler == RT_SAMPLER_CDF ? "inverse CDF" : "Gumbel-max", a.temperature,
             (unsigned long long)a.top_k,
             (unsigned long long)a.sample_seed);
  }
  if (a.logits_out && rt_npy_write(a.logits_out, logits, e)) goto done;
  if (!a.json)
    fprintf(stderr, "sample: %lld image tokens in %.3f s (%.0f tokens/s)\n", (long long)st.tokens, st.seconds,
            (double)st.tokens / st.seconds);
  rc = 0;
done:
  rt_tensor_free(text);
  rt_tensor_free(image);
  rt_tensor_free(logits);
  return rc;
}
