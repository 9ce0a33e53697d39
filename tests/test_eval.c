/* test_eval.c — `EXE eval dvae|gpt|classify` (runtime/exe_eval*.c) through
 * the executables' command line (rt_main), on stand-in programs written by
 * hand whose answers are known:
 *   dVAE: a decoder that gives the images back exactly (MSE 0, PSNR inf,
 *         --out-recon the images themselves, --out-captions theirs),
 *         one code everywhere (perplexity 1, usage 1/K) with a constant
 *         decoder (MSE computed here from the images, clamping included),
 *         every code equally often (perplexity K, usage 1); K from
 *         "encode", from a codebook parameter or from --codes;
 *   GPT:  uniform logits (image CE = log K, joint and text CE = log V), a
 *         GPT that puts logit 5 on the right token (CE = log(e^5 + K-1) - 5),
 *         the unigram entropies; data from npy, from a token cache and from
 *         images through "tokens" with a tokenizer;
 *   classify: a perfect reader and one that always says class 0, on a
 *         fake Fashion-MNIST test split (labels from captions), on .npy
 *         images with text and .npy labels, and on eval dvae's
 *         --out-recon with its --out-captions;
 * plus the metric functions themselves and every bad-input class. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/data/bpe.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe_eval.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tests/run_main.h"
#include "tests/util.h"

#define B 4
#define S 16
#define G 4   /* token grid side */
#define T (G * G)
#define K 64  /* image codes */
#define LT 8
#define VT 32 /* text ids of the fake GPT (the test tokenizer's vocabulary) */
#define V (VT + LT + K)
#define N (LT + T - 1)

/* ---- the stand-in programs: one struct, entries chosen per model ---- */

typedef enum { DEC_EXACT, DEC_CONST } DecMode;
typedef enum { TOK_ONE, TOK_CYCLE, TOK_BLOCKS, TOK_BAD } TokMode;
typedef enum { LOGITS_ZERO, LOGITS_CHEAT } LogitsMode;
typedef enum { PRED_EXACT, PRED_ZERO } PredMode;

static DecMode dec_mode;
static float dec_value;
static TokMode tok_mode;
static LogitsMode logits_mode;
static PredMode pred_mode;
static float last_x[B * 3 * S * S]; /* the images "tokens" saw last (DEC_EXACT) */
static int64_t cycle;               /* TOK_CYCLE's next code */

static const RtArgSpec img_in[] = {{.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}}};
static const RtArgSpec enc_out[] = {{.name = "logits", .dtype = RT_F32, .rank = 4, .dim = {B, K, G, G}}};
static const RtArgSpec tok_out[] = {{.name = "t", .dtype = RT_I32, .rank = 3, .dim = {B, G, G}}};
static const RtArgSpec dec_in[] = {{.name = "t", .dtype = RT_I32, .rank = 3, .dim = {B, G, G}}};
static const RtArgSpec img_out[] = {{.name = "recon", .dtype = RT_F32, .rank = 4, .dim = {B, 3, S, S}}};
static const RtArgSpec gpt_in[] = {{.name = "text", .dtype = RT_I32, .rank = 2, .dim = {B, LT}},
                                   {.name = "image", .dtype = RT_I32, .rank = 2, .dim = {B, T}}};
static const RtArgSpec logits_out[] = {{.name = "logits", .dtype = RT_F32, .rank = 3, .dim = {B, N, V}}};
static const RtArgSpec image_logits_out[] = {{.name = "il", .dtype = RT_F32, .rank = 3, .dim = {B, T, K}}};
static const RtArgSpec pred_out[] = {{.name = "predict", .dtype = RT_I32, .rank = 1, .dim = {B}}};
static const RtArgSpec cls_out[] = {{.name = "logits", .dtype = RT_F32, .rank = 2, .dim = {B, 10}}};

static const RtEntrySpec dvae_entries[] = {
    {.name = "encode", .ninput = 1, .input = img_in, .noutput = 1, .output = enc_out},
    {.name = "tokens", .ninput = 1, .input = img_in, .noutput = 1, .output = tok_out},
    {.name = "decode_tokens", .ninput = 1, .input = dec_in, .noutput = 1, .output = img_out},
};
static const RtEntrySpec gpt_entries[] = {
    {.name = "logits", .ninput = 2, .input = gpt_in, .noutput = 1, .output = logits_out},
    {.name = "image_logits", .ninput = 2, .input = gpt_in, .noutput = 1, .output = image_logits_out},
    {.name = "tokens", .ninput = 1, .input = img_in, .noutput = 1, .output = tok_out},
};
static const RtEntrySpec cls_entries[] = {
    {.name = "logits", .ninput = 1, .input = img_in, .noutput = 1, .output = cls_out},
    {.name = "predict", .ninput = 1, .input = img_in, .noutput = 1, .output = pred_out},
};

/* The class an image of the fake Fashion-MNIST shows: its first pixel
 * holds the grey value 9 k of example k, whose label is k mod 10. */
static int class_of(const float *img) { return (int)(lround((img[0] + 1.0) * 127.5 / 9.0) % 10); }

static void fake_tokens(const float *x, int32_t *out) {
  for (int b = 0; b < B; b++)
    for (int i = 0; i < T; i++) {
      int32_t c = 0;
      if (tok_mode == TOK_ONE) c = 5;
      else if (tok_mode == TOK_CYCLE) c = (int32_t)(cycle++ % K);
      else if (tok_mode == TOK_BAD) c = K + 3;
      else c = (int32_t)(lround((x[(b * 3) * S * S + (i / G) * (S / G) * S + (i % G) * (S / G)] + 1.0) * 20) % K);
      out[b * T + i] = c;
    }
}

