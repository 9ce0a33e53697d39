/* test_tokens.c — captions as text ids, token caches and --init through
 * the executables' command line (rt_main), on a stand-in DALL-E: a program
 * written by hand whose "tokens" entry maps images to a 4x4 grid of ids by
 * a fixed rule, and whose two training entries compute the same loss from
 * (images, text) and from (text, image tokens). So the cached path and the
 * in-graph one can be compared batch by batch and loss by loss, on shapes
 * on a fake copy of fashion-mnist and on a folder of PNGs (epochs
 * shuffled). Also: every bad
 * token cache, bad caption, --tokenizer and --init error. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/data/bpe.h"
#include "runtime/io/checkpoint.h"
#include "runtime/data/data.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tests/run_main.h"
#include "tests/util.h"

#define B 4
#define S 16
#define G 4  /* token grid side */
#define K 64 /* token ids */
#define LT 8

/* ---- the stand-in program ---- */

static const RtArgSpec tokens_in[] = {{.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}}};
static const RtArgSpec tokens_out[] = {{.name = "t", .dtype = RT_I32, .rank = 3, .dim = {B, G, G}}};
static const RtArgSpec loss_in[] = {{.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}},
                                    {.name = "text", .dtype = RT_I32, .rank = 2, .dim = {B, LT}}};
static const RtArgSpec loss_tokens_in[] = {{.name = "text", .dtype = RT_I32, .rank = 2, .dim = {B, LT}},
                                           {.name = "image", .dtype = RT_I32, .rank = 2, .dim = {B, G * G}}};
static const RtArgSpec scalar_out[] = {{.name = "loss", .dtype = RT_F32, .rank = 0}};
static const RtEntrySpec entries[] = {
    {.name = "tokens", .ninput = 1, .input = tokens_in, .noutput = 1, .output = tokens_out},
    {.name = "loss", .train = true, .ninput = 2, .input = loss_in, .noutput = 1, .output = scalar_out},
    {.name = "loss_tokens", .train = true, .ninput = 2, .input = loss_tokens_in, .noutput = 1, .output = scalar_out},
};
enum { E_TOKENS, E_LOSS, E_LOSS_TOKENS };

/* State: vae.w (f32[2]: token offset, unused), gpt.u (f32[1]), opt.step. */
static float *st(RtProgram *p, int i) { return rt_f32(p->state->tensor[i]); }

static int fake_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e;
  st(p, 0)[0] = 0;
  st(p, 0)[1] = 0;
  st(p, 1)[0] = 0.5f * (float)seed;
  st(p, 2)[0] = 0;
  return 0;
}

/* Token (b, r, c): the mean of image b's 4x4 block (r, c) over the three
 * channels, quantised, plus the position and vae.w[0]; mod K. */
static void fake_tokens(RtProgram *p, const RtTensor *x, int32_t *out) {
  const float *px = rt_f32(x);
  for (int b = 0; b < B; b++)
    for (int r = 0; r < G; r++)
      for (int c = 0; c < G; c++) {
        double sum = 0;
        for (int ch = 0; ch < 3; ch++)
          for (int y = 0; y < S / G; y++)
            for (int xx = 0; xx < S / G; xx++)
              sum += px[((b * 3 + ch) * S + r * (S / G) + y) * S + c * (S / G) + xx];
        long v = lround((sum / (3.0 * (S / G) * (S / G)) + 1.0) * 20.0) + r * G + c + lround(st(p, 0)[0]);
        out[(b * G + r) * G + c] = (int32_t)(((v % K) + K) % K);
      }
}

/* The loss of text ids and image tokens; a step adds 0.001 to gpt.u. */
static float fake_loss(RtProgram *p, const int32_t *text, const int32_t *image) {
  double sum = st(p, 1)[0];
  for (int i = 0; i < B * LT; i++) sum += 1e-4 * text[i] * (i % LT + 1);
  for (int i = 0; i < B * G * G; i++) sum += 1e-5 * image[i] * (i % (G * G) + 1);
  return (float)sum;
}

static int fake_run(RtProgram *p, int entry, RtTensor *const *in, RtTensor **out, uint64_t seed, uint64_t step,
                    RtErr *e) {
  (void)seed;
  (void)step;
  out[0] = rt_tensor_new(entries[entry].output[0].dtype, entries[entry].output[0].rank, entries[entry].output[0].dim, e);
  if (!out[0]) return -1;
  if (entry == E_TOKENS) {
    fake_tokens(p, in[0], rt_i32(out[0]));
    return 0;
  }
  int32_t image[B * G * G];
  if (entry == E_LOSS) fake_tokens(p, in[0], image);
  else memcpy(image, rt_i32(in[1]), sizeof image);
  rt_f32(out[0])[0] = fake_loss(p, rt_i32(in[entry == E_LOSS ? 1 : 0]), image);
  st(p, 1)[0] += 0.001f;
  st(p, 2)[0] += 1;
  return 0;
}

static void fake_free(RtProgram *p) {
  rt_list_free(p->state);
  free(p);
}

static RtProgram *fake_program(void) {
  RtProgram *p = calloc(1, sizeof *p);
  RtErr e;
  p->model = "fake-dalle";
  p->config = "tiny";
  p->state = rt_list_new();
  rt_list_put(p->state, "vae.w", rt_tensor_new(RT_F32, 1, (int64_t[]){2}, &e));
  rt_list_put(p->state, "gpt.u", rt_tensor_new(RT_F32, 1, (int64_t[]){1}, &e));
  rt_list_put(p->state, "opt.step", rt_tensor_new(RT_F32, 1, (int64_t[]){1}, &e));
  p->nparam = 2;
  p->nsaved = 3; /* no transient state */
  p->nentry = 3;
  p->entry = entries;
  p->lr = 0.1;
  p->init = fake_init;
  p->run = fake_run;
  p->free = fake_free;
  return p;
}

/* ---- helpers ---- */

