/* exe_generate.c — `generate`: images from captions, with everything taken
 * from one model file.
 *
 *   generate --model FILE.safetensors [CAPTION ...] [--captions FILE.txt] [--n N]
 *            [--temperature T] [--top-k K] [--seed S] [--sampler gumbel|cdf] [--no-cache]
 *            [--out grid.png] [--out-npy images.npy] [--out-tokens tokens.npy]
 *            [--out-dir DIR] [--scale X]
 *
 * The model file is a checkpoint of this model (runtime/io/checkpoint.h) whose
 * metadata holds the captions' BPE tokenizer: the GPT's and the dVAE's
 * parameters, the model's name, config and source fingerprint. N images
 * are drawn per caption (captions from the command line, then the file's,
 * one per line): caption i's images are rows i*N .. i*N+N-1 of the
 * sampling stream of seed S, so an image depends on (S, its row) only,
 * whatever the batch size. Each batch runs the KV-cached sampler
 * (runtime/sample/sampler.h) and the dVAE's "decode_tokens".
 *
 * Outputs: --out a PNG grid, a row per caption with the caption written
 * under it (runtime/draw/image_grid.h; default generated.png when no output is
 * named); --out-npy the images as f32 [captions x N, 3, S, S] in [-1, 1],
 * caption-major; --out-tokens the image tokens i32 [captions x N, g, g];
 * --out-dir one PNG per image (DIR/cCAPTION-nDRAW.png). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/data/bpe.h"
#include "runtime/io/checkpoint.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/draw/image_grid.h"
#include "runtime/io/npy.h"
#include "runtime/sched/rt_sched.h"
#include "runtime/io/safetensors.h"
#include "runtime/sample/sampler.h"

#define DECODE_ENTRY "decode_tokens"

typedef struct {
  const char *model, *captions_file, *out, *out_npy, *out_tokens, *out_dir, *sampler;
  const char **caption; /* from the command line */
  int ncaption;
  uint64_t n, seed, top_k, scale;
  bool top_k_given, no_cache;
  double temperature;
} GenArgs;

static int parse(int argc, char **argv, GenArgs *a, RtErr *e) {
  *a = (GenArgs){.n = 4, .temperature = 1, .sampler = "gumbel", .scale = 4, .top_k = UINT64_MAX /* none given */};
  a->caption = calloc((size_t)argc + 1, sizeof *a->caption);
  if (!a->caption) return rt_err(e, "out of memory");
  const RtExeOpt opts[] = {
      {"--model", .str = &a->model},         {"--captions", .str = &a->captions_file}, {"--out", .str = &a->out},
      {"--out-npy", .str = &a->out_npy},     {"--out-tokens", .str = &a->out_tokens},  {"--out-dir", .str = &a->out_dir},
      {"--sampler", .str = &a->sampler},     {"--n", .num = &a->n},                    {"--seed", .num = &a->seed},
      {"--top-k", .num = &a->top_k},         {"--scale", .num = &a->scale},            {"--no-cache", .on = &a->no_cache}};
  for (int i = 0; i < argc; i++) {
    const char *v;
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof opts[0]), e);
    if (m < 0) return -1;
    if (m) continue;
    if ((m = rt_exe_flag(argc, argv, &i, "--temperature", &v, e))) {
      if (m < 0 || rt_exe_f64("--temperature", v, &a->temperature, e)) return -1;
      if (!(a->temperature >= 0 && a->temperature <= 1e6))
        return rt_err(e, "generate: --temperature must be 0 (greedy) or more, at most 1e6, got '%s'", v);
    } else if (argv[i][0] == '-' && argv[i][1] == '-') {
      return rt_err(e, "generate: unknown option '%s' (options: --model FILE --captions FILE.txt --n N "
                       "--temperature T --top-k K --seed S --sampler gumbel|cdf --no-cache --out grid.png "
                       "--out-npy F --out-tokens F --out-dir DIR --scale X)",
                    argv[i]);
    } else {
      a->caption[a->ncaption++] = argv[i];
    }
  }
  a->top_k_given = a->top_k != UINT64_MAX;
  if (!a->top_k_given) a->top_k = 0; /* every image token */
  if (!a->model) return rt_err(e, "generate needs --model FILE.safetensors (a model file: see `train --tokenizer`)");
  if (a->n < 1 || a->n > 4096) return rt_err(e, "generate: --n must be 1 .. 4096 images per caption, got %llu",
                                             (unsigned long long)a->n);
  if (a->top_k_given && a->top_k < 1)
    return rt_err(e, "generate: --top-k must be at least 1 (leave it out to draw from every image token)");
  if (a->scale < 1 || a->scale > 64) return rt_err(e, "generate: --scale must be 1 .. 64");
  if (strcmp(a->sampler, "gumbel") != 0 && strcmp(a->sampler, "cdf") != 0)
    return rt_err(e, "generate: --sampler must be gumbel or cdf, got '%s'", a->sampler);
  if (!a->out && !a->out_npy && !a->out_tokens && !a->out_dir) a->out = "generated.png";
  return 0;
}