static void fake_logits(const int32_t *text, const int32_t *image, float *out) {
  memset(out, 0, sizeof(float) * B * N * V);
  if (logits_mode != LOGITS_CHEAT) return;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < N; i++) {
      int32_t next = i + 1 < LT ? text[b * LT + i + 1] : VT + LT + image[b * T + i + 1 - LT];
      out[(b * N + i) * V + next] = 5.0f;
    }
}

static int fake_run(RtProgram *p, int entry, RtTensor *const *in, RtTensor **out, uint64_t seed, uint64_t step,
                    RtErr *e) {
  (void)seed;
  (void)step;
  const RtArgSpec *o = &p->entry[entry].output[0];
  if (!(out[0] = rt_tensor_new(o->dtype, o->rank, o->dim, e))) return -1;
  const char *name = p->entry[entry].name;
  if (strcmp(name, "encode") == 0 || strcmp(name, "image_logits") == 0) {
    memset(out[0]->data, 0, rt_tensor_bytes(out[0]));
  } else if (strcmp(name, "tokens") == 0) {
    memcpy(last_x, in[0]->data, sizeof last_x);
    fake_tokens(rt_f32(in[0]), rt_i32(out[0]));
  } else if (strcmp(name, "decode_tokens") == 0) {
    for (int i = 0; i < B * 3 * S * S; i++) rt_f32(out[0])[i] = dec_mode == DEC_EXACT ? last_x[i] : dec_value;
  } else if (strcmp(name, "logits") == 0 && o->rank == 3) {
    fake_logits(rt_i32(in[0]), rt_i32(in[1]), rt_f32(out[0]));
  } else if (strcmp(name, "logits") == 0) {
    memset(out[0]->data, 0, rt_tensor_bytes(out[0]));
  } else { /* predict */
    for (int b = 0; b < B; b++) rt_i32(out[0])[b] = pred_mode == PRED_ZERO ? 0 : class_of(rt_f32(in[0]) + b * 3 * S * S);
  }
  return 0;
}

static int fake_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e;
  for (int i = 0; i < p->state->n; i++) {
    RtTensor *t = p->state->tensor[i];
    for (int64_t k = 0; k < rt_tensor_numel(t); k++) rt_f32(t)[k] = (float)seed;
  }
  return 0;
}

static void fake_free(RtProgram *p) {
  rt_list_free(p->state);
  free(p);
}

/* A program of 'n' entries; 'param' (NULL: "w" f32[2]) names its one
 * parameter, of shape [rows, 2]. */
static RtProgram *fake_program(const char *model, const RtEntrySpec *entries, int n, const char *param, int64_t rows) {
  RtProgram *p = calloc(1, sizeof *p);
  RtErr e;
  p->model = model;
  p->config = "tiny";
  p->state = rt_list_new();
  if (param) rt_list_put(p->state, param, rt_tensor_new(RT_F32, 2, (int64_t[]){rows, 2}, &e));
  else rt_list_put(p->state, "w", rt_tensor_new(RT_F32, 1, (int64_t[]){2}, &e));
  p->nparam = p->nsaved = 1;
  p->nentry = n;
  p->entry = entries;
  p->lr = 0.1;
  p->init = fake_init;
  p->run = fake_run;
  p->free = fake_free;
  return p;
}

/* ---- helpers ---- */

/* Runs an eval with --json; returns the parsed object (the caller frees). */
static cJSON *eval_json(RtProgram *p, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char *out = NULL, *err = NULL;
  int rc = tu_run_main(p, &out, &err, "%s --json", cmd);
  ck_assert_msg(rc == 0, "'%s' gave %d: %s", cmd, rc, err);
  cJSON *j = cJSON_Parse(out);
  ck_assert_msg(j != NULL, "'%s': not JSON: %s", cmd, out);
  free(out);
  free(err);
  return j;
}

static double num(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  ck_assert_msg(v != NULL, "no '%s' in the JSON", key);
  ck_assert_msg(cJSON_IsNumber(v), "'%s' is not a number", key);
  return v->valuedouble;
}

static void expect_fail(RtProgram *p, const char *want1, const char *want2, const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char *err = NULL;
  int rc = tu_run_main(p, NULL, &err, "%s", cmd);
  ck_assert_msg(rc == 1, "'%s' gave %d: %s", cmd, rc, err);
  ck_assert_msg(strstr(err, want1) && (!want2 || strstr(err, want2)), "'%s': expected '%s' and '%s' in: %s", cmd,
                want1, want2 ? want2 : "", err);
  free(err);
}

/* Examples 0 .. n-1 of shapes:test as the eval sees them, f32 [n, 3, S, S]. */
static float *test_images(int n) {
  RtErr e;
  RtDataset *d = rt_data_open("shapes:test", &dvae_entries[1], 0, &e);
  ck_assert_msg(d != NULL, "%s", e.msg);
  RtTensor *x = rt_tensor_new(RT_F32, 4, img_in[0].dim, &e);
  float *all = malloc(sizeof(float) * (size_t)n * 3 * S * S);
  for (int base = 0; base < n; base += B) {
    uint64_t k[B];
    for (int j = 0; j < B; j++) k[j] = (uint64_t)(base + j);
    ck_assert_int_eq(rt_data_fill_examples(d, k, &x, &e), 0);
    int rows = n - base < B ? n - base : B;
    memcpy(all + (size_t)base * 3 * S * S, x->data, sizeof(float) * (size_t)rows * 3 * S * S);
  }
  rt_tensor_free(x);
  rt_data_free(d);
  return all;
}