/* rt_main on a command line; its stdout and stderr together in *text. */
#define run_main(p, text, ...) tu_run_main(p, text, text, __VA_ARGS__)

/* rt_main on 'cmd' must fail (status 1) with a message holding want1 and
 * want2 (NULL: only want1). */
static void expect_fail(RtProgram *p, const char *want1, const char *want2, const char *cmd) {
  char *text = NULL;
  int rc = run_main(p, &text, "%s", cmd);
  ck_assert_msg(rc == 1, "'%s' gave %d: %s", cmd, rc, text);
  ck_assert_msg(strstr(text, want1) && (!want2 || strstr(text, want2)), "'%s': expected '%s' and '%s' in: %s", cmd,
                want1, want2 ? want2 : "", text);
  free(text);
}

static void expect_ok(RtProgram *p, const char *cmd) {
  char *text = NULL;
  int rc = run_main(p, &text, "%s", cmd);
  ck_assert_msg(rc == 0, "'%s' gave %d: %s", cmd, rc, text);
  free(text);
}

/* A tokenizer learned from the captions of shapes and fashion-mnist, kept
 * for the vocabulary 64; written once per process. */
static char *tok_path;
static const char *tokenizer(void) {
  if (tok_path) return tok_path;
  RtErr e;
  RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {64, 3, 8, 8}};
  RtEntrySpec en = {.name = "c", .ninput = 1, .input = &x};
  RtDataset *d = rt_data_open("shapes", &en, 0, &e);
  RtTensor *img = rt_tensor_new(RT_F32, 4, x.dim, &e);
  char *texts[64 * 8 + 10];
  int n = 0;
  for (int s = 0; s < 8; s++) {
    ck_assert_int_eq(rt_data_fill(d, (uint64_t)s, &img, &e), 0);
    for (int j = 0; j < 64; j++) texts[n++] = strdup(rt_data_caption(d, j));
  }
  for (int c = 0; c < 10; c++) texts[n++] = strdup(rt_fashion_caption(c));
  RtBpe *b = rt_bpe_train((const char *const *)texts, n, 64, &e);
  ck_assert_msg(b != NULL, "%s", e.msg);
  tok_path = tu_path("tok.json");
  ck_assert_int_eq(rt_bpe_save(b, tok_path, &e), 0);
  rt_bpe_free(b);
  for (int i = 0; i < n; i++) free(texts[i]);
  rt_tensor_free(img);
  rt_data_free(d);
  return tok_path;
}

/* A fake fashion-mnist training split of n images (image k all of value
 * 9 k, label k mod 10) in DAL_FASHION_MNIST. */
static void fake_fashion(int n) {
  char *dir = tu_path("fashion");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  char path[1024];
  unsigned char head[16];
  uint32_t words[4] = {0x803, (uint32_t)n, 28, 28};
  for (int i = 0; i < 4; i++)
    for (int b = 0; b < 4; b++) head[4 * i + b] = (unsigned char)(words[i] >> (24 - 8 * b));
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
  gzFile z = gzopen(path, "wb");
  gzwrite(z, head, 16);
  unsigned char img[28 * 28];
  for (int k = 0; k < n; k++) {
    for (int i = 0; i < 28 * 28; i++) img[i] = (unsigned char)(9 * k + (i % 28 > 14 ? 30 : 0));
    gzwrite(z, img, sizeof img);
  }
  gzclose(z);
  snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
  z = gzopen(path, "wb");
  uint32_t lw[2] = {0x801, (uint32_t)n};
  for (int i = 0; i < 2; i++)
    for (int b = 0; b < 4; b++) head[4 * i + b] = (unsigned char)(lw[i] >> (24 - 8 * b));
  gzwrite(z, head, 8);
  for (int k = 0; k < n; k++) {
    unsigned char l = (unsigned char)(k % 10);
    gzwrite(z, &l, 1);
  }
  gzclose(z);
  setenv("DAL_FASHION_MNIST", dir, 1);
  free(dir);
}

/* Writes parameters {name: value...} as a safetensors file. */
static char *write_params(const char *file, int n, const char *const *names, const int *sizes, float value) {
  RtErr e;
  RtTensorList *l = rt_list_new();
  for (int i = 0; i < n; i++) {
    RtTensor *t = rt_tensor_new(RT_F32, 1, (int64_t[]){sizes[i]}, &e);
    for (int k = 0; k < sizes[i]; k++) rt_f32(t)[k] = value + (float)k;
    rt_list_put(l, names[i], t);
  }
  char *path = tu_path(file);
  ck_assert_msg(rt_safetensors_write(path, l, &e) == 0, "%s", e.msg);
  rt_list_free(l);
  return path;
}

/* ---- captions into the text input ---- */