/* The captions: the command line's, then the file's (one per line, blank
 * lines skipped). *cap is malloc'd, each caption too. */
static int gather_captions(const GenArgs *a, char ***cap, int *n, RtErr *e) {
  int cap_n = a->ncaption + 16;
  char **c = malloc(sizeof *c * (size_t)cap_n);
  *n = 0;
  if (!c) return rt_err(e, "out of memory");
  *cap = c;
  for (int i = 0; i < a->ncaption; i++) c[(*n)++] = strdup(a->caption[i]);
  if (a->captions_file) {
    FILE *f = fopen(a->captions_file, "r");
    if (!f) return rt_err(e, "%s: cannot open", a->captions_file);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      line[strcspn(line, "\r\n")] = 0;
      if (!*line) continue;
      if (*n == cap_n) {
        char **more = realloc(*cap, sizeof *more * (size_t)(cap_n *= 2));
        if (!more) {
          fclose(f);
          return rt_err(e, "out of memory");
        }
        *cap = c = more;
      }
      c[(*n)++] = strdup(line);
    }
    fclose(f);
  }
  for (int i = 0; i < *n; i++)
    if (!c[i]) return rt_err(e, "out of memory");
  if (*n == 0)
    return rt_err(e, "generate: no captions (give them as arguments, or one per line with --captions FILE.txt)");
  return 0;
}

/* Checks that the model file belongs to p, sets p's parameters from it (one
 * read of the file) and returns its tokenizer. */
static RtBpe *open_model(const GenArgs *a, RtProgram *p, RtErr *e) {
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  RtBpe *tok = NULL;
  if (rt_safetensors_read_meta(a->model, &l, &m, e)) return NULL;
  const char *model = rt_meta_get(m, "dal.model"), *config = rt_meta_get(m, "dal.config");
  const char *json = rt_meta_get(m, "dal.tokenizer"), *hash = rt_meta_get(m, "dal.source_hash");
  if (!model || !config) {
    rt_err(e, "%s: not a dal model file (its metadata has no dal.model / dal.config)", a->model);
  } else if (!rt_same_model(model, p->model) || strcmp(config, p->config) != 0) {
    rt_err(e, "%s is a model file of %s (config %s), not of %s (config %s)", a->model, model, config, p->model,
           p->config);
  } else if (!json) {
    rt_err(e, "%s has no tokenizer (metadata dal.tokenizer): train with --tokenizer TOK.json to make a model file",
           a->model);
  } else {
    char what[PATH_MAX + 32];
    snprintf(what, sizeof what, "%s: dal.tokenizer", a->model);
    tok = rt_bpe_parse(json, what, e);
    if (tok && rt_checkpoint_set_params(l, a->model, p, e)) {
      rt_bpe_free(tok);
      tok = NULL;
    }
    if (tok && hash && p->source_hash && strcmp(hash, p->source_hash) != 0)
      fprintf(stderr, "generate: warning: %s was made from another version of %s's source (%s, now %s)\n", a->model,
              p->model, hash, p->source_hash);
  }
  rt_list_free(l);
  rt_meta_free(m);
  return tok;
}

/* Caption c as text ids [Lt]: cut with a warning when too long; a
 * character the tokenizer has never seen is an error naming it. */