/* ---- the metric functions ---- */

START_TEST(test_metrics) {
  ck_assert(isinf(rt_eval_psnr(0)) && rt_eval_psnr(0) > 0);
  ck_assert_double_eq_tol(rt_eval_psnr(0.01), 20.0, 1e-12);
  ck_assert_double_eq_tol(rt_eval_psnr(1), 0.0, 1e-12);
  int64_t one[4] = {0, 7, 0, 0}, flat[4] = {3, 3, 3, 3}, none[4] = {0}, skew[2] = {1, 3}, used;
  ck_assert_double_eq(rt_eval_entropy(one, 4, &used), 0.0);
  ck_assert_int_eq(used, 1);
  ck_assert_double_eq_tol(rt_eval_entropy(flat, 4, &used), log(4.0), 1e-12);
  ck_assert_int_eq(used, 4);
  ck_assert_double_eq(rt_eval_entropy(none, 4, &used), 0.0);
  ck_assert_int_eq(used, 0);
  ck_assert_double_eq_tol(rt_eval_entropy(skew, 2, NULL), -(0.25 * log(0.25) + 0.75 * log(0.75)), 1e-12);
  float row[5] = {0, 0, 0, 0, 0}, big[3] = {1000, 0, -1000};
  ck_assert_double_eq_tol(rt_eval_ce(row, 0, 5, 2), log(5.0), 1e-12);
  ck_assert_double_eq_tol(rt_eval_ce(row, 1, 3, 1), log(2.0), 1e-12);
  ck_assert_double_eq_tol(rt_eval_ce(big, 0, 3, 0), 0.0, 1e-12); /* no overflow */
  ck_assert_double_eq_tol(rt_eval_ce(big, 0, 3, 1), 1000.0, 1e-9);
  ck_assert_double_eq_tol(rt_eval_lse2(rt_eval_lse(row, 0, 2), rt_eval_lse(row, 2, 5)), log(5.0), 1e-12);
  float am[4] = {1, 3, 3, 2};
  ck_assert_int_eq(rt_eval_argmax(am, 4), 1);
}
END_TEST

/* ---- eval dvae ---- */

START_TEST(test_dvae_perfect) {
  RtProgram *p = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  dec_mode = DEC_EXACT;
  tok_mode = TOK_BLOCKS;
  cJSON *j = eval_json(p, "eval dvae --data shapes:test --count 10");
  ck_assert_double_eq(num(j, "mse"), 0.0);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "psnr_db"))); /* infinite */
  ck_assert_int_eq((int)num(j, "count"), 10);                 /* 3 batches, the last one padded */
  ck_assert_int_eq((int)num(j, "codes"), K);                  /* from "encode" */
  ck_assert_int_eq((int)num(j, "positions"), 10 * T);
  /* The baseline: the per-pixel variance of these 10 images, in [0, 1] units. */
  float *x = test_images(10);
  double base = 0;
  for (int k = 0; k < 3 * S * S; k++) {
    double m = 0, v = 0;
    for (int i = 0; i < 10; i++) m += ((double)x[i * 3 * S * S + k] + 1) / 2 / 10;
    for (int i = 0; i < 10; i++) v += pow(((double)x[i * 3 * S * S + k] + 1) / 2 - m, 2) / 10;
    base += v / (3 * S * S);
  }
  ck_assert_double_gt(base, 0.001);
  ck_assert_double_eq_tol(num(j, "baseline_mse"), base, 1e-9);
  ck_assert_double_eq_tol(num(j, "baseline_psnr_db"), 10 * log10(1 / base), 1e-6);
  cJSON_Delete(j);
  /* The table: the same figures, PSNR "inf". */
  char *out = NULL;
  ck_assert_int_eq(tu_run_main(p, &out, NULL, "eval dvae --data shapes:test --count 10"), 0);
  ck_assert_msg(strstr(out, "PSNR") && strstr(out, "inf dB") && strstr(out, "0.000000"), "%s", out);
  ck_assert_msg(strstr(out, "10 examples of shapes:test"), "%s", out);
  free(out);
  /* --out-recon / --out-captions: the reconstructions (here the images) and captions, in order */
  char *rp = tu_path("recon.npy"), *cp = tu_path("captions.txt");
  ck_assert_int_eq(tu_run_main(p, NULL, NULL, "eval dvae --data shapes:test --count 10 --out-recon %s --out-captions %s", rp, cp), 0);
  RtErr e;
  RtTensor *r = NULL;
  ck_assert_int_eq(rt_npy_read(rp, &r, &e), 0);
  ck_assert(r->dtype == RT_F32 && r->rank == 4 && r->dim[0] == 10 && r->dim[1] == 3 && r->dim[2] == S);
  ck_assert(memcmp(r->data, x, sizeof(float) * 10 * 3 * S * S) == 0);
  rt_tensor_free(r);
  char *caps = tu_read_file(cp, NULL);
  RtDataset *d = rt_data_open("shapes:test", &dvae_entries[1], 0, &e);
  RtTensor *img = rt_tensor_new(RT_F32, 4, img_in[0].dim, &e);
  char want[2048] = "";
  for (int base = 0; base < 10; base += B) {
    uint64_t k[B] = {(uint64_t)base, (uint64_t)base + 1, (uint64_t)base + 2, (uint64_t)base + 3};
    ck_assert_int_eq(rt_data_fill_examples(d, k, &img, &e), 0);
    for (int j = 0; j < B && base + j < 10; j++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s\n", rt_data_caption(d, j));
  }
  ck_assert_str_eq(caps, want);
  free(caps);
  rt_tensor_free(img);
  rt_data_free(d);
  expect_fail(p, "--out-captions", "dataset 'npy:x=", "eval dvae --data npy:x=%s --count 4 --out-captions %s", rp, cp);
  free(rp);
  free(cp);
  free(x);
  rt_program_free(p);
}
END_TEST

