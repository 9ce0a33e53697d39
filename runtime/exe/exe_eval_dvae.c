/* exe_eval_dvae.c — `eval dvae`: how well a dVAE's hard tokens rebuild
 * held-out images, and how much of its codebook it uses.
 *
 *   eval dvae --data SPEC [--count N] [--codes K] [--out-recon RECON.npy]
 *             [--out-captions CAPTIONS.txt] [--params P] [--init PREFIX=FILE]...
 *             [--init-partial] [--seed S] [--json]
 *
 * Runs the entries "tokens" (images f32 [B, 3, S, S] -> i32 [B, g, g] or
 * [B, g*g], the argmax codes, no noise) and "decode_tokens" (those codes
 * -> f32 [B, 3, S, S]) over the examples (exe_eval.h) and reports, with
 * pixels mapped from [-1, 1] to [0, 1] and the reconstruction clamped to
 * that range (as a PNG shows it):
 *   mse            mean over examples, channels and pixels of (recon - x)^2
 *   psnr_db        10 log10(1 / mse) (JSON null when mse is 0: infinite)
 *   baseline_mse   the same for predicting every image by the per-pixel
 *                  mean image of the evaluated images (their variance),
 *                  and baseline_psnr_db
 *   codes          K: --codes, else the width of the "encode" entry's
 *                  logits [B, K, g, g], else the rows of the parameter
 *                  codebook.weight (or *.codebook.weight) [K, D]
 *   codes_used, usage = codes_used / K
 *   perplexity     exp of the entropy of the codes' histogram over every
 *                  position of every evaluated image (1: one code; K:
 *                  every code equally often), and entropy (nats)
 * --out-recon writes the reconstructions, clamped, f32 [N, 3, S, S] in
 * [-1, 1] in the examples' order, and --out-captions their captions, one
 * a line: what `eval classify --images RECON.npy --labels CAPTIONS.txt`
 * reads (a judge's accuracy on reconstructions).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/exe/exe_eval.h"
#include "runtime/io/fileio.h"
#include "runtime/io/npy.h"

typedef struct {
  RtEvalCommon c;
  const char *data, *out_recon, *out_captions;
  uint64_t count, codes;
} DvaeArgs;

static int parse(int argc, char **argv, DvaeArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  const RtExeOpt opts[] = {{"--data", .str = &a->data},
                           {"--out-recon", .str = &a->out_recon},
                           {"--out-captions", .str = &a->out_captions},
                           {"--count", .num = &a->count, .lo = 1, .hi = UINT64_MAX},
                           {"--codes", .num = &a->codes, .lo = 1, .hi = 1u << 24}};
  if (rt_eval_parse(argc, argv, &a->c, opts, (int)(sizeof opts / sizeof *opts), "eval dvae",
                    "--data SPEC --count N --codes K --out-recon F.npy --out-captions F.txt", e))
    return -1;
  if (!a->data) return rt_err(e, "eval dvae needs --data SPEC (held-out images: shapes:test, fashion-mnist:test, ...)");
  return 0;
}

static bool is_images(const RtArgSpec *x) {
  return x->dtype == RT_F32 && x->rank == 4 && x->dim[1] == 3 && x->dim[2] == x->dim[3];
}

static int64_t row_numel(const RtArgSpec *a) {
  int64_t n = 1;
  for (int k = 1; k < a->rank; k++) n *= a->dim[k];
  return n;
}

/* tokens: images -> i32 codes; decode_tokens: those codes -> the same images. */
static int check_entries(const RtProgram *p, int tok, int dec, RtErr *e) {
  const RtEntrySpec *t = &p->entry[tok], *d = &p->entry[dec];
  const RtArgSpec *x = t->ninput == 1 ? &t->input[0] : NULL, *codes = t->noutput >= 1 ? &t->output[0] : NULL;
  if (!x || !codes || !is_images(x) || codes->dtype != RT_I32 || codes->rank < 2 || codes->dim[0] != x->dim[0])
    return rt_err(e, "eval dvae: entry 'tokens' of %s must take images f32[B, 3, S, S] and return their codes "
                     "i32[B, g, g]", p->model);
  const RtArgSpec *din = d->ninput == 1 ? &d->input[0] : NULL, *dout = d->noutput >= 1 ? &d->output[0] : NULL;
  bool ok = din && dout && din->dtype == RT_I32 && din->dim[0] == codes->dim[0] && row_numel(din) == row_numel(codes) &&
            dout->rank == 4;
  for (int k = 0; ok && k < 4; k++) ok = dout->dim[k] == x->dim[k];
  if (!ok || dout->dtype != RT_F32)
    return rt_err(e, "eval dvae: entry 'decode_tokens' of %s must take the codes 'tokens' returns and give back "
                     "images of the shape 'tokens' takes", p->model);
  return 0;
}