START_TEST(test_text_input) {
  RtErr e;
  const RtEntrySpec *en = &entries[E_LOSS];
  RtDataset *d = rt_data_open("shapes", en, 4, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  ck_assert(!rt_data_fills(d, 1));
  ck_assert_msg(rt_data_set_tokenizer(d, tokenizer(), &e) == 0, "%s", e.msg);
  ck_assert(rt_data_fills(d, 0) && rt_data_fills(d, 1));
  RtTensor *in[2] = {rt_tensor_new(RT_F32, 4, loss_in[0].dim, &e), rt_tensor_new(RT_I32, 2, loss_in[1].dim, &e)};
  RtBpe *b = rt_bpe_load(tokenizer(), &e);
  int64_t cut = 0;
  for (uint64_t s = 0; s < 6; s++) {
    ck_assert_int_eq(rt_data_fill(d, s, in, &e), 0);
    for (int j = 0; j < B; j++) {
      /* the row is what `dalc bpe encode --len 8` gives (the same call) */
      int32_t want[LT];
      cut += rt_bpe_encode_padded(b, rt_data_caption(d, j), rt_bpe_vocab(b), want, LT) > 0;
      ck_assert(memcmp(want, rt_i32(in[1]) + j * LT, sizeof want) == 0);
    }
  }
  /* Shapes' captions are longer than 8 tokens of a 64-id vocabulary: cut,
   * counted once per distinct caption however often it comes back. */
  int64_t distinct = rt_text_encoder_cut(rt_data_text(d));
  ck_assert_int_gt(distinct, 0);
  ck_assert_int_le(distinct, cut);
  for (uint64_t s = 0; s < 6; s++) ck_assert_int_eq(rt_data_fill(d, s, in, &e), 0);
  ck_assert_int_eq(rt_text_encoder_cut(rt_data_text(d)), distinct);
  rt_data_free(d);

  /* Padding: a caption shorter than Lt ends in pads Vt + p. */
  RtTextEncoder *t = rt_text_encoder_new(tokenizer(), 12, &e);
  int32_t ids[12];
  ck_assert_int_eq(rt_text_encode(t, "a dress", ids, &e), 0);
  ck_assert_int_eq(ids[11], rt_bpe_vocab(b) + 11);
  ck_assert_int_eq(rt_text_encoder_cut(t), 0);
  /* A character the tokenizer never saw: an error naming the caption and it. */
  ck_assert_int_eq(rt_text_encode(t, "a red zebra", ids, &e), -1);
  ck_assert_msg(strstr(e.msg, "\"a red zebra\"") && strstr(e.msg, "'z'") && strstr(e.msg, "no byte fallback"), "%s",
                e.msg);
  ck_assert_int_eq(rt_text_encode(t, "a caf\xc3\xa9", ids, &e), -1);
  ck_assert_msg(strstr(e.msg, "byte 0xc3"), "%s", e.msg);
  rt_text_encoder_free(t);
  rt_bpe_free(b);

  /* Errors: no text input; text of another batch; a dataset without
   * captions; a missing tokenizer file. */
  RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}};
  RtEntrySpec only_x = {.name = "tokens", .ninput = 1, .input = &x};
  d = rt_data_open("shapes", &only_x, 0, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, tokenizer(), &e), -1);
  ck_assert_msg(strstr(e.msg, "no input 'text'") && strstr(e.msg, "its inputs: x"), "%s", e.msg);
  rt_data_free(d);
  RtArgSpec odd[2] = {x, {.name = "text", .dtype = RT_I32, .rank = 2, .dim = {B + 1, LT}}};
  RtEntrySpec odd_en = {.name = "loss", .ninput = 2, .input = odd};
  d = rt_data_open("shapes", &odd_en, 0, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, tokenizer(), &e), -1);
  ck_assert_msg(strstr(e.msg, "i32[B, Lt] with B = 4") && strstr(e.msg, "[5, 8]"), "%s", e.msg);
  rt_data_free(d);
  d = rt_data_open("shapes", en, 0, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, "/nonexistent/tok.json", &e), -1);
  ck_assert_msg(strstr(e.msg, "/nonexistent/tok.json"), "%s", e.msg);
  /* A tokenizer that misses a letter of the captions fails when it is set,
   * not at the step that first meets it: shapes checks its grammar's words,
   * fashion-mnist its class captions. */
  const char *few[] = {"a red circle", "a blue square"};
  b = rt_bpe_train(few, 2, 30, &e);
  char *small = tu_path("small.json");
  ck_assert_int_eq(rt_bpe_save(b, small, &e), 0);
  rt_bpe_free(b);
  ck_assert_int_eq(rt_data_set_tokenizer(d, small, &e), -1);
  ck_assert_msg(strstr(e.msg, "caption \"green\"") && strstr(e.msg, "'g'"), "%s", e.msg);
  rt_data_free(d);
  fake_fashion(3);
  d = rt_data_open("fashion-mnist", en, 0, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  ck_assert_int_eq(rt_data_set_tokenizer(d, small, &e), -1);
  ck_assert_msg(strstr(e.msg, "caption \"a t-shirt\"") && strstr(e.msg, "'t'"), "%s", e.msg);
  rt_data_free(d);
  free(small);
  for (int i = 0; i < 2; i++) rt_tensor_free(in[i]);
}
END_TEST

/* The same through the command line: train needs --tokenizer for a text
 * input; data prints the ids; run fills inputs from --data. */
START_TEST(test_text_commands) {
  RtProgram *p = fake_program();
  char cmd[2048];
  char *log = tu_path("text.tsv"), *ckpt = tu_path("text.safetensors");
  expect_fail(p, "takes the captions as BPE ids: pass --tokenizer TOK.json", "text: i32[4, 8]",
              "train --fn loss --steps 2 --data shapes --quiet");
  snprintf(cmd, sizeof cmd, "train --fn loss --steps 3 --data shapes --tokenizer %s --quiet --log %s --checkpoint %s",
           tokenizer(), log, ckpt);
  expect_ok(p, cmd);
  snprintf(cmd, sizeof cmd, "train --fn loss_tokens --steps 2 --data shapes --tokenizer %s --quiet", tokenizer());
  expect_fail(p, "no such input", "image", cmd);
  /* data: one line per example, the caption and its ids */
  char *text = NULL;
  ck_assert_int_eq(run_main(p, &text, "data --fn loss --data shapes --seed 4 --step 1 --tokenizer %s", tokenizer()), 0);
  RtErr e;
  RtDataset *d = rt_data_open("shapes", &entries[E_LOSS], 4, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, tokenizer(), &e), 0);
  RtTensor *in[2] = {rt_tensor_new(RT_F32, 4, loss_in[0].dim, &e), rt_tensor_new(RT_I32, 2, loss_in[1].dim, &e)};
  ck_assert_int_eq(rt_data_fill(d, 1, in, &e), 0);
  for (int j = 0; j < B; j++) {
    char want[512];
    int at = snprintf(want, sizeof want, "%d\t%s\ttext:", j, rt_data_caption(d, j));
    for (int k = 0; k < LT; k++) at += snprintf(want + at, sizeof want - (size_t)at, " %d", rt_i32(in[1])[j * LT + k]);
    ck_assert_msg(strstr(text, want), "'%s' not in: %s", want, text);
  }
  free(text);
  /* run --data: the loss of that batch, as the training entry computes it */
  ck_assert_int_eq(run_main(p, &text, "run --fn loss --data shapes --seed 4 --step 1 --tokenizer %s", tokenizer()), 0);
  int32_t image[B * G * G];
  fake_init(p, 4, &e);
  fake_tokens(p, in[0], image);
  char want[64];
  snprintf(want, sizeof want, "loss: f32 = %.9g", (double)fake_loss(p, rt_i32(in[1]), image));
  ck_assert_msg(strstr(text, want), "'%s' not in: %s", want, text);
  ck_assert_msg(strstr(text, "caption 0: "), "%s", text);
  free(text);
  snprintf(cmd, sizeof cmd, "run --fn loss --data shapes --tokenizer %s --in text=%s", tokenizer(), log);
  expect_fail(p, "comes from --data shapes", NULL, cmd);
  expect_fail(p, "--tokenizer goes with --data", NULL, "run --fn loss --tokenizer t.json");
  for (int i = 0; i < 2; i++) rt_tensor_free(in[i]);
  rt_data_free(d);
  free(log);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