START_TEST(test_dvae_one_code) {
  RtProgram *p = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  tok_mode = TOK_ONE;
  dec_mode = DEC_CONST;
  float *x = test_images(9);
  for (int c = 0; c < 2; c++) {
    dec_value = c == 0 ? 0.0f : 3.0f; /* grey, and white after clamping */
    cJSON *j = eval_json(p, "eval dvae --data shapes:test --count 9");
    double mse = 0;
    for (int i = 0; i < 9 * 3 * S * S; i++) mse += pow((c == 0 ? 0.5 : 1.0) - ((double)x[i] + 1) / 2, 2) / (9 * 3 * S * S);
    ck_assert_double_eq_tol(num(j, "mse"), mse, 1e-9);
    ck_assert_double_eq_tol(num(j, "psnr_db"), 10 * log10(1 / mse), 1e-6);
    ck_assert_double_eq(num(j, "perplexity"), 1.0);
    ck_assert_double_eq(num(j, "entropy"), 0.0);
    ck_assert_int_eq((int)num(j, "codes_used"), 1);
    ck_assert_double_eq(num(j, "usage"), 1.0 / K);
    cJSON_Delete(j);
  }
  free(x);
  rt_program_free(p);
}
END_TEST

START_TEST(test_dvae_uniform) {
  /* every batch of 4 images uses all 64 codes once: perplexity K */
  RtProgram *p = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  tok_mode = TOK_CYCLE;
  dec_mode = DEC_EXACT;
  cycle = 0;
  cJSON *j = eval_json(p, "eval dvae --data shapes:test --count 12");
  ck_assert_double_eq_tol(num(j, "perplexity"), (double)K, 1e-9);
  ck_assert_int_eq((int)num(j, "codes_used"), K);
  ck_assert_double_eq(num(j, "usage"), 1.0);
  cJSON_Delete(j);
  rt_program_free(p);

  /* K from a codebook parameter (no "encode"), then from --codes */
  p = fake_program("fake-dalle", dvae_entries + 1, 2, "vae.codebook.weight", 128);
  cycle = 0;
  j = eval_json(p, "eval dvae --data shapes:test --count 12");
  ck_assert_int_eq((int)num(j, "codes"), 128);
  ck_assert_double_eq_tol(num(j, "perplexity"), (double)K, 1e-9);
  ck_assert_double_eq(num(j, "usage"), 0.5);
  cJSON_Delete(j);
  rt_program_free(p);
  p = fake_program("fake-nocodebook", dvae_entries + 1, 2, NULL, 0);
  expect_fail(p, "no 'encode' entry and no codebook.weight", "--codes K", "eval dvae --data shapes:test --count 4");
  cycle = 0;
  j = eval_json(p, "eval dvae --data shapes:test --count 4 --codes 100");
  ck_assert_int_eq((int)num(j, "codes"), 100);
  ck_assert_double_eq(num(j, "usage"), 0.64);
  cJSON_Delete(j);
  expect_fail(p, "gave code 8", "outside the codebook 0 .. 7", "eval dvae --data shapes:test --count 4 --codes 8");
  rt_program_free(p);
}
END_TEST

START_TEST(test_dvae_errors) {
  RtProgram *p = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  tok_mode = TOK_ONE;
  dec_mode = DEC_CONST;
  dec_value = 0;
  expect_fail(p, "eval needs a kind", "dvae", "eval");
  expect_fail(p, "unknown kind 'vae'", NULL, "eval vae --data shapes:test");
  expect_fail(p, "needs --data SPEC", NULL, "eval dvae --count 3");
  expect_fail(p, "unknown option '--bogus'", NULL, "eval dvae --data shapes:test --bogus");
  expect_fail(p, "--data shapes:test needs --count N", NULL, "eval dvae --data shapes:test");
  expect_fail(p, "--count must be at least 1", NULL, "eval dvae --data shapes:test --count 0");
  expect_fail(p, "--count needs a non-negative integer", NULL, "eval dvae --data shapes:test --count x");
  expect_fail(p, "unknown dataset 'nope'", NULL, "eval dvae --data nope --count 3");
  expect_fail(p, "/nonexistent.safetensors", NULL, "eval dvae --data shapes:test --count 3 --params /nonexistent.safetensors");
  dec_value = NAN;
  expect_fail(p, "'decode_tokens' gave NaN", NULL, "eval dvae --data shapes:test --count 3");
  tok_mode = TOK_BAD;
  expect_fail(p, "gave code 67", "0 .. 63", "eval dvae --data shapes:test --count 3");
  rt_program_free(p);
  p = fake_program("fake-gpt", gpt_entries, 2, NULL, 0);
  expect_fail(p, "eval dvae needs the entry 'tokens'", "fake-gpt", "eval dvae --data shapes:test --count 3");
  rt_program_free(p);
  /* the note on stderr without --params: the model is untrained */
  p = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  tok_mode = TOK_ONE;
  dec_value = 0;
  char *err = NULL;
  ck_assert_int_eq(tu_run_main(p, NULL, &err, "eval dvae --data shapes:test --count 3"), 0);
  ck_assert_msg(strstr(err, "an untrained model"), "%s", err);
  free(err);
  rt_program_free(p);
}
END_TEST