/* K as the file comment says; -1 with a message if nothing tells. */
static int64_t codebook_size(const RtProgram *p, const DvaeArgs *a, RtErr *e) {
  if (a->codes) return (int64_t)a->codes;
  int enc = rt_program_entry(p, "encode");
  if (enc >= 0 && !p->entry[enc].train && p->entry[enc].noutput >= 1 && p->entry[enc].output[0].rank == 4)
    return p->entry[enc].output[0].dim[1];
  for (int i = 0; i < p->nparam; i++) {
    const char *n = p->state->name[i];
    size_t len = strlen(n), want = strlen("codebook.weight");
    const RtTensor *t = p->state->tensor[i];
    if (t->rank == 2 && len >= want && strcmp(n + len - want, "codebook.weight") == 0 &&
        (len == want || n[len - want - 1] == '.'))
      return t->dim[0];
  }
  return rt_err(e, "eval dvae: %s has no 'encode' entry and no codebook.weight parameter to take the codebook size K "
                   "from: give --codes K", p->model);
}

typedef struct {
  int64_t K, P;        /* codes, values per image (3 S S) */
  int64_t images, positions;
  double sse;          /* sum of squared errors in [0, 1] units */
  double *sum, *sumsq; /* (P) per value of the image, in [0, 1] units */
  int64_t *counts;     /* (K) */
  float *recon;        /* (count, P) the clamped reconstructions, for --out-recon (or NULL) */
  char *captions;      /* their captions, each ending in '\n', for --out-captions (or NULL) */
  size_t captions_len, captions_cap;
} Acc;

/* The first 'rows' rows of a batch: images x, their codes, the decoded recon. */
static int accumulate(Acc *s, const float *x, const int32_t *codes, int64_t per_image, const float *recon,
                      int64_t rows, RtErr *e) {
  for (int64_t i = 0; i < rows * per_image; i++) {
    if (codes[i] < 0 || codes[i] >= s->K)
      return rt_err(e, "eval dvae: entry 'tokens' gave code %d, outside the codebook 0 .. %lld (is --codes right?)",
                    codes[i], (long long)s->K - 1);
    s->counts[codes[i]]++;
  }
  for (int64_t b = 0; b < rows; b++)
    for (int64_t k = 0; k < s->P; k++) {
      double xv = (x[b * s->P + k] + 1.0) / 2.0;
      double r = recon[b * s->P + k];
      r = r < -1 ? -1 : r > 1 ? 1 : r; /* what a PNG shows */
      if (s->recon) s->recon[(s->images + b) * s->P + k] = (float)r;
      r = (r + 1.0) / 2.0;
      if (r != r) return rt_err(e, "eval dvae: entry 'decode_tokens' gave NaN");
      s->sse += (r - xv) * (r - xv);
      s->sum[k] += xv;
      s->sumsq[k] += xv * xv;
    }
  s->images += rows;
  s->positions += rows * per_image;
  return 0;
}

/* Appends caption c and a newline to s->captions. */
static int add_caption(Acc *s, const char *c, RtErr *e) {
  size_t n = strlen(c);
  if (memchr(c, '\n', n)) return rt_err(e, "eval dvae --out-captions: caption \"%s\" holds a newline", c);
  if (s->captions_len + n + 2 > s->captions_cap) {
    size_t cap = (s->captions_len + n + 2) * 2;
    char *more = realloc(s->captions, cap);
    if (!more) return rt_err(e, "out of memory");
    s->captions = more;
    s->captions_cap = cap;
  }
  memcpy(s->captions + s->captions_len, c, n);
  s->captions_len += n;
  s->captions[s->captions_len++] = '\n';
  return 0;
}

static int write_outputs(const DvaeArgs *a, const Acc *s, const RtArgSpec *x, RtErr *e) {
  if (a->out_recon) {
    RtTensor t = {.dtype = RT_F32, .rank = 4, .dim = {s->images, 3, x->dim[2], x->dim[3]}, .data = s->recon};
    if (rt_npy_write(a->out_recon, &t, e)) return -1;
  }
  if (a->out_captions) {
    RtChunk c = {s->captions, s->captions_len};
    if (rt_write_file_atomic(a->out_captions, &c, 1, e)) return -1;
  }
  return 0;
}