/* ---- token caches ---- */

/* vae.safetensors: "w" f32[2] = {3, 4}, for --init vae=...; once per process. */
static const char *vae_file(void) {
  static char *vae;
  if (!vae) vae = write_params("vae.safetensors", 1, (const char *[]){"w"}, (const int[]){2}, 3.0f);
  return vae;
}

/* Makes a cache of 'spec' with the fake program (vae.w from --init). */
static char *make_cache(RtProgram *p, const char *name, const char *spec, const char *extra) {
  const char *vae = vae_file();
  char *path = tu_path(name);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "tokenize --data %s --tokenizer %s --out %s --init vae=%s --seed 7 %s", spec, tokenizer(),
           path, vae, extra);
  expect_ok(p, cmd);
  return path;
}

/* For steps 0 .. steps-1: the batch of tokens:cache for loss_tokens
 * equals the fake tokens of the in-graph batch (loss's images and text). */
static void compare_paths(RtProgram *p, const char *spec, const char *cache, int steps) {
  RtErr e;
  char tspec[1100];
  snprintf(tspec, sizeof tspec, "tokens:%s", cache);
  RtDataset *img = rt_data_open(spec, &entries[E_LOSS], 7, &e), *tok = rt_data_open(tspec, &entries[E_LOSS_TOKENS], 7, &e);
  ck_assert_msg(img && tok, "%s", e.msg);
  ck_assert_int_eq(rt_data_set_tokenizer(img, tokenizer(), &e), 0);
  ck_assert_msg(rt_data_set_tokenizer(tok, tokenizer(), &e) == 0, "%s", e.msg); /* the cache's own: accepted */
  ck_assert(rt_data_fills(tok, 0) && rt_data_fills(tok, 1));
  RtTensor *a[2] = {rt_tensor_new(RT_F32, 4, loss_in[0].dim, &e), rt_tensor_new(RT_I32, 2, loss_in[1].dim, &e)};
  RtTensor *c[2] = {rt_tensor_new(RT_I32, 2, loss_tokens_in[0].dim, &e), rt_tensor_new(RT_I32, 2, loss_tokens_in[1].dim, &e)};
  p->init(p, 0, &e);
  st(p, 0)[0] = 3.0f; /* what --init vae=... set */
  for (int s = 0; s < steps; s++) {
    ck_assert_int_eq(rt_data_fill(img, (uint64_t)s, a, &e), 0);
    ck_assert_msg(rt_data_fill(tok, (uint64_t)s, c, &e) == 0, "%s", e.msg);
    int32_t image[B * G * G];
    fake_tokens(p, a[0], image);
    ck_assert_msg(memcmp(rt_i32(a[1]), rt_i32(c[0]), sizeof(int32_t) * B * LT) == 0, "%s step %d: text differs", spec, s);
    ck_assert_msg(memcmp(image, rt_i32(c[1]), sizeof image) == 0, "%s step %d: image tokens differ", spec, s);
  }
  for (int i = 0; i < 2; i++) {
    rt_tensor_free(a[i]);
    rt_tensor_free(c[i]);
  }
  rt_data_free(img);
  rt_data_free(tok);
}

