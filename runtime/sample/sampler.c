/* sampler.c — the image tokens of a batch of texts, drawn position by
 * position with or without the KV cache (see sampler.h). */
#include "runtime/sample/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/sched/rt_sched.h"

static double now(void) { return 1e-9 * (double)rt_now_ns(); }

static bool is(const RtArgSpec *a, RtDType t, int rank) { return a->dtype == t && a->rank == rank; }

/* The entry called 'name' with the given numbers of inputs and outputs,
 * made ready to run if 'ready'. */
static int find(RtProgram *p, const char *name, int nin, int nout, bool ready, const char *why,
                const RtEntrySpec **en, RtErr *e) {
  int i = rt_program_entry(p, name);
  if (i < 0) return rt_err(e, "%s has no entry '%s' (%s; see runtime/sample/sampler.h)", p->model, name, why);
  *en = &p->entry[i];
  if ((*en)->ninput != nin || (*en)->noutput != nout)
    return rt_err(e, "entry '%s' takes %d inputs and gives %d outputs; sampling needs %d and %d", name,
                  (*en)->ninput, (*en)->noutput, nin, nout);
  return ready ? rt_program_prepare(p, i, e) : 0;
}

int rt_sampler_prepare(RtProgram *p, bool no_cache, int64_t *B, int64_t *Lt, int64_t *T, int64_t *K, RtErr *e) {
  const RtEntrySpec *il = NULL, *pre = NULL, *step = NULL;
  if (!no_cache && (find(p, RT_ENTRY_PREFILL, 1, 1, true, "sampling with the KV cache needs it", &pre, e) ||
                    find(p, RT_ENTRY_DECODE_STEP, 2, 1, true, "sampling with the KV cache needs it", &step, e)))
    return -1;
  /* image_logits gives the sizes (T among them) even when the cache draws */
  if (find(p, RT_ENTRY_IMAGE_LOGITS, 2, 1, no_cache, "sampling without a cache needs it, and it says how many tokens to draw",
           &il, e))
    return -1;
  const RtArgSpec *t = &il->input[0], *im = &il->input[1], *o = &il->output[0];
  if (!is(t, RT_I32, 2) || !is(im, RT_I32, 2) || !is(o, RT_F32, 3) || im->dim[0] != t->dim[0] ||
      o->dim[0] != t->dim[0] || o->dim[1] != im->dim[1])
    return rt_err(e, "entry '%s' must take (text: i32[B, Lt], image: i32[B, T]) and return f32[B, T, K]", il->name);
  *B = t->dim[0], *Lt = t->dim[1], *T = im->dim[1], *K = o->dim[2];
  if (no_cache) return 0;
  const RtArgSpec *pt = &pre->input[0], *po = &pre->output[0], *tok = &step->input[0], *pos = &step->input[1],
                  *so = &step->output[0];
  if (!is(pt, RT_I32, 2) || !is(po, RT_F32, 2) || pt->dim[0] != *B || pt->dim[1] != *Lt || po->dim[0] != *B ||
      po->dim[1] != *K)
    return rt_err(e, "entry '%s' must take text: i32[B, Lt] and return f32[B, K] like '%s'", pre->name, il->name);
  if (!is(tok, RT_I32, 1) || !is(pos, RT_I32, 0) || !is(so, RT_F32, 2) || tok->dim[0] != *B || so->dim[0] != *B ||
      so->dim[1] != *K)
    return rt_err(e, "entry '%s' must take (token: i32[B], pos: i32) and return f32[B, K] like '%s'", step->name,
                  pre->name);
  return 0;
}

/* One progress line on stderr: positions done, image tokens/s, ETA. */
static void show(int64_t done, int64_t total, int64_t B, double t0, double *last, bool tty) {
  double t = now();
  if (done < total && t - *last < 0.1) return;
  *last = t;
  double rate = (double)(done * B) / fmax(t - t0, 1e-9);
  double eta = done ? (t - t0) / (double)done * (double)(total - done) : 0;
  fprintf(stderr, "%ssample: position %lld/%lld  %.0f image tokens/s  ETA %.1fs%s", tty ? "\r" : "",
          (long long)done, (long long)total, rate, eta, tty ? "" : "\n");
  if (tty && done == total) fputc('\n', stderr);
}