static int report(const RtProgram *p, const DvaeArgs *a, const Acc *s, RtErr *e) {
  double n = (double)s->images, mse = s->sse / (n * (double)s->P), base = 0;
  for (int64_t k = 0; k < s->P; k++) {
    double m = s->sum[k] / n, v = s->sumsq[k] / n - m * m;
    base += v > 0 ? v : 0;
  }
  base /= (double)s->P;
  int64_t used = 0;
  double h = rt_eval_entropy(s->counts, s->K, &used);
  char title[2048], params[1200];
  snprintf(title, sizeof title, "eval dvae: %s (config %s), %lld examples of %s, parameters from %s", p->model,
           p->config, (long long)s->images, a->data, rt_eval_params_str(&a->c, params, sizeof params));
  RtEvalReport *r = rt_eval_report_new("dvae", title);
  rt_eval_report_str(r, "model", NULL, p->model);
  rt_eval_report_str(r, "config", NULL, p->config);
  rt_eval_report_str(r, "data", NULL, a->data);
  rt_eval_report_str(r, "params", NULL, params);
  rt_eval_report_int(r, "count", NULL, s->images);
  rt_eval_report_num(r, "mse", "reconstruction MSE (hard tokens)", mse, "%.6f", "");
  rt_eval_report_num(r, "psnr_db", "PSNR", rt_eval_psnr(mse), "%.2f", "dB");
  rt_eval_report_num(r, "baseline_mse", "mean-image baseline MSE", base, "%.6f", "");
  rt_eval_report_num(r, "baseline_psnr_db", "mean-image baseline PSNR", rt_eval_psnr(base), "%.2f", "dB");
  rt_eval_report_int(r, "codes", "codebook size K", s->K);
  rt_eval_report_int(r, "codes_used", "codes used", used);
  rt_eval_report_num(r, "usage", "codebook usage (used / K)", (double)used / (double)s->K, "%.4f", "");
  rt_eval_report_num(r, "perplexity", "codebook perplexity", exp(h), "%.2f", "");
  rt_eval_report_num(r, "entropy", "code entropy", h, "%.4f", "nats");
  rt_eval_report_int(r, "positions", NULL, s->positions);
  rt_eval_report_note(r, "pixels in [0, 1], the reconstruction clamped to it; the baseline predicts the per-pixel "
                         "mean of these images;");
  rt_eval_report_note(r, "perplexity = exp(entropy of the codes' histogram over every position of these images)");
  return rt_eval_report_print(r, a->c.json, stdout, e);
}

int rt_eval_dvae(RtProgram *p, int argc, char **argv, RtErr *e) {
  DvaeArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int tok = rt_eval_entry(p, "tokens", "eval dvae", e), dec = tok < 0 ? -1 : rt_eval_entry(p, "decode_tokens", "eval dvae", e);
  if (dec < 0 || check_entries(p, tok, dec, e)) return -1;
  const RtEntrySpec *en = &p->entry[tok];
  Acc s = {.P = row_numel(&en->input[0])};
  if ((s.K = codebook_size(p, &a, e)) < 0) return -1;
  int64_t per_image = row_numel(&en->output[0]);
  RtEvalStream st;
  if (rt_eval_stream_open(&st, a.data, en, a.c.seed, a.count, "--count", e)) return -1;
  RtTensor **in = rt_eval_inputs_new(en, e), **codes = NULL, **recon = NULL, *dec_in = NULL;
  int rc = -1;
  s.sum = calloc((size_t)s.P, sizeof *s.sum);
  s.sumsq = calloc((size_t)s.P, sizeof *s.sumsq);
  s.counts = calloc((size_t)s.K, sizeof *s.counts);
  if (a.out_recon) s.recon = malloc(sizeof *s.recon * (size_t)(st.count * s.P));
  if (!in || !s.sum || !s.sumsq || !s.counts || (a.out_recon && !s.recon)) {
    if (in) rt_err(e, "out of memory");
    goto done;
  }
  if (a.out_captions && !rt_data_has_captions(st.d)) {
    rt_err(e, "eval dvae --out-captions %s: dataset '%s' has no captions", a.out_captions, a.data);
    goto done;
  }
  const RtArgSpec *di = &p->entry[dec].input[0];
  if (!(dec_in = rt_tensor_new(RT_I32, di->rank, di->dim, e))) goto done;
  if (rt_eval_state(p, &a.c, e) || rt_program_prepare(p, tok, e) || rt_program_prepare(p, dec, e)) goto done;
  for (int64_t rows; (rows = rt_eval_stream_next(&st, in, e)) != 0;) {
    if (rows < 0 || rt_eval_run(p, tok, in, &codes, a.c.seed, e)) goto done;
    memcpy(dec_in->data, codes[0]->data, rt_tensor_bytes(dec_in));
    if (rt_eval_run(p, dec, &dec_in, &recon, a.c.seed, e)) goto done;
    if (accumulate(&s, rt_f32(in[0]), rt_i32(codes[0]), per_image, rt_f32(recon[0]), rows, e)) goto done;
    for (int64_t j = 0; a.out_captions && j < rows; j++)
      if (add_caption(&s, rt_data_caption(st.d, j), e)) goto done;
    rt_eval_outputs_free(p, tok, codes);
    rt_eval_outputs_free(p, dec, recon);
    codes = recon = NULL;
  }
  if (write_outputs(&a, &s, &en->input[0], e)) goto done;
  rc = report(p, &a, &s, e);
done:
  rt_eval_outputs_free(p, tok, codes);
  rt_eval_outputs_free(p, dec, recon);
  rt_tensor_free(dec_in);
  rt_eval_inputs_free(en, in);
  rt_eval_stream_close(&st);
  free(s.sum);
  free(s.sumsq);
  free(s.counts);
  free(s.recon);
  free(s.captions);
  return rc;
}