START_TEST(test_cache_shapes) {
  RtProgram *p = fake_program();
  char *cache = make_cache(p, "shapes.tokens", "shapes", "--count 30 --len 8");
  /* 30 examples: steps 0 .. 6 (examples 0 .. 27) */
  compare_paths(p, "shapes", cache, 7);
  /* The file: text [30, 8], image [30, 16], the metadata of data.h. */
  RtErr e;
  RtTensorList *l;
  RtMeta *m;
  ck_assert_int_eq(rt_safetensors_read_meta(cache, &l, &m, &e), 0);
  ck_assert_int_eq(l->n, 2);
  ck_assert(rt_list_get(l, "text")->dim[1] == LT && rt_list_get(l, "image")->dim[1] == G * G);
  ck_assert_int_eq(rt_list_get(l, "image")->dim[0], 30);
  ck_assert_str_eq(rt_meta_get(m, "dal.kind"), "token-cache");
  ck_assert_str_eq(rt_meta_get(m, "dal.data"), "shapes");
  ck_assert_str_eq(rt_meta_get(m, "dal.data.size"), "0");
  ck_assert_str_eq(rt_meta_get(m, "dal.count"), "30");
  ck_assert_str_eq(rt_meta_get(m, "dal.seed"), "7");
  ck_assert_str_eq(rt_meta_get(m, "dal.tokenizer.vocab"), "64");
  ck_assert_str_eq(rt_meta_get(m, "dal.fn"), "tokens");
  ck_assert_msg(strncmp(rt_meta_get(m, "dal.init"), "vae=", 4) == 0, "%s", rt_meta_get(m, "dal.init"));
  RtBpe *b = rt_bpe_load(tokenizer(), &e);
  char fp[17];
  rt_bpe_fingerprint(b, fp);
  ck_assert_str_eq(rt_meta_get(m, "dal.tokenizer.hash"), fp);
  rt_bpe_free(b);
  rt_list_free(l);
  rt_meta_free(m);

  /* Training from the cache logs what training from the images logs. */
  char *la = tu_path("img.tsv"), *lb = tu_path("tok.tsv"), *ca = tu_path("img.st"), *cb = tu_path("tok.st");
  const char *vae = vae_file();
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "train --fn loss --steps 7 --seed 7 --data shapes --tokenizer %s --init vae=%s --quiet "
           "--log %s --checkpoint %s", tokenizer(), vae, la, ca);
  expect_ok(p, cmd);
  snprintf(cmd, sizeof cmd, "train --fn loss_tokens --steps 7 --seed 7 --data tokens:%s --init vae=%s --quiet "
           "--log %s --checkpoint %s", cache, vae, lb, cb);
  expect_ok(p, cmd);
  char *ta = tu_read_file(la, NULL), *tb = tu_read_file(lb, NULL);
  ck_assert_msg(ta && tb && strcmp(ta, tb) == 0, "the logs differ:\n%s\n%s", ta, tb);
  free(ta);
  free(tb);

  /* A run needing examples past the cache fails before its first step,
   * naming the step; a fill past it fails too. */
  char *lc = tu_path("never.tsv");
  snprintf(cmd, sizeof cmd, "train --fn loss_tokens --steps 8 --seed 7 --data tokens:%s --quiet --log %s", cache, lc);
  expect_fail(p, "step 7 needs examples 28 .. 31 of shapes", "tokenize --count 32", cmd);
  ck_assert_int_ne(access(lc, F_OK), 0); /* no step ran, no log was started */
  free(lc);
  char tspec[1100];
  snprintf(tspec, sizeof tspec, "tokens:%s", cache);
  RtDataset *d = rt_data_open(tspec, &entries[E_LOSS_TOKENS], 7, &e);
  RtTensor *c[2] = {rt_tensor_new(RT_I32, 2, loss_tokens_in[0].dim, &e), rt_tensor_new(RT_I32, 2, loss_tokens_in[1].dim, &e)};
  ck_assert_int_eq(rt_data_fill(d, 7, c, &e), -1);
  ck_assert_msg(strstr(e.msg, "step 7") && strstr(e.msg, "example 30"), "%s", e.msg);
  rt_data_free(d);
  /* The shapes stream depends on the seed: another seed is refused. */
  ck_assert_ptr_null(rt_data_open(tspec, &entries[E_LOSS_TOKENS], 8, &e));
  ck_assert_msg(strstr(e.msg, "seed 7") && strstr(e.msg, "--seed 7"), "%s", e.msg);
  /* A shapes:test cache holds the test split's examples. */
  char *test = make_cache(p, "test.tokens", "shapes:test", "--count 8 --len 8");
  compare_paths(p, "shapes:test", test, 2);
  for (int i = 0; i < 2; i++) rt_tensor_free(c[i]);
  free(test);
  free(la);
  free(lb);
  free(ca);
  free(cb);
  free(cache);
  rt_program_free(p);
}
END_TEST

START_TEST(test_cache_fashion) {
  fake_fashion(10);
  RtProgram *p = fake_program();
  /* All 10 examples by default; the text length from the training entry. */
  char *cache = make_cache(p, "fashion.tokens", "fashion-mnist", "");
  RtErr e;
  RtTensorList *l;
  RtMeta *m;
  ck_assert_int_eq(rt_safetensors_read_meta(cache, &l, &m, &e), 0);
  ck_assert_int_eq(rt_list_get(l, "text")->dim[0], 10);
  ck_assert_int_eq(rt_list_get(l, "text")->dim[1], LT);
  ck_assert_str_eq(rt_meta_get(m, "dal.data.size"), "10");
  rt_list_free(l);
  rt_meta_free(m);
  /* Batch 4 over 10 examples: steps 2, 4, 7 straddle epochs; 8 steps
   * visit every example thrice (the shuffle of each epoch, same code). */
  compare_paths(p, "fashion-mnist", cache, 8);
  /* The order is the seed's, whatever seed the cache was made with. */
  char tspec[1100];
  snprintf(tspec, sizeof tspec, "tokens:%s", cache);
  RtDataset *d = rt_data_open(tspec, &entries[E_LOSS_TOKENS], 99, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  rt_data_free(d);
  /* A cache of the first 3 examples only: a step needing another fails. */
  char *part = make_cache(p, "part.tokens", "fashion-mnist", "--count 3");
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "train --fn loss_tokens --steps 5 --seed 7 --data tokens:%s --quiet", part);
  expect_fail(p, "the cache holds examples 0 .. 2 only", "without --count", cmd);
  free(part);
  free(cache);
  rt_program_free(p);
}
END_TEST

/* folder:PATH: five images (a shapes batch written as PNGs) with captions. */
START_TEST(test_cache_folder) {
  RtErr e;
  char *dir = tu_path("folder");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {1, 3, 12, 12}};
  RtEntrySpec en = {.name = "one", .ninput = 1, .input = &x};
  RtTensor *img = rt_tensor_new(RT_F32, 4, x.dim, &e);
  char path[1024], tsv[4096] = "";
  for (int k = 0; k < 5; k++) {
    RtDataset *d = rt_data_open("shapes", &en, 0, &e);
    ck_assert_int_eq(rt_data_fill(d, (uint64_t)k, &img, &e), 0);
    snprintf(path, sizeof path, "%s/%d.png", dir, k);
    ck_assert_int_eq(rt_png_write_grid(path, img, 1, 1, &e), 0);
    size_t at = strlen(tsv);
    snprintf(tsv + at, sizeof tsv - at, "%d.png\t%s\n", k, rt_data_caption(d, 0));
    rt_data_free(d);
  }
  snprintf(path, sizeof path, "%s/captions.tsv", dir);
  tu_write_file(path, tsv);
  rt_tensor_free(img);
  RtProgram *p = fake_program();
  char spec[1100];
  snprintf(spec, sizeof spec, "folder:%s", dir);
  char *cache = make_cache(p, "folder.tokens", spec, "");
  compare_paths(p, spec, cache, 6); /* 24 examples: almost five epochs of five */
  free(cache);
  free(dir);
  rt_program_free(p);
}
END_TEST

