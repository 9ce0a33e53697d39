/* exe_eval_gpt.c — `eval gpt`: the held-out cross-entropy of a GPT over
 * [caption; image tokens], beside the unigram entropy of the training
 * image tokens.
 *
 *   eval gpt --data SPEC [--tokenizer TOK.json] [--count N] [--codes K]
 *            [--train-data SPEC [--train-count N]] [--params P] [--init PREFIX=FILE]...
 *            [--init-partial] [--seed S] [--json]
 *
 * Runs the entry "logits" (text i32 [B, Lt], image i32 [B, T] -> f32
 * [B, N, V], N = Lt + T - 1, V = Vt + Lt + K: MODELS.md section 2's
 * joint vocabulary, position i predicting token i + 1 of [text; image +
 * Vt + Lt]). K: --codes, else the last dimension of the "image_logits"
 * entry, else the rows of the parameter image_emb.weight (or
 * *.image_emb.weight).
 *
 * Where the (text, image) pairs come from:
 *   tokens:CACHE or npy:text=T.npy,image=M.npy   the dataset fills both
 *           inputs of "logits" (a cache made by `tokenize`; --tokenizer,
 *           if given, is checked against the cache's);
 *   any dataset of captioned images (shapes:test, fashion-mnist:test,
 *           folder:PATH)   the captions are encoded with --tokenizer
 *           (required) and the images become tokens through the
 *           program's "tokens" entry (a whole DALL-E, models/dalle.dal).
 * --train-data names the training split the same way (the text is not
 * needed there: a cache's image tokens, or "tokens" on the images).
 *
 * Reported, in nats per token, averaged over every evaluated target:
 *   image_ce        image token j under the softmax of the K image logits
 *                   of its position (what sampling draws from)
 *   image_ce_joint  the same under the softmax over all V (as the loss)
 *   text_ce         the Lt - 1 text targets, pads included (as the loss)
 *   caption_ce      the text targets that are caption tokens (id < Vt)
 *   unigram_entropy the entropy of the evaluated image tokens' histogram
 *   train_unigram_entropy  that of the training image tokens (--train-data):
 *                   the cross-entropy a context-free prior reaches there,
 *                   which image_ce must beat
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/exe/exe_eval.h"

typedef struct {
  RtEvalCommon c;
  const char *data, *tokenizer, *train_data;
  uint64_t count, train_count, codes;
} GptArgs;

static int parse(int argc, char **argv, GptArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  const RtExeOpt opts[] = {{"--data", .str = &a->data},
                           {"--tokenizer", .str = &a->tokenizer},
                           {"--train-data", .str = &a->train_data},
                           {"--count", .num = &a->count, .lo = 1, .hi = UINT64_MAX},
                           {"--train-count", .num = &a->train_count, .lo = 1, .hi = UINT64_MAX},
                           {"--codes", .num = &a->codes, .lo = 1, .hi = 1u << 24}};
  if (rt_eval_parse(argc, argv, &a->c, opts, (int)(sizeof opts / sizeof *opts), "eval gpt",
                    "--data SPEC --tokenizer TOK.json --count N --codes K --train-data SPEC --train-count N", e))
    return -1;
  if (!a->data)
    return rt_err(e, "eval gpt needs --data SPEC (held-out data: tokens:CACHE, or captioned images with --tokenizer)");
  if (a->train_count && !a->train_data) return rt_err(e, "--train-count goes with --train-data");
  return 0;
}

/* The shapes of "logits" and what they say. */
typedef struct {
  int logits, tokens;   /* entries (tokens: -1 until images need it) */
  int text_in, image_in;
  int64_t B, Lt, T, N, V, K, Vt;
} Shape;

static int param_rows(const RtProgram *p, const char *suffix) {
  size_t want = strlen(suffix);
  for (int i = 0; i < p->nparam; i++) {
    const char *n = p->state->name[i];
    size_t len = strlen(n);
    const RtTensor *t = p->state->tensor[i];
    if (t->rank == 2 && len >= want && strcmp(n + len - want, suffix) == 0 && (len == want || n[len - want - 1] == '.'))
      return (int)t->dim[0];
  }
  return -1;
}