/* ---- eval gpt ---- */

/* text rows: ids 1 + (r + i) % 20 for the first 3 + r % 4 positions, then
 * pads VT + i; image rows: (7 r + 3 i) % K. Written as .npy files. */
static void gpt_data(int rows, char **text_path, char **image_path, int64_t *caption_targets) {
  RtErr e;
  RtTensor *t = rt_tensor_new(RT_I32, 2, (int64_t[]){rows, LT}, &e), *m = rt_tensor_new(RT_I32, 2, (int64_t[]){rows, T}, &e);
  *caption_targets = 0;
  for (int r = 0; r < rows; r++) {
    int len = 3 + r % 4;
    for (int i = 0; i < LT; i++) rt_i32(t)[r * LT + i] = i < len ? 1 + (r + i) % 20 : VT + i;
    *caption_targets += len - 1; /* targets 1 .. len-1 are caption tokens */
    for (int i = 0; i < T; i++) rt_i32(m)[r * T + i] = (7 * r + 3 * i) % K;
  }
  *text_path = tu_path("text.npy");
  *image_path = tu_path("image.npy");
  ck_assert_int_eq(rt_npy_write(*text_path, t, &e), 0);
  ck_assert_int_eq(rt_npy_write(*image_path, m, &e), 0);
  rt_tensor_free(t);
  rt_tensor_free(m);
}

START_TEST(test_gpt_uniform) {
  RtProgram *p = fake_program("fake-gpt", gpt_entries, 3, NULL, 0);
  logits_mode = LOGITS_ZERO;
  char *tp, *mp;
  int64_t captions;
  gpt_data(10, &tp, &mp, &captions);
  cJSON *j = eval_json(p, "eval gpt --data npy:text=%s,image=%s --count 10", tp, mp);
  ck_assert_double_eq_tol(num(j, "image_ce"), log(K), 1e-9);
  ck_assert_double_eq_tol(num(j, "image_ce_joint"), log(V), 1e-9);
  ck_assert_double_eq_tol(num(j, "text_ce"), log(V), 1e-9);
  ck_assert_double_eq_tol(num(j, "caption_ce"), log(V), 1e-9);
  ck_assert_int_eq((int)num(j, "count"), 10);
  ck_assert_int_eq((int)num(j, "codes"), K);
  ck_assert_int_eq((int)num(j, "text_vocab"), VT);
  ck_assert_int_eq((int)num(j, "image_tokens"), 10 * T);
  ck_assert_int_eq((int)num(j, "text_tokens"), 10 * (LT - 1));
  ck_assert_int_eq((int)num(j, "caption_tokens"), captions);
  /* the held-out unigram entropy, from the rows themselves */
  int64_t counts[K] = {0};
  for (int r = 0; r < 10; r++)
    for (int i = 0; i < T; i++) counts[(7 * r + 3 * i) % K]++;
  ck_assert_double_eq_tol(num(j, "unigram_entropy"), rt_eval_entropy(counts, K, NULL), 1e-12);
  ck_assert_ptr_null(cJSON_GetObjectItem(j, "train_unigram_entropy"));
  cJSON_Delete(j);
  /* --train-data: one code everywhere gives entropy 0; the gain is -CE */
  RtErr e;
  RtTensor *one = rt_tensor_new(RT_I32, 2, (int64_t[]){6, T}, &e);
  for (int i = 0; i < 6 * T; i++) rt_i32(one)[i] = 9;
  char *op = tu_path("one.npy");
  ck_assert_int_eq(rt_npy_write(op, one, &e), 0);
  j = eval_json(p, "eval gpt --data npy:text=%s,image=%s --count 10 --train-data npy:image=%s --train-count 6", tp, mp,
                op);
  ck_assert_double_eq(num(j, "train_unigram_entropy"), 0.0);
  ck_assert_int_eq((int)num(j, "train_count"), 6);
  ck_assert_double_eq_tol(num(j, "image_ce_gain"), -log(K), 1e-9);
  cJSON_Delete(j);
  /* Without image_logits, K from the parameter image_emb.weight */
  RtProgram *q = fake_program("fake-gpt2", gpt_entries, 1, "gpt.image_emb.weight", K);
  j = eval_json(q, "eval gpt --data npy:text=%s,image=%s --count 10", tp, mp);
  ck_assert_int_eq((int)num(j, "codes"), K);
  cJSON_Delete(j);
  rt_program_free(q);
  q = fake_program("fake-gpt3", gpt_entries, 1, NULL, 0);
  expect_fail(q, "no 'image_logits' entry and no image_emb.weight", "--codes K",
              "eval gpt --data npy:text=%s,image=%s --count 10", tp, mp);
  expect_fail(q, "cannot hold Lt = 8 pads and K = 100 image codes", NULL,
              "eval gpt --data npy:text=%s,image=%s --count 10 --codes 100", tp, mp);
  rt_program_free(q);
  /* errors */
  expect_fail(p, "eval gpt needs --data", NULL, "eval gpt --count 3");
  expect_fail(p, "needs --count N", NULL, "eval gpt --data npy:text=%s,image=%s", tp, mp);
  expect_fail(p, "must fill both inputs of 'logits'", NULL, "eval gpt --data npy:image=%s --count 3", mp);
  expect_fail(p, "--train-count goes with --train-data", NULL, "eval gpt --data npy:image=%s --train-count 3", mp);
  expect_fail(p, "image token 9 is outside the image vocabulary 0 .. 8", NULL,
              "eval gpt --data npy:text=%s,image=%s --count 10 --codes 9", tp, mp);
  expect_fail(p, "text id 35 is outside the text vocabulary and pads 0 .. 8", NULL,
              "eval gpt --data npy:text=%s,image=%s --count 10 --codes 95", tp, mp);
  rt_tensor_free(one);
  free(op);
  free(tp);
  free(mp);
  rt_program_free(p);
}
END_TEST

