/* test_attention.c — the fused attention op (ATTENTION, ATTENTION_BACKWARD):
 *   - the runtime kernels (runtime/sched/attention.h) against the reference
 *     executor's kernels (ir/ref/ref_attention.c) at 1e-5 relative, forward
 *     and backward, on the GPT's tiny and bench attention shapes, the paper
 *     shape at batch 1 (two heads, forward), the KV-cached decode shape
 *     (one query over the cache up to pos), odd sizes (d and m off the
 *     vector widths), causal, all-visible and random masks (rows that see
 *     nothing give NaN in both), and any split of the items;
 *   - the reference backward against central finite differences of the
 *     reference forward (including the log-sum-exp column's gradient);
 *   - the rewrite (passes/attention.h): the unfused pattern as the GPT
 *     traces it becomes one attention node, with the same values on the
 *     reference executor, forward and through autodiff; what it must not
 *     touch (a score used twice, a mask that differs per batch item) stays.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "ir/ref/ref.h"
#include "ir/ref/ref_kernels.h"
#include "passes/attention.h"
#include "passes/autodiff.h"
#include "passes/passes.h"
#include "runtime/sched/attention.h"
#include "tests/util.h"

static uint32_t rng_state = 1;
static float urand(void) { /* in [-1, 1) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)(rng_state >> 8) / (float)(1 << 23) - 1.0f;
}

static float *rand_f(int64_t n, float amp) {
  float *x = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) x[i] = amp * urand();
  return x;
}

typedef enum { MASK_CAUSAL, MASK_ALL, MASK_RANDOM, MASK_DECODE } MaskKind;

/* mask [n, m]: causal (j <= i, with n == m, or the last n rows of it when
 * n < m), all ones, random (about a third hidden; some rows empty), or a
 * decode step's (one row, j <= pos). */
static int32_t *make_mask(MaskKind kind, int64_t n, int64_t m, int64_t pos) {
  int32_t *mk = malloc(sizeof(int32_t) * (size_t)(n * m));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < m; j++) {
      int32_t v = 1;
      if (kind == MASK_CAUSAL) v = j <= i + (m - n);
      else if (kind == MASK_RANDOM) v = i % 7 == 3 ? 0 : urand() > -0.33f;
      else if (kind == MASK_DECODE) v = j <= pos;
      mk[i * m + j] = v;
    }
  return mk;
}

/* Relative error of a against the reference b (max |a - b| over max |b|),
 * after checking that both have NaN at the same places. */
static double rel_err_nan(const char *what, const float *a, const float *b, int64_t n) {
  double num = 0, den = 1e-30;
  for (int64_t i = 0; i < n; i++) {
    ck_assert_msg(isnan(a[i]) == isnan(b[i]), "%s: element %lld is %g, the reference %g", what, (long long)i,
                  (double)a[i], (double)b[i]);
    if (isnan(b[i]) || a[i] == b[i]) continue; /* (an empty row's log-sum-exp is -inf in both) */
    double dd = fabs((double)a[i] - b[i]);
    if (!(dd <= num)) num = dd;
    if (fabs(b[i]) > den) den = fabs(b[i]);
  }
  return num / den;
}

typedef struct {
  const char *name;
  int64_t B, n, m, d;
  MaskKind mask;
  bool backward;
  bool rising; /* key j scaled by 1 + j / 32: later key chunks raise the rows' max (the online rescale) */
} Shape;