static int read_shape(const RtProgram *p, const GptArgs *a, Shape *s, RtErr *e) {
  memset(s, 0, sizeof *s);
  s->tokens = -1;
  if ((s->logits = rt_eval_entry(p, "logits", "eval gpt", e)) < 0) return -1;
  const RtEntrySpec *en = &p->entry[s->logits];
  s->text_in = rt_entry_input(en, "text");
  s->image_in = rt_entry_input(en, "image");
  const RtArgSpec *t = s->text_in >= 0 ? &en->input[s->text_in] : NULL;
  const RtArgSpec *m = s->image_in >= 0 ? &en->input[s->image_in] : NULL;
  const RtArgSpec *o = en->noutput >= 1 ? &en->output[0] : NULL;
  if (en->ninput != 2 || !t || !m || !o || t->dtype != RT_I32 || t->rank != 2 || m->dtype != RT_I32 || m->rank != 2 ||
      o->dtype != RT_F32 || o->rank != 3 || m->dim[0] != t->dim[0] || o->dim[0] != t->dim[0] ||
      o->dim[1] != t->dim[1] + m->dim[1] - 1)
    return rt_err(e, "eval gpt: entry 'logits' of %s must be logits(text: i32[B, Lt], image: i32[B, T]) -> "
                     "f32[B, Lt + T - 1, V] (MODELS.md section 2)", p->model);
  s->B = t->dim[0];
  s->Lt = t->dim[1];
  s->T = m->dim[1];
  s->N = o->dim[1];
  s->V = o->dim[2];
  int il = rt_program_entry(p, "image_logits");
  if (a->codes) s->K = (int64_t)a->codes;
  else if (il >= 0 && p->entry[il].noutput >= 1 && p->entry[il].output[0].rank == 3) s->K = p->entry[il].output[0].dim[2];
  else s->K = param_rows(p, "image_emb.weight");
  if (s->K <= 0)
    return rt_err(e, "eval gpt: %s has no 'image_logits' entry and no image_emb.weight parameter to take the image "
                     "vocabulary K from: give --codes K", p->model);
  s->Vt = s->V - s->Lt - s->K;
  if (s->Vt < 1)
    return rt_err(e, "eval gpt: logits of width V = %lld cannot hold Lt = %lld pads and K = %lld image codes",
                  (long long)s->V, (long long)s->Lt, (long long)s->K);
  return 0;
}

/* (text, image) batches from a dataset: the cache's or npy's own rows, or
 * captioned images through "tokens". */
typedef struct {
  RtEvalStream st;
  RtEntrySpec en;          /* what the dataset fills */
  RtArgSpec spec[2];       /* en's inputs when made here */
  RtTensor **in;
  RtTensor *text, *image;  /* logits' inputs: in[] or our own */
  bool images;             /* through "tokens" */
} Source;

static bool fills_tokens_itself(const char *spec) {
  return strncmp(spec, "tokens:", 7) == 0 || strncmp(spec, "npy:", 4) == 0;
}

/* need_text: the text ids matter (held-out data, not training counts). */
static int source_open(Source *src, RtProgram *p, Shape *s, const char *spec, uint64_t count, const char *count_flag,
                       const char *tokenizer, bool need_text, uint64_t seed, RtErr *e) {
  memset(src, 0, sizeof *src);
  const RtEntrySpec *lg = &p->entry[s->logits];
  if (fills_tokens_itself(spec)) {
    src->en = *lg;
    if (rt_eval_stream_open(&src->st, spec, &src->en, seed, count, count_flag, e)) return -1;
    if (!rt_data_fills(src->st.d, s->image_in) || (need_text && !rt_data_fills(src->st.d, s->text_in))) {
      rt_eval_stream_close(&src->st);
      return rt_err(e, "--data %s must fill both inputs of 'logits', 'text' and 'image' (npy:text=T.npy,image=M.npy)",
                    spec);
    }
    if (tokenizer && strncmp(spec, "tokens:", 7) == 0 && rt_data_set_tokenizer(src->st.d, tokenizer, e)) return -1;
    if (!(src->in = rt_eval_inputs_new(&src->en, e))) return -1;
    src->text = src->in[s->text_in];
    src->image = src->in[s->image_in];
    return 0;
  }
  /* Images: "tokens" makes the image tokens; the captions, the text. */
  if (s->tokens < 0 && (s->tokens = rt_eval_entry(p, "tokens", "eval gpt on images (not a token cache)", e)) < 0)
    return -1;
  const RtEntrySpec *tk = &p->entry[s->tokens];
  const RtArgSpec *o = tk->noutput >= 1 ? &tk->output[0] : NULL;
  int64_t per = 1;
  for (int k = 1; o && k < o->rank; k++) per *= o->dim[k];
  if (tk->ninput != 1 || tk->input[0].dtype != RT_F32 || tk->input[0].rank != 4 || !o || o->dtype != RT_I32 ||
      o->dim[0] != s->B || per != s->T)
    return rt_err(e, "eval gpt: entry 'tokens' of %s must turn images f32[B, 3, S, S] into i32[B, g, g] tokens with the "
                     "B = %lld and g*g = %lld of 'logits'", p->model, (long long)s->B, (long long)s->T);
  if (need_text && !tokenizer)
    return rt_err(e, "eval gpt --data %s: images need --tokenizer TOK.json for their captions (or give a token cache: "
                     "--data tokens:FILE)", spec);
  src->images = true;
  src->spec[0] = tk->input[0];
  src->spec[1] = lg->input[s->text_in];
  src->en = (RtEntrySpec){.name = "eval", .ninput = need_text ? 2 : 1, .input = src->spec};
  if (rt_eval_stream_open(&src->st, spec, &src->en, seed, count, count_flag, e)) return -1;
  if (need_text && rt_data_set_tokenizer(src->st.d, tokenizer, e)) return -1;
  if (!(src->in = rt_eval_inputs_new(&src->en, e))) return -1;
  src->text = need_text ? src->in[1] : NULL;
  src->image = rt_tensor_new(RT_I32, 2, (int64_t[]){s->B, s->T}, e);
  return src->image ? 0 : -1;
}