/* Writes a safetensors file with the given tensors and cache metadata
 * (count 'count'); text rows of length lt, image rows of t. */
static char *write_cache(const char *name, bool text, bool image, int rows, int lt, int t, const char *count,
                         const char *kind) {
  RtErr e;
  RtTensorList *l = rt_list_new();
  if (text) rt_list_put(l, "text", rt_tensor_new(RT_I32, 2, (int64_t[]){rows, lt}, &e));
  if (image) rt_list_put(l, "image", rt_tensor_new(RT_I32, 2, (int64_t[]){rows, t}, &e));
  RtMeta *m = rt_meta_new();
  if (kind) rt_meta_set(m, "dal.kind", kind);
  rt_meta_set(m, "dal.data", "shapes");
  rt_meta_set(m, "dal.data.size", "0");
  rt_meta_set(m, "dal.count", count);
  rt_meta_set(m, "dal.seed", "0");
  char *path = tu_path(name);
  ck_assert_int_eq(rt_safetensors_write_meta(path, l, m, &e), 0);
  rt_list_free(l);
  rt_meta_free(m);
  return path;
}

START_TEST(test_cache_errors) {
  RtErr e;
  const RtEntrySpec *en = &entries[E_LOSS_TOKENS];
  static const struct {
    bool text, image;
    int lt, t;
    const char *count, *kind, *msg1, *msg2;
  } bad[] = {
      {true, false, LT, 16, "5", "token-cache", "no tensor 'image'", NULL},
      {false, true, LT, 16, "5", "token-cache", "no tensor 'text'", NULL},
      {true, true, 6, 16, "5", "token-cache", "input 'text' of entry 'loss_tokens' is i32[4, 8]", "rows are i32[6]"},
      {true, true, LT, 9, "5", "token-cache", "input 'image'", "rows are i32[9]"},
      {true, true, LT, 16, "6", "token-cache", "its metadata says 6", NULL},
      {true, true, LT, 16, "5", NULL, "not a token cache", NULL},
  };
  char spec[1100];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *path = write_cache("bad.tokens", bad[i].text, bad[i].image, 5, bad[i].lt, bad[i].t, bad[i].count, bad[i].kind);
    snprintf(spec, sizeof spec, "tokens:%s", path);
    ck_assert_ptr_null(rt_data_open(spec, en, 0, &e));
    ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, bad[i].msg1) && (!bad[i].msg2 || strstr(e.msg, bad[i].msg2)),
                  "case %zu: %s", i, e.msg);
    free(path);
  }
  /* A good one, then truncated. */
  char *good = write_cache("good.tokens", true, true, 5, LT, 16, "5", "token-cache");
  snprintf(spec, sizeof spec, "tokens:%s", good);
  RtDataset *d = rt_data_open(spec, en, 0, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  ck_assert_ptr_null(rt_data_caption(d, 0));
  rt_data_free(d);
  char *cut = tu_path("cut.tokens");
  ck_assert_int_eq(tu_sh("head -c 300 '%s' > '%s'", good, cut), 0);
  snprintf(spec, sizeof spec, "tokens:%s", cut);
  ck_assert_ptr_null(rt_data_open(spec, en, 0, &e));
  ck_assert_msg(strstr(e.msg, cut), "%s", e.msg);
  /* An entry without an image input; no file; another tokenizer. */
  snprintf(spec, sizeof spec, "tokens:%s", good);
  ck_assert_ptr_null(rt_data_open(spec, &entries[E_LOSS], 0, &e));
  ck_assert_msg(strstr(e.msg, "fills the inputs 'text' and 'image'") && strstr(e.msg, "x, text"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("tokens:", en, 0, &e));
  ck_assert_msg(strstr(e.msg, "tokens:FILE"), "%s", e.msg);
  ck_assert_ptr_null(rt_data_open("tokens:/nonexistent.tokens", en, 0, &e));
  ck_assert_msg(strstr(e.msg, "/nonexistent.tokens"), "%s", e.msg);
  RtProgram *p = fake_program();
  char *cache = make_cache(p, "c.tokens", "shapes", "--count 8 --len 8");
  const char *caps[] = {"a red circle", "a blue square"};
  RtBpe *b = rt_bpe_train(caps, 2, 30, &e);
  char *other = tu_path("other.json");
  ck_assert_int_eq(rt_bpe_save(b, other, &e), 0);
  rt_bpe_free(b);
  snprintf(spec, sizeof spec, "tokens:%s", cache);
  d = rt_data_open(spec, en, 7, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, other, &e), -1);
  ck_assert_msg(strstr(e.msg, other) && strstr(e.msg, "is not the tokenizer"), "%s", e.msg);
  rt_data_free(d);
  /* tokenize's own errors */
  char cmd[2048];
  char *out = tu_path("x.tokens");
  snprintf(cmd, sizeof cmd, "tokenize --data shapes --tokenizer %s --out %s --params %s", tokenizer(), out, cache);
  expect_fail(p, "needs --count N", NULL, cmd);
  snprintf(cmd, sizeof cmd, "tokenize --data shapes --count 4 --tokenizer %s --out %s", tokenizer(), out);
  expect_fail(p, "needs the trained dVAE's parameters", NULL, cmd);
  snprintf(cmd, sizeof cmd, "tokenize --data shapes --count 4 --tokenizer %s --out %s --init vae=%s --len 9",
           tokenizer(), out, cache);
  expect_fail(p, "--len 9: training entry 'loss' takes text of length 8", NULL, cmd);
  snprintf(cmd, sizeof cmd, "tokenize --fn loss --data shapes --count 4 --tokenizer %s --out %s --init vae=%s",
           tokenizer(), out, cache);
  expect_fail(p, "entry 'loss' of fake-dalle must take images", NULL, cmd);
  fake_fashion(10);
  snprintf(cmd, sizeof cmd, "tokenize --data fashion-mnist --count 11 --tokenizer %s --out %s --init vae=%s",
           tokenizer(), out, cache);
  expect_fail(p, "--count 11: dataset 'fashion-mnist' has 10 examples", NULL, cmd);
  snprintf(cmd, sizeof cmd, "tokenize --data shapes --count 4 --tokenizer %s --out %s --init vae=%s", other, out,
           vae_file());
  expect_fail(p, "never saw the character", "no byte fallback", cmd);
  expect_fail(p, "tokenize needs --data SPEC, --tokenizer TOK.json and --out", NULL, "tokenize --data shapes");
  ck_assert_int_ne(access(out, F_OK), 0);
  free(out);
  free(other);
  free(cache);
  free(good);
  free(cut);
  rt_program_free(p);
}
END_TEST