static const Shape shapes[] = {
    {"tiny causal", 8, 23, 23, 16, MASK_CAUSAL, true, false},
    {"bench causal", 128, 95, 95, 32, MASK_CAUSAL, true, false},
    {"bench all visible", 16, 95, 95, 32, MASK_ALL, true, false},
    {"random mask, odd sizes", 6, 13, 37, 5, MASK_RANDOM, true, false},
    {"random mask, d 24", 3, 9, 50, 24, MASK_RANDOM, true, false},
    /* d and m past whole 8 x 8 transposes and 16-column tiles: their edges */
    {"random mask, d 44, 29 keys", 5, 18, 29, 44, MASK_RANDOM, true, false},
    {"prefill rows of a longer cache", 4, 7, 40, 16, MASK_CAUSAL, true, false},
    {"decode step", 128, 1, 95, 32, MASK_DECODE, true, false},
    {"paper, batch 1, two heads", 2, 1279, 1279, 64, MASK_CAUSAL, false, false},
    /* more keys than one chunk of the forward's online softmax (128) */
    {"random mask across key chunks", 3, 11, 300, 16, MASK_RANDOM, true, true},
    {"causal across key chunks", 2, 260, 260, 32, MASK_CAUSAL, true, true},
    {"decode step across key chunks", 8, 1, 400, 32, MASK_DECODE, true, true},
};

static void check_shape_case(const Shape *c) {
  int64_t B = c->B, n = c->n, m = c->m, d = c->d;
  float scale = 1.0f / sqrtf((float)d);
  float *q = rand_f(B * n * d, 1.5f), *k = rand_f(B * m * d, 1.5f), *v = rand_f(B * m * d, 1.0f);
  if (c->rising)
    for (int64_t i = 0; i < B * m * d; i++) k[i] *= 1.0f + (float)(i / d % m) / 32;
  int32_t *mask = make_mask(c->mask, n, m, m / 2);
  int64_t ny = B * n * (d + 1), ng = B * (n + 2 * m) * d;
  float *y = malloc(sizeof(float) * (size_t)ny), *yr = malloc(sizeof(float) * (size_t)ny);
  ref_attention(yr, q, k, v, mask, B, n, m, d, scale);
  /* the items in two uneven pieces, as two threads would take them */
  int64_t cut = B / 3;
  rt_attn_forward(y, q, k, v, mask, n, m, d, scale, 0, cut);
  rt_attn_forward(y, q, k, v, mask, n, m, d, scale, cut, B);
  double e = rel_err_nan(c->name, y, yr, ny);
  printf("attention %-32s forward  rel %.2e\n", c->name, e);
  ck_assert_msg(e <= 1e-5, "%s: forward rel error %.3g > 1e-5", c->name, e);
  if (c->backward) {
    float *dy = rand_f(ny, 1.0f), *g = malloc(sizeof(float) * (size_t)ng), *gr = malloc(sizeof(float) * (size_t)ng);
    /* the log-sum-exp column gets a gradient too (zero in the rewrite's use,
     * but the op's backward is defined for any) */
    ref_attention_backward(gr, q, k, v, mask, dy, B, n, m, d, scale);
    rt_attn_backward(g, q, k, v, mask, yr, dy, n, m, d, scale, 0, B - cut);
    rt_attn_backward(g, q, k, v, mask, yr, dy, n, m, d, scale, B - cut, B);
    /* per part: dq, dk, dv of every item */
    const char *part[3] = {"dq", "dk", "dv"};
    for (int p = 0; p < 3; p++) {
      int64_t rows = p == 0 ? n : m, off = p == 0 ? 0 : p == 1 ? n : n + m, cnt = B * rows * d;
      float *a = malloc(sizeof(float) * (size_t)cnt), *b = malloc(sizeof(float) * (size_t)cnt);
      for (int64_t it = 0; it < B; it++) {
        memcpy(a + it * rows * d, g + (it * (n + 2 * m) + off) * d, sizeof(float) * (size_t)(rows * d));
        memcpy(b + it * rows * d, gr + (it * (n + 2 * m) + off) * d, sizeof(float) * (size_t)(rows * d));
      }
      char what[96];
      snprintf(what, sizeof what, "%s %s", c->name, part[p]);
      double eb = rel_err_nan(what, a, b, cnt);
      printf("attention %-32s %s       rel %.2e\n", c->name, part[p], eb);
      ck_assert_msg(eb <= 1e-5, "%s: backward rel error %.3g > 1e-5", what, eb);
      free(a);
      free(b);
    }
    free(dy);
    free(g);
    free(gr);
  }
  free(q);
  free(k);
  free(v);
  free(mask);
  free(y);
  free(yr);
}