static void source_close(Source *src) {
  if (src->images) rt_tensor_free(src->image);
  rt_eval_inputs_free(&src->en, src->in);
  rt_eval_stream_close(&src->st);
}

/* The next batch into src->text and src->image: rows that count, 0 at the
 * end, -1 on error. */
static int64_t source_next(Source *src, RtProgram *p, const Shape *s, uint64_t seed, RtErr *e) {
  int64_t rows = rt_eval_stream_next(&src->st, src->in, e);
  if (rows <= 0 || !src->images) return rows;
  RtTensor **out = NULL;
  if (rt_eval_run(p, s->tokens, src->in, &out, seed, e)) return -1;
  memcpy(src->image->data, out[0]->data, rt_tensor_bytes(src->image));
  rt_eval_outputs_free(p, s->tokens, out);
  return rows;
}

static int check_codes(const int32_t *m, int64_t n, int64_t K, RtErr *e) {
  for (int64_t i = 0; i < n; i++)
    if (m[i] < 0 || m[i] >= K)
      return rt_err(e, "eval gpt: image token %d is outside the image vocabulary 0 .. %lld", m[i], (long long)K - 1);
  return 0;
}

typedef struct {
  double image, image_joint, text, caption;
  int64_t n_image, n_text, n_caption, examples;
  int64_t *counts, *train_counts; /* (K) */
  int64_t train_examples;
} Acc;

/* Row b of a logits batch [B, N, V] against its text and image. */
static int score_row(Acc *acc, const Shape *s, const float *lg, const int32_t *text, const int32_t *image, RtErr *e) {
  int64_t off = s->Vt + s->Lt;
  for (int64_t i = 0; i + 1 < s->Lt; i++) {
    int32_t t = text[i + 1];
    if (t < 0 || t >= off)
      return rt_err(e, "eval gpt: text id %d is outside the text vocabulary and pads 0 .. %lld", t, (long long)off - 1);
    double ce = rt_eval_ce(lg + i * s->V, 0, s->V, t);
    acc->text += ce;
    acc->n_text++;
    if (t < s->Vt) {
      acc->caption += ce;
      acc->n_caption++;
    }
  }
  for (int64_t j = 0; j < s->T; j++) {
    const float *row = lg + (s->Lt - 1 + j) * s->V;
    double lse_img = rt_eval_lse(row, off, s->V), lse_all = rt_eval_lse2(rt_eval_lse(row, 0, off), lse_img);
    double x = row[off + image[j]];
    acc->image += lse_img - x;
    acc->image_joint += lse_all - x;
    acc->counts[image[j]]++;
  }
  acc->n_image += s->T;
  return 0;
}

static int heldout(RtProgram *p, const GptArgs *a, Shape *s, Acc *acc, RtErr *e) {
  Source src;
  if (source_open(&src, p, s, a->data, a->count, "--count", a->tokenizer, true, a->c.seed, e)) {
    source_close(&src);
    return -1;
  }
  RtTensor *lin[2] = {NULL, NULL}, **out = NULL;
  lin[s->text_in] = src.text;
  lin[s->image_in] = src.image;
  int rc = -1;
  if (rt_program_prepare(p, s->logits, e) || (s->tokens >= 0 && rt_program_prepare(p, s->tokens, e))) goto done;
  for (int64_t rows; (rows = source_next(&src, p, s, a->c.seed, e)) != 0;) {
    if (rows < 0 || check_codes(rt_i32(src.image), rows * s->T, s->K, e)) goto done;
    if (rt_eval_run(p, s->logits, lin, &out, a->c.seed, e)) goto done;
    for (int64_t b = 0; b < rows; b++)
      if (score_row(acc, s, rt_f32(out[0]) + b * s->N * s->V, rt_i32(src.text) + b * s->Lt,
                    rt_i32(src.image) + b * s->T, e))
        goto done;
    acc->examples += rows;
    rt_eval_outputs_free(p, s->logits, out);
    out = NULL;
  }
  rc = 0;
done:
  rt_eval_outputs_free(p, s->logits, out);
  source_close(&src);
  return rc;
}