START_TEST(test_gpt_cheat) {
  RtProgram *p = fake_program("fake-gpt", gpt_entries, 3, NULL, 0);
  logits_mode = LOGITS_CHEAT;
  char *tp, *mp;
  int64_t captions;
  gpt_data(7, &tp, &mp, &captions);
  cJSON *j = eval_json(p, "eval gpt --data npy:text=%s,image=%s --count 7", tp, mp);
  ck_assert_double_eq_tol(num(j, "image_ce"), log(exp(5.0) + K - 1) - 5, 1e-6);
  ck_assert_double_eq_tol(num(j, "image_ce_joint"), log(exp(5.0) + V - 1) - 5, 1e-6);
  ck_assert_double_eq_tol(num(j, "text_ce"), log(exp(5.0) + V - 1) - 5, 1e-6);
  ck_assert_int_eq((int)num(j, "count"), 7);
  cJSON_Delete(j);
  free(tp);
  free(mp);
  rt_program_free(p);
}
END_TEST

/* A tokenizer for shapes' captions (vocabulary 64 > VT is fine: only ids
 * matter to the fake), written once. */
static const char *tokenizer(void) {
  static char *path;
  if (path) return path;
  const char *texts[] = {"a small red circle at the top left", "a large blue square on the right",
                         "a green triangle above a yellow circle", "a purple square below a red triangle",
                         "in the center at the bottom to the left of right"};
  RtErr e;
  RtBpe *b = rt_bpe_train(texts, 5, VT, &e);
  ck_assert_msg(b != NULL, "%s", e.msg);
  path = tu_path("tok.json");
  ck_assert_int_eq(rt_bpe_save(b, path, &e), 0);
  rt_bpe_free(b);
  return path;
}

START_TEST(test_gpt_images_and_cache) {
  RtProgram *p = fake_program("fake-dalle", gpt_entries, 3, NULL, 0);
  logits_mode = LOGITS_CHEAT;
  tok_mode = TOK_BLOCKS;
  /* images through "tokens", captions through the tokenizer */
  cJSON *j = eval_json(p, "eval gpt --data shapes:test --count 6 --tokenizer %s --train-data shapes --train-count 5",
                       tokenizer());
  ck_assert_double_eq_tol(num(j, "image_ce"), log(exp(5.0) + K - 1) - 5, 1e-6);
  ck_assert_int_eq((int)num(j, "count"), 6);
  ck_assert_int_eq((int)num(j, "train_count"), 5);
  ck_assert_double_gt(num(j, "caption_tokens"), 0);
  cJSON_Delete(j);
  expect_fail(p, "images need --tokenizer TOK.json", NULL, "eval gpt --data shapes:test --count 6");
  /* the same examples from a token cache (the rows tokenize would write) */
  RtErr e;
  RtEntrySpec en = {.name = "e", .ninput = 2, .input = (RtArgSpec[]){img_in[0], gpt_in[0]}};
  RtDataset *d = rt_data_open("shapes:test", &en, 0, &e);
  ck_assert_int_eq(rt_data_set_tokenizer(d, tokenizer(), &e), 0);
  RtTensor *in[2] = {rt_tensor_new(RT_F32, 4, img_in[0].dim, &e), rt_tensor_new(RT_I32, 2, gpt_in[0].dim, &e)};
  RtTensor *text = rt_tensor_new(RT_I32, 2, (int64_t[]){8, LT}, &e), *image = rt_tensor_new(RT_I32, 2, (int64_t[]){8, T}, &e);
  for (int base = 0; base < 8; base += B) {
    uint64_t k[B] = {(uint64_t)base, (uint64_t)base + 1, (uint64_t)base + 2, (uint64_t)base + 3};
    ck_assert_int_eq(rt_data_fill_examples(d, k, in, &e), 0);
    memcpy(rt_i32(text) + base * LT, in[1]->data, sizeof(int32_t) * B * LT);
    fake_tokens(rt_f32(in[0]), rt_i32(image) + base * T);
  }
  RtTextEncoder *enc = rt_text_encoder_new(tokenizer(), LT, &e);
  RtTokenCacheInfo info = {.data = "shapes:test", .size = 0, .seed = 0, .text = enc, .model = "fake-dalle",
                           .config = "tiny", .fn = "tokens", .params = "", .init = ""};
  char *cache = tu_path("cache.safetensors");
  ck_assert_msg(rt_token_cache_write(cache, text, image, &info, &e) == 0, "%s", e.msg);
  cJSON *c = eval_json(p, "eval gpt --data tokens:%s --tokenizer %s", cache, tokenizer());
  ck_assert_int_eq((int)num(c, "count"), 8); /* the cache's rows */
  ck_assert_double_eq_tol(num(c, "image_ce"), log(exp(5.0) + K - 1) - 5, 1e-6);
  cJSON_Delete(c);
  /* the first 6 of the cache and of the images: the same unigram entropy and text CE */
  j = eval_json(p, "eval gpt --data shapes:test --count 6 --tokenizer %s", tokenizer());
  c = eval_json(p, "eval gpt --data tokens:%s --count 6 --train-data tokens:%s", cache, cache);
  ck_assert_double_eq_tol(num(c, "unigram_entropy"), num(j, "unigram_entropy"), 1e-12);
  ck_assert_double_eq_tol(num(c, "text_ce"), num(j, "text_ce"), 1e-12);
  ck_assert_int_eq((int)num(c, "train_count"), 8);
  cJSON_Delete(c);
  cJSON_Delete(j);
  expect_fail(p, "--count 9: dataset 'tokens:", "has 8 examples", "eval gpt --data tokens:%s --count 9", cache);
  expect_fail(p, "seed", NULL, "eval gpt --data tokens:%s --seed 3", cache);
  rt_text_encoder_free(enc);
  for (int i = 0; i < 2; i++) rt_tensor_free(in[i]);
  rt_tensor_free(text);
  rt_tensor_free(image);
  rt_data_free(d);
  free(cache);
  rt_program_free(p);
}
END_TEST