START_TEST(kernels_match_reference) { check_shape_case(&shapes[_i]); }
END_TEST

/* d sum(y * w) / d x by central differences of the reference forward
 * (in float: step 1e-2, tolerance 2e-2 relative to the gradient's scale)
 * against ref_attention_backward, for every input element. */
START_TEST(reference_backward_matches_finite_differences) {
  int64_t B = 2, n = 5, m = 6, d = 3;
  double scale = 0.7;
  float *q = rand_f(B * n * d, 1), *k = rand_f(B * m * d, 1), *v = rand_f(B * m * d, 1);
  int32_t *mask = make_mask(MASK_RANDOM, n, m, 0);
  mask[0] = 1; /* row 0 non-empty: its log-sum-exp is finite */
  for (int64_t i = 0; i < n; i++) mask[i * m + (i % m)] = i % 7 == 3 ? 0 : 1;
  int64_t ny = B * n * (d + 1);
  float *w = rand_f(ny, 1), *y = malloc(sizeof(float) * (size_t)ny);
  for (int64_t i = 0; i < ny; i++)
    if (i / (d + 1) % n == 3) w[i] = 0; /* the empty row's outputs are NaN: not in the sum */
  float *g = malloc(sizeof(float) * (size_t)(B * (n + 2 * m) * d));
  ref_attention_backward(g, q, k, v, mask, w, B, n, m, d, scale);
  float *xs[3] = {q, k, v};
  int64_t rows[3] = {n, m, m}, off[3] = {0, n, n + m};
  double worst = 0, gmax = 0;
  for (int p = 0; p < 3; p++)
    for (int64_t it = 0; it < B; it++)
      for (int64_t r = 0; r < rows[p]; r++)
        for (int64_t c = 0; c < d; c++) {
          float *x = &xs[p][(it * rows[p] + r) * d + c], x0 = *x;
          double f[2];
          for (int s = 0; s < 2; s++) {
            *x = x0 + (s ? -1e-2f : 1e-2f);
            ref_attention(y, q, k, v, mask, B, n, m, d, scale);
            double acc = 0;
            for (int64_t i = 0; i < ny; i++)
              if (w[i] != 0) acc += (double)w[i] * y[i];
            f[s] = acc;
          }
          *x = x0;
          double fd = (f[0] - f[1]) / 2e-2, an = g[(it * (n + 2 * m) + off[p] + r) * d + c];
          if (fabs(an - fd) > worst) worst = fabs(an - fd);
          if (fabs(an) > gmax) gmax = fabs(an);
        }
  printf("attention finite differences: max |analytic - numeric| %.2e over max |grad| %.2e\n", worst, gmax);
  ck_assert_msg(gmax > 1e-2 && worst <= 2e-2 * gmax, "finite differences differ by %.3g (gradient scale %.3g)", worst,
                gmax);
  free(q);
  free(k);
  free(v);
  free(mask);
  free(w);
  free(y);
  free(g);
}
END_TEST

/* ---- the rewrite ---- */

static const SrcLoc LOC = {"attn.dal", 1, 1};

typedef struct {
  int q, k, v, mask, y;
} Built;

/* models/gpt.dal's attend as the frontend traces it: q, k, v inputs
 * [b, H, n, d] / [b, H, m, d], mask = causal (iota >= iota) [n, m] reshaped
 * to [1, 1, n, m] (or an input [b, 1, n, m] when per_item) and broadcast,
 * scores scaled by a constant, where(-inf), softmax, matmul. 'twice' also
 * returns the scores. */