static int training_counts(RtProgram *p, const GptArgs *a, Shape *s, Acc *acc, RtErr *e) {
  Source src;
  int rc = -1;
  if (source_open(&src, p, s, a->train_data, a->train_count, "--train-count", NULL, false, a->c.seed, e)) goto done;
  if (s->tokens >= 0 && rt_program_prepare(p, s->tokens, e)) goto done;
  for (int64_t rows; (rows = source_next(&src, p, s, a->c.seed, e)) != 0;) {
    if (rows < 0 || check_codes(rt_i32(src.image), rows * s->T, s->K, e)) goto done;
    for (int64_t i = 0; i < rows * s->T; i++) acc->train_counts[rt_i32(src.image)[i]]++;
    acc->train_examples += rows;
  }
  rc = 0;
done:
  source_close(&src);
  return rc;
}

static int report(const RtProgram *p, const GptArgs *a, const Shape *s, const Acc *acc, RtErr *e) {
  char title[2048], params[1200], buf[160];
  snprintf(title, sizeof title, "eval gpt: %s (config %s), %lld examples of %s, parameters from %s", p->model,
           p->config, (long long)acc->examples, a->data, rt_eval_params_str(&a->c, params, sizeof params));
  RtEvalReport *r = rt_eval_report_new("gpt", title);
  double image = acc->image / (double)acc->n_image;
  rt_eval_report_str(r, "model", NULL, p->model);
  rt_eval_report_str(r, "config", NULL, p->config);
  rt_eval_report_str(r, "data", NULL, a->data);
  rt_eval_report_str(r, "params", NULL, params);
  rt_eval_report_int(r, "count", NULL, acc->examples);
  rt_eval_report_int(r, "codes", NULL, s->K);
  rt_eval_report_int(r, "text_vocab", NULL, s->Vt);
  rt_eval_report_num(r, "image_ce", "image-token CE (softmax over the K image logits)", image, "%.4f", "nats/token");
  rt_eval_report_num(r, "image_ce_joint", "image-token CE (softmax over all V, as the loss)",
                     acc->image_joint / (double)acc->n_image, "%.4f", "nats/token");
  rt_eval_report_num(r, "text_ce", "text-token CE (all Lt-1 targets, pads included)",
                     acc->n_text ? acc->text / (double)acc->n_text : NAN, "%.4f", "nats/token");
  rt_eval_report_num(r, "caption_ce", "text-token CE (caption tokens only)",
                     acc->n_caption ? acc->caption / (double)acc->n_caption : NAN, "%.4f", "nats/token");
  rt_eval_report_int(r, "image_tokens", NULL, acc->n_image);
  rt_eval_report_int(r, "text_tokens", NULL, acc->n_text);
  rt_eval_report_int(r, "caption_tokens", NULL, acc->n_caption);
  rt_eval_report_num(r, "unigram_entropy", "unigram entropy of these image tokens",
                     rt_eval_entropy(acc->counts, s->K, NULL), "%.4f", "nats");
  if (a->train_data) {
    double h = rt_eval_entropy(acc->train_counts, s->K, NULL);
    snprintf(buf, sizeof buf, "unigram entropy of the training image tokens (%lld examples of %s)",
             (long long)acc->train_examples, a->train_data);
    rt_eval_report_num(r, "train_unigram_entropy", buf, h, "%.4f", "nats");
    rt_eval_report_str(r, "train_data", NULL, a->train_data);
    rt_eval_report_int(r, "train_count", NULL, acc->train_examples);
    rt_eval_report_num(r, "image_ce_gain", "gain of the prior over it (entropy - image CE)", h - image, "%.4f", "nats");
  }
  snprintf(buf, sizeof buf, "K = %lld image codes, Vt = %lld text ids, Lt = %lld; uniform logits give log K = %.4f",
           (long long)s->K, (long long)s->Vt, (long long)s->Lt, log((double)s->K));
  rt_eval_report_note(r, buf);
  return rt_eval_report_print(r, a->c.json, stdout, e);
}

int rt_eval_gpt(RtProgram *p, int argc, char **argv, RtErr *e) {
  GptArgs a;
  Shape s;
  if (parse(argc, argv, &a, e) || read_shape(p, &a, &s, e)) return -1;
  Acc acc = {0};
  int rc = -1;
  acc.counts = calloc((size_t)s.K, sizeof *acc.counts);
  acc.train_counts = calloc((size_t)s.K, sizeof *acc.train_counts);
  if (!acc.counts || !acc.train_counts) {
    rt_err(e, "out of memory");
    goto done;
  }
  if (rt_eval_state(p, &a.c, e) || heldout(p, &a, &s, &acc, e)) goto done;
  if (a.train_data && training_counts(p, &a, &s, &acc, e)) goto done;
  rc = report(p, &a, &s, &acc, e);
done:
  free(acc.counts);
  free(acc.train_counts);
  return rc;
}