/* ---- eval classify ---- */

/* A fake Fashion-MNIST test split of n images: image k all of grey 9 k,
 * label k mod 10, in DAL_FASHION_MNIST. */
static void fake_fashion_test(int n) {
  char *dir = tu_path("fashion");
  ck_assert_int_eq(tu_sh("mkdir -p '%s'", dir), 0);
  char path[1024];
  unsigned char head[16];
  uint32_t words[4] = {0x803, (uint32_t)n, 28, 28};
  for (int i = 0; i < 16; i++) head[i] = (unsigned char)(words[i / 4] >> (24 - 8 * (i % 4)));
  snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
  gzFile z = gzopen(path, "wb");
  gzwrite(z, head, 16);
  unsigned char img[28 * 28];
  for (int k = 0; k < n; k++) {
    memset(img, 9 * k, sizeof img);
    gzwrite(z, img, sizeof img);
  }
  gzclose(z);
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
  z = gzopen(path, "wb");
  uint32_t lw[2] = {0x801, (uint32_t)n};
  for (int i = 0; i < 8; i++) head[i] = (unsigned char)(lw[i / 4] >> (24 - 8 * (i % 4)));
  gzwrite(z, head, 8);
  for (int k = 0; k < n; k++) {
    unsigned char l = (unsigned char)(k % 10);
    gzwrite(z, &l, 1);
  }
  gzclose(z);
  setenv("DAL_FASHION_MNIST", dir, 1);
  free(dir);
}