static IrGraph *attend_graph(int64_t b, int64_t H, int64_t n, int64_t m, int64_t d, bool per_item, bool twice,
                             Built *out) {
  IrGraph *g = ir_graph_new("attend");
  IrShape qs = ir_shape_make(4, (int64_t[]){b, H, n, d}), ks = ir_shape_make(4, (int64_t[]){b, H, m, d});
  int q = ir_input(g, "q", IR_F32, qs, LOC), k = ir_input(g, "k", IR_F32, ks, LOC), v = ir_input(g, "v", IR_F32, ks, LOC);
  int mask;
  if (per_item) {
    mask = ir_input(g, "mask", IR_I32, ir_shape_make(4, (int64_t[]){b, 1, n, m}), LOC);
  } else {
    IrAttr a = {.shape = ir_shape_make(2, (int64_t[]){n, m}), .axis = 0};
    int row = ir_build(g, OP_IOTA, NULL, 0, &a, LOC);
    a.axis = 1;
    int col = ir_build(g, OP_IOTA, NULL, 0, &a, LOC);
    int off = ir_const(g, IR_I32, ir_shape_make(2, (int64_t[]){n, m}), (double)(m - n), LOC);
    mask = ir_binary(g, OP_GE, ir_binary(g, OP_ADD, row, off, LOC), col, LOC);
  }
  int s = ir_build(g, OP_MATMUL, (int[]){q, k}, 2, &(IrAttr){.trans_b = 1}, LOC);
  s = ir_binary(g, OP_MUL, s, ir_scalar(g, IR_F32, 1.0 / sqrt((double)d), LOC), LOC);
  int w = ir_where(g, mask, s, ir_scalar(g, IR_F32, -INFINITY, LOC), LOC);
  int p = ir_build(g, OP_SOFTMAX, &w, 1, &(IrAttr){.axis = 3}, LOC);
  int y = ir_build(g, OP_MATMUL, (int[]){p, v}, 2, &(IrAttr){0}, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  int outs[2] = {y, s};
  ir_set_outputs(g, outs, NULL, twice ? 2 : 1);
  *out = (Built){q, k, v, mask, y};
  return g;
}

static int count_op(const IrGraph *g, IrOp op) {
  int c = 0;
  for (int i = 0; i < g->n; i++) c += g->node[i].op == op;
  return c;
}

static RtTensor *tensor_f(const IrGraph *g, int id, float amp) {
  const IrNode *nd = &g->node[id];
  RtTensor *t = rt_tensor_new(RT_F32, nd->shape.rank, nd->shape.d, NULL);
  for (int64_t i = 0; i < rt_tensor_numel(t); i++) rt_f32(t)[i] = amp * urand();
  return t;
}

/* Runs g on the reference executor with inputs in[]; output 0. */
static RtTensor *run_ref(IrGraph *g, RtTensor **in) {
  RtTensor *out[2] = {NULL, NULL};
  RtErr e;
  int rc = ref_run(g, in, NULL, out, NULL, &e);
  ck_assert_msg(rc == 0, "ref_run: %s", e.msg);
  if (out[1]) rt_tensor_free(out[1]);
  return out[0];
}

START_TEST(rewrite_fuses_the_gpt_pattern) {
  static const int64_t sz[][5] = {{4, 2, 23, 23, 16}, {2, 3, 5, 9, 8}};
  for (int c = 0; c < 2; c++) {
    Built b;
    IrGraph *g = attend_graph(sz[c][0], sz[c][1], sz[c][2], sz[c][3], sz[c][4], false, false, &b);
    RtTensor *in[3] = {tensor_f(g, b.q, 1), tensor_f(g, b.k, 1), tensor_f(g, b.v, 1)};
    RtTensor *want = run_ref(g, in);
    int fused = -1;
    ck_assert_int_eq(pass_attention_fuse(g, &fused, NULL), 0);
    ck_assert_int_eq(fused, 1);
    ck_assert_int_eq(count_op(g, OP_ATTENTION), 1);
    ck_assert_int_eq(count_op(g, OP_SOFTMAX), 0);
    ck_assert_int_eq(count_op(g, OP_MATMUL), 0);
    RtTensor *got = run_ref(g, in);
    double e = rel_err_nan("rewrite", rt_f32(got), rt_f32(want), rt_tensor_numel(want));
    ck_assert_msg(e <= 1e-5, "fused graph differs from the unfused one: rel %.3g", e);
    rt_tensor_free(got);
    rt_tensor_free(want);
    for (int i = 0; i < 3; i++) rt_tensor_free(in[i]);
    ir_graph_free(g);
  }
}
END_TEST

START_TEST(rewrite_leaves_what_it_cannot_fuse) {
  Built b;
  IrGraph *g = attend_graph(2, 2, 5, 5, 4, false, true, &b); /* the scores are an output too */
  int fused = -1;
  ck_assert_int_eq(pass_attention_fuse(g, &fused, NULL), 0);
  ck_assert_int_eq(fused, 0);
  ck_assert_int_eq(count_op(g, OP_ATTENTION), 0);
  ir_graph_free(g);
  g = attend_graph(2, 2, 5, 5, 4, true, false, &b); /* a mask per batch item */
  ck_assert_int_eq(pass_attention_fuse(g, &fused, NULL), 0);
  ck_assert_int_eq(fused, 0);
  ir_graph_free(g);
}
END_TEST

/* The gradient through the fused op (grad_attention: attention_backward
 * and slices) equals the gradient through the unfused pattern. */
START_TEST(rewrite_then_autodiff_matches_unfused_gradients) {
  Built b;
  IrGraph *gs[2];
  RtTensor *outs[2][4];
  for (int f = 0; f < 2; f++) {
    rng_state = 7;
    gs[f] = attend_graph(2, 2, 6, 6, 8, false, false, &b);
    IrGraph *g = gs[f];
    /* loss = sum(y * w) with w a constant-like input: y's gradient is w */
    int w = ir_input(g, "w", IR_F32, g->node[b.y].shape, LOC);
    int loss = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, b.y, w, LOC), 0xf, false, LOC);
    ir_set_outputs(g, &loss, NULL, 1);
    if (f) ck_assert_int_eq(pass_attention_fuse(g, NULL, NULL), 0);
    ck_assert_int_eq(count_op(g, OP_ATTENTION), f);
    loss = g->output[0]; /* (the rewrite renumbers the nodes; inputs keep their order) */
    int wrt[3] = {g->input[0], g->input[1], g->input[2]};
    w = g->input[3];
    int grads[3];
    ck_assert_msg(ad_gradients(g, loss, wrt, 3, grads) == 0, "%s", g->error);
    int o[4] = {loss, grads[0], grads[1], grads[2]};
    ir_set_outputs(g, o, NULL, 4);
    RtTensor *in[4] = {tensor_f(g, wrt[0], 1), tensor_f(g, wrt[1], 1), tensor_f(g, wrt[2], 1), tensor_f(g, w, 1)};
    RtErr e;
    for (int i = 0; i < 4; i++) outs[f][i] = NULL;
    ck_assert_msg(ref_run(g, in, NULL, outs[f], NULL, &e) == 0, "ref_run: %s", e.msg);
    for (int i = 0; i < 4; i++) rt_tensor_free(in[i]);
  }
  ck_assert_int_eq(count_op(gs[1], OP_ATTENTION_BACKWARD), 1);
  for (int i = 0; i < 4; i++) {
    double e = rel_err_nan("gradient", rt_f32(outs[1][i]), rt_f32(outs[0][i]), rt_tensor_numel(outs[0][i]));
    ck_assert_msg(e <= 1e-5, "output %d (loss, dq, dk, dv) differs: rel %.3g", i, e);
    rt_tensor_free(outs[0][i]);
    rt_tensor_free(outs[1][i]);
  }
  ir_graph_free(gs[0]);
  ir_graph_free(gs[1]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("attention");
  TCase *tc = tcase_create("kernels");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, kernels_match_reference, 0, (int)(sizeof shapes / sizeof shapes[0]));
  tcase_add_test(tc, reference_backward_matches_finite_differences);
  suite_add_tcase(s, tc);
  TCase *rw = tcase_create("rewrite");
  tcase_add_test(rw, rewrite_fuses_the_gpt_pattern);
  tcase_add_test(rw, rewrite_leaves_what_it_cannot_fuse);
  tcase_add_test(rw, rewrite_then_autodiff_matches_unfused_gradients);
  suite_add_tcase(s, rw);
  return tu_run_suite(s);
}