static int encode(const RtBpe *tok, const char *c, int32_t *ids, int64_t Lt, RtErr *e) {
  int64_t over = rt_bpe_encode_padded(tok, c, rt_bpe_vocab(tok), ids, Lt);
  for (int64_t i = 0; i < Lt; i++)
    if (ids[i] == 0) { /* the unknown id: find the byte for the message */
      for (const unsigned char *s = (const unsigned char *)c; *s; s++) {
        char one[2] = {(char)*s, 0};
        int32_t id;
        if (rt_bpe_encode(tok, one, &id, 1) == 1 && id == 0)
          return rt_err(e, "caption \"%s\": the tokenizer has never seen the character '%s' (byte 0x%02x)", c,
                        *s >= 32 && *s < 127 ? one : "?", *s);
      }
      return rt_err(e, "caption \"%s\" has characters the tokenizer has never seen", c);
    }
  if (over > 0)
    fprintf(stderr, "generate: warning: caption \"%s\" is %lld tokens; the model reads the first %lld\n", c,
            (long long)(over + Lt), (long long)Lt);
  return 0;
}

static int write_outputs(const GenArgs *a, RtTensor *images, RtTensor *tokens, char **cap, int ncap, RtErr *e) {
  if (a->out && rt_png_write_captioned_grid(a->out, images, ncap, (int)a->n, (const char *const *)cap,
                                            (int)a->scale, e))
    return -1;
  if (a->out_npy && rt_npy_write(a->out_npy, images, e)) return -1;
  if (a->out_tokens && rt_npy_write(a->out_tokens, tokens, e)) return -1;
  if (a->out_dir) {
    if (mkdir(a->out_dir, 0777) != 0 && errno != EEXIST)
      return rt_err(e, "%s: cannot make the folder", a->out_dir);
    int64_t per = rt_tensor_numel(images) / images->dim[0];
    RtTensor one = *images;
    one.dim[0] = 1;
    for (int64_t r = 0; r < images->dim[0]; r++) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/c%d-n%d.png", a->out_dir, (int)(r / (int64_t)a->n), (int)(r % (int64_t)a->n));
      one.data = rt_f32(images) + r * per;
      if (rt_png_write_grid(path, &one, 1, 1, e)) return -1;
    }
  }
  return 0;
}

static double now(void) { return 1e-9 * (double)rt_now_ns(); }

/* The progress line over batches: images done, image tokens/s, ETA (a
 * batch's own line, from the sampler, when there is one batch). Redrawn
 * on a terminal; else a line per tenth of the run. */
static void progress(int64_t done, int64_t total, int64_t T, double t0, bool tty, int64_t prev) {
  if (!tty && done < total && done * 10 / total == prev * 10 / total) return;
  double dt = now() - t0;
  fprintf(stderr, "%sgenerate: %lld/%lld images  %.0f image tokens/s  ETA %.1fs%s", tty ? "\r" : "", (long long)done,
          (long long)total, (double)(done * T) / (dt > 1e-9 ? dt : 1e-9), dt / (double)done * (double)(total - done),
          tty && done < total ? "" : "\n");
}