/* Draws token j of every row from logits [B, K] (row stride 'stride'). */
static int draw(const float *logits, int64_t stride, int64_t B, int64_t K, int64_t j, const RtSamplerOptions *o,
                float *scratch, int32_t *tokens, int64_t T, RtErr *e) {
  for (int64_t b = 0; b < B; b++) {
    const float *row = logits + b * stride;
    if (o->logits) memcpy(rt_f32(o->logits) + (b * T + j) * K, row, sizeof *row * (size_t)K);
    int t = rt_sample_draw(row, (int)K, &o->draw, o->seed, o->row0 + (uint64_t)b, (uint64_t)j, scratch);
    if (t < 0)
      return rt_err(e, "sample: the logits of row %lld at image position %lld are all NaN or -inf", (long long)b,
                    (long long)j);
    tokens[b * T + j] = t;
  }
  return 0;
}

int rt_sampler_run(RtProgram *p, const RtTensor *text, RtTensor *tokens, const RtSamplerOptions *o,
                   RtSamplerStats *st, RtErr *e) {
  int64_t B, Lt, T, K;
  if (rt_sampler_prepare(p, o->no_cache, &B, &Lt, &T, &K, e)) return -1;
  int64_t have = rt_tensor_numel(tokens) / (tokens->rank ? tokens->dim[0] : 1);
  if (text->dtype != RT_I32 || text->rank != 2 || text->dim[0] != B || text->dim[1] != Lt)
    return rt_err(e, "sample: the text must be i32[%lld, %lld]", (long long)B, (long long)Lt);
  if (tokens->dtype != RT_I32 || tokens->dim[0] != B || have != T)
    return rt_err(e, "sample: the tokens must be i32 with %lld rows of %lld", (long long)B, (long long)T);
  if (o->logits && (o->logits->dtype != RT_F32 || rt_tensor_numel(o->logits) != B * T * K))
    return rt_err(e, "sample: the logits' tensor must be f32 [%lld, %lld, %lld]", (long long)B, (long long)T,
                  (long long)K);
  int32_t *tok = rt_i32(tokens);
  memset(tok, 0, rt_tensor_bytes(tokens));
  float *scratch = malloc(sizeof *scratch * (size_t)K);
  RtTensor *token = rt_tensor_new(RT_I32, 1, (int64_t[]){B}, e), *pos = rt_tensor_new(RT_I32, 0, NULL, e);
  RtTensor *out[1] = {NULL};
  int rc = -1;
  if (!scratch || !token || !pos) {
    if (!scratch) rt_err(e, "out of memory");
    goto done;
  }
  bool tty = isatty(2);
  double t0 = now(), last = -1;
  if (o->no_cache) {
    int entry = rt_program_entry(p, RT_ENTRY_IMAGE_LOGITS);
    RtTensor view = *tokens; /* the entry sees the tokens as [B, T] */
    view.rank = 2, view.dim[0] = B, view.dim[1] = T;
    RtTensor *in[2] = {(RtTensor *)text, &view};
    for (int64_t j = 0; j < T; j++) {
      if (p->run(p, entry, in, out, o->seed, (uint64_t)j, e) ||
          draw(rt_f32(out[0]) + j * K, T * K, B, K, j, o, scratch, tok, T, e))
        goto done;
      rt_tensor_free(out[0]);
      out[0] = NULL;
      if (o->progress) show(j + 1, T, B, t0, &last, tty);
    }
  } else {
    int pre = rt_program_entry(p, RT_ENTRY_PREFILL), step = rt_program_entry(p, RT_ENTRY_DECODE_STEP);
    RtTensor *in1[1] = {(RtTensor *)text}, *in2[2] = {token, pos};
    for (int64_t j = 0; j < T; j++) {
      if (j == 0) {
        if (p->run(p, pre, in1, out, o->seed, 0, e)) goto done;
      } else {
        for (int64_t b = 0; b < B; b++) rt_i32(token)[b] = tok[b * T + j - 1];
        rt_i32(pos)[0] = (int32_t)(Lt + j - 1);
        if (p->run(p, step, in2, out, o->seed, (uint64_t)j, e)) goto done;
      }
      if (draw(rt_f32(out[0]), K, B, K, j, o, scratch, tok, T, e)) goto done;
      rt_tensor_free(out[0]);
      out[0] = NULL;
      if (o->progress) show(j + 1, T, B, t0, &last, tty);
    }
  }
  if (st) *st = (RtSamplerStats){.seconds = now() - t0, .tokens = B * T};
  rc = 0;
done:
  rt_tensor_free(out[0]);
  rt_tensor_free(token);
  rt_tensor_free(pos);
  free(scratch);
  return rc;
}