/* ---- --init ---- */

START_TEST(test_init_from) {
  RtProgram *p = fake_program();
  RtErr e;
  RtInitFrom l;
  char *vae = write_params("iv.safetensors", 1, (const char *[]){"w"}, (const int[]){2}, 5.0f);
  char *both = write_params("ib.safetensors", 2, (const char *[]){"vae.w", "gpt.u"}, (const int[]){2, 1}, 2.0f);
  char *extra = write_params("ix.safetensors", 2, (const char *[]){"w", "z"}, (const int[]){2, 1}, 1.0f);
  char *wrong = write_params("iw.safetensors", 1, (const char *[]){"w"}, (const int[]){3}, 1.0f);
  char *gpt_only = write_params("ig.safetensors", 1, (const char *[]){"gpt.u"}, (const int[]){1}, 9.0f);
  char *with_opt = write_params("io.safetensors", 3, (const char *[]){"w", "opt.m.w", "opt.step"},
                                (const int[]){2, 2, 1}, 4.0f);
  /* PREFIX=FILE: only the parameters under the prefix change. */
  memset(&l, 0, sizeof l);
  ck_assert_int_eq(rt_init_from_add(&l, vae, &e), 0); /* no '=': no prefix */
  ck_assert_str_eq(l.file[0].prefix, "");
  char arg[1100];
  snprintf(arg, sizeof arg, "vae.=%s", vae);
  memset(&l, 0, sizeof l);
  ck_assert_int_eq(rt_init_from_add(&l, arg, &e), 0);
  ck_assert_str_eq(l.file[0].prefix, "vae");
  p->init(p, 2, &e);
  ck_assert_msg(rt_init_from_apply(p, &l, &e) == 0, "%s", e.msg);
  ck_assert(st(p, 0)[0] == 5.0f && st(p, 0)[1] == 6.0f && st(p, 1)[0] == 1.0f);
  /* opt.* tensors in the file are skipped; the optimizer state is untouched */
  st(p, 2)[0] = 42;
  snprintf(arg, sizeof arg, "vae=%s", with_opt);
  memset(&l, 0, sizeof l);
  rt_init_from_add(&l, arg, &e);
  ck_assert_msg(rt_init_from_apply(p, &l, &e) == 0, "%s", e.msg);
  ck_assert(st(p, 0)[0] == 4.0f && st(p, 2)[0] == 42.0f);
  /* "=FILE": the names as they are; every parameter must be there. */
  snprintf(arg, sizeof arg, "=%s", both);
  memset(&l, 0, sizeof l);
  rt_init_from_add(&l, arg, &e);
  ck_assert_msg(rt_init_from_apply(p, &l, &e) == 0, "%s", e.msg);
  ck_assert(st(p, 0)[0] == 2.0f && st(p, 1)[0] == 2.0f);

  /* Errors leave the state as it was. */
  static const struct {
    const char *prefix;
    int file; /* 0 extra, 1 wrong, 2 gpt_only, 3 vae (no prefix) */
    bool partial;
    const char *msg1, *msg2;
  } bad[] = {
      {"vae", 0, false, "tensor 'z'", "has no parameter 'vae.z'"},
      {"vae", 1, false, "tensor 'w' is f32[3] but parameter 'vae.w' of model 'fake-dalle' is f32[2]", NULL},
      {"", 2, false, "parameter 'vae.w' of model 'fake-dalle' is not in the file", "--init-partial"},
      {"", 3, false, "tensor 'w'", "no parameter 'w'"},
      {"gpt", 0, true, "no tensor of the file is a parameter", "under 'gpt'"},
  };
  const char *files[] = {extra, wrong, gpt_only, vae};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(arg, sizeof arg, "%s=%s", bad[i].prefix, files[bad[i].file]);
    memset(&l, 0, sizeof l);
    l.partial = bad[i].partial;
    rt_init_from_add(&l, arg, &e);
    ck_assert_int_eq(rt_init_from_apply(p, &l, &e), -1);
    ck_assert_msg(strstr(e.msg, files[bad[i].file]) && strstr(e.msg, bad[i].msg1) &&
                      (!bad[i].msg2 || strstr(e.msg, bad[i].msg2)),
                  "case %zu: %s", i, e.msg);
    ck_assert(st(p, 0)[0] == 2.0f && st(p, 1)[0] == 2.0f);
  }
  /* --init-partial: the unknown tensor is skipped, the missing parameter kept. */
  snprintf(arg, sizeof arg, "vae=%s", extra);
  memset(&l, 0, sizeof l);
  l.partial = true;
  rt_init_from_add(&l, arg, &e);
  ck_assert_msg(rt_init_from_apply(p, &l, &e) == 0, "%s", e.msg);
  ck_assert(st(p, 0)[0] == 1.0f && st(p, 1)[0] == 2.0f);
  snprintf(arg, sizeof arg, "=%s", gpt_only);
  memset(&l, 0, sizeof l);
  l.partial = true;
  rt_init_from_add(&l, arg, &e);
  ck_assert_msg(rt_init_from_apply(p, &l, &e) == 0, "%s", e.msg);
  ck_assert(st(p, 0)[0] == 1.0f && st(p, 1)[0] == 9.0f);
  /* Two files setting one parameter. */
  memset(&l, 0, sizeof l);
  char arg2[1100]; /* l keeps pointers into its arguments, as into argv */
  snprintf(arg, sizeof arg, "vae=%s", vae);
  rt_init_from_add(&l, arg, &e);
  snprintf(arg2, sizeof arg2, "=%s", both);
  rt_init_from_add(&l, arg2, &e);
  ck_assert_int_eq(rt_init_from_apply(p, &l, &e), -1);
  ck_assert_msg(strstr(e.msg, "'vae.w' is set by both") && strstr(e.msg, vae) && strstr(e.msg, both), "%s", e.msg);
  ck_assert_int_eq(rt_init_from_add(&l, "vae=", &e), -1);
  ck_assert_msg(strstr(e.msg, "PREFIX=FILE"), "%s", e.msg);
  char desc[2048];
  rt_init_from_describe(&l, desc, sizeof desc);
  ck_assert_msg(strstr(desc, "vae=") == desc && strstr(desc, ";=") , "%s", desc);

  /* Through the commands: train (applied after --params, recorded in the
   * checkpoint), run, and the flag errors. */
  char *ckpt = tu_path("init.safetensors"), cmd[2048], *text = NULL;
  snprintf(cmd, sizeof cmd, "train --fn loss --steps 1 --data shapes --tokenizer %s --params %s --init vae=%s --quiet "
           "--checkpoint %s", tokenizer(), both, vae, ckpt);
  expect_ok(p, cmd);
  ck_assert(st(p, 0)[0] == 5.0f && fabsf(st(p, 1)[0] - 2.001f) < 1e-6f); /* vae.w from --init, gpt.u from --params + a step */
  RtTensorList *cl;
  RtMeta *m;
  ck_assert_int_eq(rt_safetensors_read_meta(ckpt, &cl, &m, &e), 0);
  ck_assert_msg(strstr(rt_meta_get(m, "dal.init"), "vae=") && strstr(rt_meta_get(m, "dal.init"), vae), "%s",
                rt_meta_get(m, "dal.init"));
  rt_list_free(cl);
  rt_meta_free(m);
  ck_assert_int_eq(run_main(p, &text, "run --fn loss --data shapes --tokenizer %s --init vae=%s --seed 4", tokenizer(),
                            vae), 0);
  ck_assert(st(p, 0)[0] == 5.0f);
  free(text);
  snprintf(cmd, sizeof cmd, "train --fn loss --steps 2 --data shapes --tokenizer %s --init vae=%s --resume %s",
           tokenizer(), vae, ckpt);
  expect_fail(p, "--init and --resume cannot be used together", NULL, cmd);
  expect_fail(p, "--init-partial goes with --init", NULL, "train --steps 2 --init-partial");
  snprintf(cmd, sizeof cmd, "train --fn loss --steps 2 --data shapes --tokenizer %s --init vae=%s --quiet", tokenizer(),
           extra);
  expect_fail(p, "tensor 'z'", NULL, cmd);
  free(ckpt);
  free(vae);
  free(both);
  free(extra);
  free(wrong);
  free(gpt_only);
  free(with_opt);
  rt_program_free(p);
}
END_TEST