START_TEST(test_classify) {
  RtProgram *p = fake_program("fake-classifier", cls_entries, 2, NULL, 0);
  fake_fashion_test(23);
  pred_mode = PRED_EXACT;
  cJSON *j = eval_json(p, "eval classify --data fashion-mnist:test");
  ck_assert_int_eq((int)num(j, "count"), 23); /* every stored example */
  ck_assert_double_eq(num(j, "accuracy"), 1.0);
  cJSON_Delete(j);
  pred_mode = PRED_ZERO; /* labels 0, 0, 0 among 23: 3 right */
  j = eval_json(p, "eval classify --data fashion-mnist:test");
  ck_assert_int_eq((int)num(j, "correct"), 3);
  ck_assert_double_eq_tol(num(j, "accuracy"), 3.0 / 23, 1e-12);
  cJSON *per = cJSON_GetObjectItem(j, "per_class_accuracy"), *cnt = cJSON_GetObjectItem(j, "per_class_count");
  ck_assert_int_eq(cJSON_GetArraySize(per), 10);
  ck_assert_double_eq(cJSON_GetArrayItem(per, 0)->valuedouble, 1.0);
  ck_assert_double_eq(cJSON_GetArrayItem(per, 4)->valuedouble, 0.0);
  ck_assert_int_eq((int)cJSON_GetArrayItem(cnt, 2)->valuedouble, 3); /* 2, 12, 22 */
  ck_assert_int_eq((int)cJSON_GetArrayItem(cnt, 9)->valuedouble, 2);
  cJSON_Delete(j);
  j = eval_json(p, "eval classify --data fashion-mnist:test --count 5");
  ck_assert_int_eq((int)num(j, "count"), 5);
  ck_assert_double_eq_tol(num(j, "accuracy"), 0.2, 1e-12);
  ck_assert(cJSON_IsNumber(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "per_class_accuracy"), 4)));
  ck_assert(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "per_class_accuracy"), 5))); /* no image of 5 */
  cJSON_Delete(j);

  /* .npy images: 6 images of classes 0 0 0 3 3 3, labels as text with --repeat */
  RtErr e;
  RtTensor *im = rt_tensor_new(RT_F32, 4, (int64_t[]){6, 3, S, S}, &e);
  for (int r = 0; r < 6; r++)
    for (int i = 0; i < 3 * S * S; i++) rt_f32(im)[r * 3 * S * S + i] = (float)(9.0 * (r < 3 ? 0 : 3) / 127.5 - 1.0);
  char *ip = tu_path("images.npy"), *lt = tu_path("labels.txt"), *ln = tu_path("labels.npy");
  ck_assert_int_eq(rt_npy_write(ip, im, &e), 0);
  tu_write_file(lt, "a t-shirt\n3\n");
  pred_mode = PRED_EXACT;
  j = eval_json(p, "eval classify --images %s --labels %s --repeat 3", ip, lt);
  ck_assert_int_eq((int)num(j, "count"), 6);
  ck_assert_double_eq(num(j, "accuracy"), 1.0);
  cJSON_Delete(j);
  tu_write_file(lt, "a t-shirt\n\nan ankle boot\n"); /* 0 0 0 9 9 9: the first three right */
  j = eval_json(p, "eval classify --images %s --labels %s --repeat 3", ip, lt);
  ck_assert_int_eq((int)num(j, "correct"), 3);
  cJSON_Delete(j);
  RtTensor *lab = rt_tensor_new(RT_I32, 1, (int64_t[]){6}, &e);
  int32_t want[6] = {0, 1, 0, 3, 3, 2};
  memcpy(lab->data, want, sizeof want);
  ck_assert_int_eq(rt_npy_write(ln, lab, &e), 0);
  j = eval_json(p, "eval classify --images %s --labels %s", ip, ln);
  ck_assert_int_eq((int)num(j, "correct"), 4);
  cJSON_Delete(j);
  /* the table */
  char *out = NULL;
  ck_assert_int_eq(tu_run_main(p, &out, NULL, "eval classify --images %s --labels %s", ip, ln), 0);
  ck_assert_msg(strstr(out, "accuracy") && strstr(out, "0.6667") && strstr(out, "class 3 (a dress)"), "%s", out);
  free(out);

  /* errors */
  expect_fail(p, "needs the images: --data SPEC or --images", NULL, "eval classify");
  expect_fail(p, "needs the images", NULL, "eval classify --data fashion-mnist:test --images %s", ip);
  expect_fail(p, "--images", "needs --labels FILE", "eval classify --images %s", ip);
  expect_fail(p, "2 labels for 6 images", NULL, "eval classify --images %s --labels %s", ip, lt);
  tu_write_file(lt, "0\n0\n0\n0\n0\n0\n0\n");
  expect_fail(p, "7 labels for 6 images (use --count N", NULL, "eval classify --images %s --labels %s", ip, lt);
  j = eval_json(p, "eval classify --images %s --labels %s --count 4", ip, lt); /* the first 4 of 6: 3 right */
  ck_assert_int_eq((int)num(j, "correct"), 3);
  cJSON_Delete(j);
  tu_write_file(lt, "a dress\na hat\n");
  expect_fail(p, "labels.txt:2: 'a hat' is neither a class number nor a Fashion-MNIST caption", NULL,
              "eval classify --images %s --labels %s --repeat 3", ip, lt);
  tu_write_file(lt, "12\n");
  expect_fail(p, "label 12 is not a class 0 .. 9", NULL, "eval classify --images %s --labels %s --repeat 6", ip, lt);
  expect_fail(p, "--repeat goes with a text file", NULL, "eval classify --images %s --labels %s --repeat 3", ip, ln);
  expect_fail(p, "/nonexistent.txt: cannot open", NULL, "eval classify --images %s --labels /nonexistent.txt", ip);
  expect_fail(p, "labels.npy: images must be f32[N, 3, 16, 16]", "i32[6]", "eval classify --images %s --labels %s", ln, ln);
  expect_fail(p, "--count 7", "has 6 images", "eval classify --images %s --labels %s --count 7", ip, ln);
  expect_fail(p, "no captions to take labels from", NULL, "eval classify --data npy:x=%s --count 6", ip);
  expect_fail(p, "is not a Fashion-MNIST class caption", NULL, "eval classify --data shapes:test --count 4");
  RtProgram *q = fake_program("fake-dvae", dvae_entries, 3, NULL, 0);
  expect_fail(q, "eval classify needs the entry 'predict'", NULL, "eval classify --data fashion-mnist:test");
  /* a judge on reconstructions: eval dvae writes them with their captions, eval classify reads both */
  char *rp = tu_path("recon.npy"), *cp = tu_path("captions.txt");
  dec_mode = DEC_EXACT;
  tok_mode = TOK_ONE;
  ck_assert_int_eq(tu_run_main(q, NULL, NULL, "eval dvae --data fashion-mnist:test --out-recon %s --out-captions %s", rp, cp), 0);
  j = eval_json(p, "eval classify --images %s --labels %s", rp, cp);
  ck_assert_int_eq((int)num(j, "count"), 23);
  ck_assert_double_eq(num(j, "accuracy"), 1.0);
  cJSON_Delete(j);
  free(rp);
  free(cp);
  rt_program_free(q);
  rt_tensor_free(im);
  rt_tensor_free(lab);
  free(ip);
  free(lt);
  free(ln);
  rt_program_free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("eval");
  TCase *tc = tcase_create("eval");
  tcase_add_test(tc, test_metrics);
  tcase_add_test(tc, test_dvae_perfect);
  tcase_add_test(tc, test_dvae_one_code);
  tcase_add_test(tc, test_dvae_uniform);
  tcase_add_test(tc, test_dvae_errors);
  tcase_add_test(tc, test_gpt_uniform);
  tcase_add_test(tc, test_gpt_cheat);
  tcase_add_test(tc, test_gpt_images_and_cache);
  tcase_add_test(tc, test_classify);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