int rt_exe_generate(RtProgram *p, int argc, char **argv, RtErr *e) {
  GenArgs a;
  char **cap = NULL;
  int ncap = 0, rc = -1;
  RtBpe *tok = NULL;
  RtTensor *text = NULL, *tokens = NULL, *all_images = NULL, *all_tokens = NULL, *out[1] = {NULL};
  if (parse(argc, argv, &a, e) || gather_captions(&a, &cap, &ncap, e)) goto done;
  int64_t B, Lt, T, K;
  int dec = rt_program_entry(p, DECODE_ENTRY);
  if (rt_sampler_prepare(p, a.no_cache, &B, &Lt, &T, &K, e)) goto done;
  if (dec < 0) {
    rt_err(e, "%s has no entry '%s' to turn image tokens into images", p->model, DECODE_ENTRY);
    goto done;
  }
  const RtEntrySpec *de = &p->entry[dec];
  if (de->ninput != 1 || de->noutput != 1 || de->input[0].dtype != RT_I32 || de->input[0].rank != 3 ||
      de->input[0].dim[0] != B || de->input[0].dim[1] * de->input[0].dim[2] != T || de->output[0].rank != 4 ||
      de->output[0].dtype != RT_F32 || de->output[0].dim[0] != B) {
    rt_err(e, "entry '%s' must take i32[B, g, g] (g*g = %lld) and return f32[B, 3, S, S]", DECODE_ENTRY, (long long)T);
    goto done;
  }
  if (a.top_k_given && a.top_k > (uint64_t)K) {
    rt_err(e, "generate: --top-k %llu is more than the %lld image tokens there are", (unsigned long long)a.top_k,
           (long long)K);
    goto done;
  }
  if (!(tok = open_model(&a, p, e)) || rt_program_prepare(p, dec, e))
    goto done;
  int64_t rows = (int64_t)ncap * (int64_t)a.n, g = de->input[0].dim[1];
  const int64_t *img = de->output[0].dim;
  int32_t *ids = malloc(sizeof *ids * (size_t)(ncap * Lt));
  if (!ids) {
    rt_err(e, "out of memory");
    goto done;
  }
  for (int i = 0; i < ncap; i++)
    if (encode(tok, cap[i], ids + i * Lt, Lt, e)) {
      free(ids);
      goto done;
    }
  text = rt_tensor_new(RT_I32, 2, (int64_t[]){B, Lt}, e);
  tokens = rt_tensor_new(RT_I32, 3, (int64_t[]){B, g, g}, e);
  all_images = rt_tensor_new(RT_F32, 4, (int64_t[]){rows, img[1], img[2], img[3]}, e);
  all_tokens = rt_tensor_new(RT_I32, 3, (int64_t[]){rows, g, g}, e);
  if (!text || !tokens || !all_images || !all_tokens) {
    free(ids);
    goto done;
  }
  RtSamplerOptions so = {.draw = {.temperature = (float)a.temperature, .top_k = (int)a.top_k,
                                  .sampler = strcmp(a.sampler, "cdf") == 0 ? RT_SAMPLER_CDF : RT_SAMPLER_GUMBEL},
                         .no_cache = a.no_cache, .seed = a.seed, .progress = rows <= B};
  int64_t per_image = img[1] * img[2] * img[3];
  bool tty = isatty(2);
  double t0 = now();
  fprintf(stderr, "generate: %d caption%s x %llu image%s, %lld at a time (%s, temperature %g%s)\n", ncap,
          ncap == 1 ? "" : "s", (unsigned long long)a.n, a.n == 1 ? "" : "s", (long long)B,
          a.no_cache ? "no cache" : "KV cache", a.temperature, a.top_k_given ? ", top-k" : "");
  for (int64_t r0 = 0; r0 < rows; r0 += B) {
    for (int64_t b = 0; b < B; b++) { /* rows past the end repeat the last one (and are dropped) */
      int64_t r = r0 + b < rows ? r0 + b : rows - 1;
      memcpy(rt_i32(text) + b * Lt, ids + (r / (int64_t)a.n) * Lt, sizeof *ids * (size_t)Lt);
    }
    so.row0 = (uint64_t)r0;
    RtTensor *in[1] = {tokens};
    if (rt_sampler_run(p, text, tokens, &so, NULL, e) || p->run(p, dec, in, out, 0, 0, e)) {
      free(ids);
      goto done;
    }
    int64_t keep = rows - r0 < B ? rows - r0 : B;
    memcpy(rt_f32(all_images) + r0 * per_image, out[0]->data, sizeof(float) * (size_t)(keep * per_image));
    memcpy(rt_i32(all_tokens) + r0 * T, tokens->data, sizeof(int32_t) * (size_t)(keep * T));
    rt_tensor_free(out[0]);
    out[0] = NULL;
    if (rows > B) progress(r0 + keep, rows, T, t0, tty, r0);
  }
  free(ids);
  if (write_outputs(&a, all_images, all_tokens, cap, ncap, e)) goto done;
  const char *outs[] = {a.out, a.out_npy, a.out_tokens, a.out_dir};
  printf("generated %lld image%s:", (long long)rows, rows == 1 ? "" : "s");
  for (int i = 0; i < 4; i++)
    if (outs[i]) printf(" %s", outs[i]);
  printf("\n");
  rc = 0;
done:
  for (int i = 0; i < ncap; i++) free(cap[i]);
  free(cap);
  free(a.caption);
  rt_bpe_free(tok);
  rt_tensor_free(text);
  rt_tensor_free(tokens);
  rt_tensor_free(all_images);
  rt_tensor_free(all_tokens);
  rt_tensor_free(out[0]);
  rt_image_grid_release(); /* cairo's and fontconfig's caches (LeakSanitizer would report them) */
  return rc;
}