/* A run started with --init, stopped and resumed, ends where the run that
 * was not stopped does: the same log, the same checkpoint bytes (dal.init
 * included). */
START_TEST(test_init_resume) {
  RtProgram *p = fake_program();
  char *vae = write_params("rv.safetensors", 1, (const char *[]){"w"}, (const int[]){2}, 5.0f);
  char *la = tu_path("ra.tsv"), *lb = tu_path("rb.tsv"), *ca = tu_path("ra.st"), *cb = tu_path("rb.st"), cmd[2048];
  const char *flags = "train --fn loss --data shapes --seed 3 --quiet --every 2";
  snprintf(cmd, sizeof cmd, "%s --steps 6 --tokenizer %s --init vae=%s --log %s --checkpoint %s", flags, tokenizer(),
           vae, la, ca);
  expect_ok(p, cmd);
  RtProgram *q = fake_program();
  snprintf(cmd, sizeof cmd, "%s --steps 3 --tokenizer %s --init vae=%s --log %s --checkpoint %s", flags, tokenizer(),
           vae, lb, cb);
  expect_ok(q, cmd);
  RtProgram *r = fake_program();
  snprintf(cmd, sizeof cmd, "%s --steps 6 --tokenizer %s --log %s --resume %s", flags, tokenizer(), lb, cb);
  expect_ok(r, cmd);
  size_t na, nb;
  char *ta = tu_read_file(la, NULL), *tb = tu_read_file(lb, NULL);
  ck_assert_str_eq(ta, tb);
  free(ta);
  free(tb);
  ta = tu_read_file(ca, &na);
  tb = tu_read_file(cb, &nb);
  ck_assert_msg(na == nb && memcmp(ta, tb, na) == 0, "the final checkpoints differ");
  const char *key = "\"dal.init\":\"vae=";
  bool found = false;
  for (size_t i = 0; i + strlen(key) <= na && !found; i++) found = memcmp(ta + i, key, strlen(key)) == 0;
  ck_assert_msg(found, "no dal.init in the checkpoint");
  free(ta);
  free(tb);
  free(vae);
  free(la);
  free(lb);
  free(ca);
  free(cb);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tokens");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_text_input);
  tcase_add_test(tc, test_text_commands);
  tcase_add_test(tc, test_cache_shapes);
  tcase_add_test(tc, test_cache_fashion);
  tcase_add_test(tc, test_cache_folder);
  tcase_add_test(tc, test_cache_errors);
  tcase_add_test(tc, test_init_from);
  tcase_add_test(tc, test_init_resume);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
