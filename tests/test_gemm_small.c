/* test_gemm_small.c — the small-M GEMM kernel (runtime/sched/gemm_small.h)
 * against a naive double-precision matmul: every m from 1 to 32, both
 * trans_b, n and k off multiples of 8, leading dimensions above the
 * minimum, several alpha and beta, beta 0 over a C of NaN, column ranges
 * (nothing outside them written); bit-identical results for any split of
 * the columns; GEMM steps through the scheduler (batches with strides,
 * shared operands, accumulation over the batch, 1 to 3 threads) equal to
 * the kernel's own results bit for bit, and with the kernel off equal to
 * them within rounding; which GEMMs it takes
 * (rt_gemm_small_fits, DAL_GEMM_SMALL); and a benchmark against OpenBLAS
 * on a KV-cached decode step's shapes (printed, not asserted).
 *
 * The bound: each element within (k + 4) 2^-24 (|alpha| sum_l |A[i,l]
 * B[l,j]| + |beta C[i,j]|) of the double-precision result, the worst case
 * of summing k products in float (the kernel's 8-lane sums are tighter). */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/sched/blas_core.h"
#include "runtime/sched/gemm_small.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/rt_sched.h"
#include "runtime/core/tensor.h"
#include "runtime/core/threadpool.h"
#include "tests/util.h"

#define SENTINEL 12345.0f

static bool have_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static uint32_t rng_state;
static float urand(void) { /* in [-1, 1) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)(rng_state >> 8) / (float)(1 << 23) - 1.0f;
}

/* One GEMM item: A [m, k] (lda), B [n, k] (trans_b) or [k, n] (ldb), C [m, n]
 * (ldc); allocated to their exact extents, so a read past one is an ASan
 * error in the sanitizer build. */
typedef struct {
  RtGemm g;
  float *a, *b, *c, *c0; /* c0: C before the call */
  int64_t na, nb, nc;
} Item;

static Item item_new(int m, int n, int k, int trans_b, int pad, float alpha, float beta, bool nan_c) {
  Item t = {.g = {.batch = 1, .trans_b = trans_b, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta}};
  t.g.lda = k + pad;
  t.g.ldb = (trans_b ? k : n) + (pad * 3) % 5;
  t.g.ldc = n + (pad * 2) % 3;
  t.na = (int64_t)(m - 1) * t.g.lda + k;
  t.nb = (int64_t)((trans_b ? n : k) - 1) * t.g.ldb + (trans_b ? k : n);
  t.nc = (int64_t)(m - 1) * t.g.ldc + n;
  t.a = malloc((size_t)t.na * sizeof(float));
  t.b = malloc((size_t)t.nb * sizeof(float));
  t.c = malloc((size_t)t.nc * sizeof(float));
  t.c0 = malloc((size_t)t.nc * sizeof(float));
  for (int64_t i = 0; i < t.na; i++) t.a[i] = urand();
  for (int64_t i = 0; i < t.nb; i++) t.b[i] = urand();
  for (int64_t i = 0; i < t.nc; i++) t.c0[i] = (i % t.g.ldc) >= n ? SENTINEL : nan_c ? NAN : urand();
  memcpy(t.c, t.c0, (size_t)t.nc * sizeof(float));
  return t;
}

static void item_free(Item *t) {
  free(t->a);
  free(t->b);
  free(t->c);
  free(t->c0);
}

static float bval(const RtGemm *g, const float *b, int l, int j) {
  return g->trans_b ? b[(int64_t)j * g->ldb + l] : b[(int64_t)l * g->ldb + j];
}

/* Checks got (C after a call covering columns [n0, n1)) against the naive
 * result from a, b and c0: inside the range within the bound, outside it
 * (and in the padding) unchanged. */
static void check_item(const RtGemm *g, const float *a, const float *b, const float *c0, const float *got, int n0,
                       int n1, const char *what) {
  for (int i = 0; i < g->m; i++)
    for (int j = 0; j < g->ldc && (int64_t)i * g->ldc + j < (int64_t)(g->m - 1) * g->ldc + g->n; j++) {
      int64_t at = (int64_t)i * g->ldc + j;
      if (j < n0 || j >= n1) {
        if (memcmp(&got[at], &c0[at], sizeof(float)) != 0)
          ck_abort_msg("%s: C[%d, %d] outside columns [%d, %d) changed from %g to %g", what, i, j, n0, n1, c0[at],
                       got[at]);
        continue;
      }
      double s = 0, mag = 0;
      for (int l = 0; l < g->k; l++) {
        double p = (double)a[(int64_t)i * g->lda + l] * bval(g, b, l, j);
        s += p;
        mag += fabs(p);
      }
      double want = g->alpha * s, bound = fabs(g->alpha) * mag;
      if (g->beta != 0) want += g->beta * (double)c0[at], bound += fabs(g->beta * (double)c0[at]);
      bound = bound * (g->k + 4) * 0x1p-24 + 1e-30;
      if (!(fabs(got[at] - want) <= bound))
        ck_abort_msg("%s: C[%d, %d] = %.9g, want %.9g (error %.3g > bound %.3g)", what, i, j, got[at], want,
                     fabs(got[at] - want), bound);
    }
}

static void describe(char *buf, size_t size, const Item *t, int n0, int n1) {
  snprintf(buf, size, "m%d n%d k%d tb%d lda%d ldb%d ldc%d alpha %g beta %g cols [%d, %d)", t->g.m, t->g.n, t->g.k,
           t->g.trans_b, t->g.lda, t->g.ldb, t->g.ldc, t->g.alpha, t->g.beta, n0, n1);
}

/* ---- the kernel ---- */

START_TEST(kernel_matches_naive_matmul) {
  if (!have_avx2()) {
    RtGemm g = {.batch = 1, .m = 8, .n = 8, .k = 8, .lda = 8, .ldb = 8, .ldc = 8, .trans_b = 1};
    ck_assert(!rt_gemm_small_fits(&g)); /* OpenBLAS does everything */
    return;
  }
  static const int ns[] = {1, 3, 4, 7, 8, 9, 17, 33, 70};
  static const int ks[] = {1, 5, 8, 13, 32, 95};
  static const float ab[][2] = {{1, 0}, {0.75f, 0.5f}, {-1.5f, 1}, {1, 0}, {0, 2}};
  rng_state = 1;
  int count = 0;
  for (int m = 1; m <= RT_GEMM_SMALL_MAX_M; m++)
    for (int tb = 0; tb <= 1; tb++)
      for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
        for (size_t ik = 0; ik < sizeof ks / sizeof ks[0]; ik++, count++) {
          int n = ns[in], k = ks[ik], v = count % 5, pad = count % 4;
          Item t = item_new(m, n, k, tb, pad, ab[v][0], ab[v][1], v == 3); /* v 3: beta 0 over NaN */
          /* all columns, then (on a fresh C) a range inside them */
          int n0 = count % 3 == 0 ? 0 : (count * 7) % n, n1 = count % 3 == 0 ? n : n0 + (n - n0 + 1) / 2;
          char what[160];
          describe(what, sizeof what, &t, 0, n);
          rt_gemm_small(&t.g, t.a, t.b, t.c, 0, n);
          check_item(&t.g, t.a, t.b, t.c0, t.c, 0, n, what);
          memcpy(t.c, t.c0, (size_t)t.nc * sizeof(float));
          describe(what, sizeof what, &t, n0, n1);
          rt_gemm_small(&t.g, t.a, t.b, t.c, n0, n1);
          check_item(&t.g, t.a, t.b, t.c0, t.c, n0, n1, what);
          item_free(&t);
        }
  ck_assert_int_eq(count, RT_GEMM_SMALL_MAX_M * 2 * 9 * 6);
}
END_TEST

/* Longer rows: k past a few vectors with a tail, wide n with tails of every
 * tile width, the decode step's shapes. */
START_TEST(kernel_matches_on_larger_shapes) {
  if (!have_avx2()) return;
  static const int shape[][4] = {/* m, n, k, trans_b */
                                 {8, 1024, 256, 1}, {8, 256, 1024, 1}, {1, 95, 32, 1},  {1, 32, 95, 0},
                                 {16, 131, 301, 1}, {5, 67, 517, 1},   {8, 250, 77, 0}, {2, 1003, 64, 0},
                                 {1, 1001, 33, 1},  {3, 9, 2049, 1},   {32, 200, 256, 1}, {29, 37, 99, 1}};
  rng_state = 7;
  for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++) {
    Item t = item_new(shape[s][0], shape[s][1], shape[s][2], shape[s][3], (int)s % 3, 0.5f, s % 2 ? 0.25f : 0,
                      s % 2 == 0);
    char what[160];
    describe(what, sizeof what, &t, 0, t.g.n);
    rt_gemm_small(&t.g, t.a, t.b, t.c, 0, t.g.n);
    check_item(&t.g, t.a, t.b, t.c0, t.c, 0, t.g.n, what);
    item_free(&t);
  }
}
END_TEST

/* Any split of the columns into ranges gives the same bits as one call. */
START_TEST(column_splits_are_bit_identical) {
  if (!have_avx2()) return;
  static const int shape[][4] = {{8, 70, 37, 1}, {1, 70, 37, 1}, {5, 70, 37, 0}, {3, 45, 256, 1}, {7, 45, 9, 0}};
  rng_state = 3;
  for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++) {
    Item t = item_new(shape[s][0], shape[s][1], shape[s][2], shape[s][3], 1, 0.75f, 0.5f, false);
    float *whole = malloc((size_t)t.nc * sizeof(float));
    rt_gemm_small(&t.g, t.a, t.b, t.c, 0, t.g.n);
    memcpy(whole, t.c, (size_t)t.nc * sizeof(float));
    for (int cut = 0; cut <= t.g.n; cut++) {
      int cut2 = cut + (t.g.n - cut) / 3; /* three pieces, done out of order */
      memcpy(t.c, t.c0, (size_t)t.nc * sizeof(float));
      rt_gemm_small(&t.g, t.a, t.b, t.c, cut2, t.g.n);
      rt_gemm_small(&t.g, t.a, t.b, t.c, 0, cut);
      rt_gemm_small(&t.g, t.a, t.b, t.c, cut, cut2);
      if (memcmp(whole, t.c, (size_t)t.nc * sizeof(float)) != 0)
        ck_abort_msg("m%d n%d k%d tb%d: columns cut at %d and %d differ from one call", t.g.m, t.g.n, t.g.k,
                     t.g.trans_b, cut, cut2);
    }
    free(whole);
    item_free(&t);
  }
}
END_TEST

/* ---- which GEMMs it takes ---- */

START_TEST(fits_small_m_only) {
  bool cpu = have_avx2();
  RtGemm g = {.batch = 1, .trans_b = 1, .m = 8, .n = 1024, .k = 256, .lda = 256, .ldb = 256, .ldc = 1024};
  ck_assert(rt_gemm_small_fits(&g) == cpu);
  g.m = RT_GEMM_SMALL_MAX_M;
  ck_assert(rt_gemm_small_fits(&g) == cpu);
  g.m = RT_GEMM_SMALL_MAX_M + 1; /* OpenBLAS from here */
  ck_assert(!rt_gemm_small_fits(&g));
  g.m = 0;
  ck_assert(!rt_gemm_small_fits(&g));
  g.m = 8, g.trans_a = 1;
  ck_assert(!rt_gemm_small_fits(&g));
  /* trans_b 0: up to 8 rows and a B of 128K elements */
  g = (RtGemm){.batch = 64, .m = 1, .n = 32, .k = 95, .lda = 95, .ldb = 32, .ldc = 32};
  ck_assert(rt_gemm_small_fits(&g) == cpu);
  g.m = 8, g.n = 512, g.k = 256, g.ldb = g.ldc = 512, g.lda = 256;
  ck_assert(rt_gemm_small_fits(&g) == cpu);
  g.m = 9;
  ck_assert(!rt_gemm_small_fits(&g));
  g.m = 8, g.n = 1024, g.ldb = g.ldc = 1024;
  ck_assert(!rt_gemm_small_fits(&g));
  /* the switch */
  g = (RtGemm){.batch = 1, .trans_b = 1, .m = 1, .n = 8, .k = 8, .lda = 8, .ldb = 8, .ldc = 8};
  bool was = rt_gemm_small_enable(false);
  ck_assert(!rt_gemm_small_fits(&g));
  ck_assert(!rt_gemm_small_enable(true));
  ck_assert(rt_gemm_small_fits(&g) == cpu);
  rt_gemm_small_enable(was);
}
END_TEST

/* DAL_GEMM_SMALL=0 turns it off; in a child process, whose switch has not
 * been read yet (this test runs first). */
START_TEST(env_turns_it_off) {
  for (int off = 0; off <= 1; off++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      if (off) setenv("DAL_GEMM_SMALL", "0", 1);
      else unsetenv("DAL_GEMM_SMALL");
      RtGemm g = {.batch = 1, .trans_b = 1, .m = 1, .n = 8, .k = 8, .lda = 8, .ldb = 8, .ldc = 8};
      _exit(rt_gemm_small_fits(&g) ? 1 : 0);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == (!off && have_avx2()), "DAL_GEMM_SMALL %s: fits %d",
                  off ? "0" : "unset", WEXITSTATUS(status));
  }
}
END_TEST

/* ---- through the scheduler ---- */

typedef struct {
  int m, n, k, trans_b, batch;
  int shared; /* 1: stride_a 0, 2: stride_b 0, 3: stride_c 0 with beta 1 (accumulating) */
} StepCase;

static RtBuffer io(RtBufKind kind, int index, int64_t n, const char *name) {
  RtBuffer b = {.kind = kind, .dtype = RT_F32, .rank = 1, .name = name, .index = index};
  b.dim[0] = n;
  b.bytes = n * 4;
  return b;
}

/* Runs g as one GEMM step on a pool of nth threads (0: no pool) with
 * operands a0 [na], b0 [nb] and C starting as c0 [nc]; returns C (malloc'd). */
static float *run_step(int nth, const RtGemm *g, int64_t na, int64_t nb, int64_t nc,
                       const float *a0, const float *b0, const float *c0) {
  RtErr e = {{0}};
  RtPool *pool = NULL;
  if (nth) {
    pool = rt_pool_new(nth, &e);
    ck_assert_msg(pool != NULL, "%s", e.msg);
  }
  RtTensor *a = rt_tensor_new(RT_F32, 1, &na, &e), *b = rt_tensor_new(RT_F32, 1, &nb, &e),
           *c = rt_tensor_new(RT_F32, 1, &nc, &e);
  ck_assert(a && b && c);
  memcpy(a->data, a0, (size_t)na * 4);
  memcpy(b->data, b0, (size_t)nb * 4);
  memcpy(c->data, c0, (size_t)nc * 4);
  RtBuffer bufs[] = {io(RT_BUF_INPUT, 0, na, "a"), io(RT_BUF_INPUT, 1, nb, "b"), io(RT_BUF_OUTPUT, 0, nc, "c")};
  int arg[] = {0, 1, 2};
  RtStep st = {.kind = RT_STEP_GEMM, .name = "gemm", .narg = 3, .arg = arg, .gemm = *g};
  RtPlan p = {.name = "gemm", .nbuf = 3, .buf = bufs, .nstep = 1, .step = &st, .ninput = 2, .noutput = 1};
  RtTensor *in[] = {a, b};
  /* an output tensor given by the caller is written in place: C's start */
  ck_assert_msg(rt_plan_run(&p, pool, NULL, in, &c, NULL, NULL, &e) == 0, "%s", e.msg);
  float *out = malloc((size_t)nc * 4);
  memcpy(out, c->data, (size_t)nc * 4);
  rt_tensor_free(a);
  rt_tensor_free(b);
  rt_tensor_free(c);
  rt_pool_free(pool);
  return out;
}

START_TEST(scheduler_steps_match_the_kernel) {
  if (!have_avx2()) return;
  static const StepCase cases[] = {
      {8, 1024, 256, 1, 1, 0}, /* the decode step's projections: split by columns */
      {8, 70, 33, 1, 3, 0},    /* 3 items on 2 threads: by columns */
      {1, 95, 32, 1, 64, 0},   /* attention scores: by batch item */
      {1, 32, 95, 0, 64, 0},   /* attention values */
      {4, 301, 64, 1, 6, 1},   /* shared A */
      {5, 200, 40, 0, 8, 2},   /* shared B */
      {3, 150, 64, 1, 8, 3},   /* accumulating into one C, in batch order */
      {16, 100, 48, 0, 5, 3},  /* m > 8, trans_b 0: OpenBLAS, accumulating */
      {16, 100, 48, 1, 5, 3},  /* m 16, trans_b 1: the kernel, accumulating */
      {32, 300, 64, 1, 1, 0},  /* the largest m the kernel takes */
      {33, 300, 64, 1, 2, 0},  /* OpenBLAS */
  };
  rng_state = 11;
  for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
    const StepCase *sc = &cases[s];
    int m = sc->m, n = sc->n, k = sc->k, tb = sc->trans_b;
    RtGemm g = {.batch = sc->batch, .trans_b = tb, .m = m, .n = n, .k = k, .alpha = 0.5f, .beta = 0.75f};
    g.lda = k + 1, g.ldb = (tb ? k : n) + 2, g.ldc = n + 3;
    int64_t ea = (int64_t)(m - 1) * g.lda + k, eb = (int64_t)((tb ? n : k) - 1) * g.ldb + (tb ? k : n),
            ec = (int64_t)(m - 1) * g.ldc + n;
    g.stride_a = sc->shared == 1 ? 0 : ea + 5;
    g.stride_b = sc->shared == 2 ? 0 : eb + 3;
    g.stride_c = sc->shared == 3 ? 0 : ec + 7;
    if (sc->shared == 3) g.beta = 1;
    int64_t na = g.stride_a * (sc->batch - 1) + ea, nb = g.stride_b * (sc->batch - 1) + eb,
            nc = g.stride_c * (sc->batch - 1) + ec;
    float *a = malloc((size_t)na * 4), *b = malloc((size_t)nb * 4), *c0 = malloc((size_t)nc * 4),
          *want = malloc((size_t)nc * 4);
    for (int64_t i = 0; i < na; i++) a[i] = urand();
    for (int64_t i = 0; i < nb; i++) b[i] = urand();
    for (int64_t i = 0; i < nc; i++) c0[i] = urand();
    /* the kernel's own result, item by item in batch order, each item
     * checked against the naive matmul on the C it started from */
    bool small = rt_gemm_small_fits(&g);
    memcpy(want, c0, (size_t)nc * 4);
    float *before = malloc((size_t)nc * 4);
    for (int t = 0; t < sc->batch; t++) {
      const float *at = a + t * g.stride_a, *bt = b + t * g.stride_b;
      float *ct = want + t * g.stride_c;
      memcpy(before, want, (size_t)nc * 4);
      if (small) rt_gemm_small(&g, at, bt, ct, 0, n);
      else cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, g.alpha, at, g.lda, bt,
                       g.ldb, g.beta, ct, g.ldc);
      char what[160];
      snprintf(what, sizeof what, "case %zu item %d", s, t);
      check_item(&g, at, bt, before + t * g.stride_c, ct, 0, n, what);
    }
    free(before);
    for (int nth = 0; nth <= 3; nth++) {
      float *got = run_step(nth, &g, na, nb, nc, a, b, c0);
      if (small && memcmp(got, want, (size_t)nc * 4) != 0)
        ck_abort_msg("case %zu (m%d n%d k%d tb%d batch %d shared %d), %d threads: the step differs from the kernel", s,
                     m, n, k, tb, sc->batch, sc->shared, nth);
      if (!small) {
        double err = tu_rel_err(got, want, nc);
        ck_assert_msg(err <= 1e-5, "case %zu, %d threads: rel err %g", s, nth, err);
      }
      free(got);
    }
    /* the kernel off (as on a CPU without AVX2): OpenBLAS, within rounding */
    bool was = rt_gemm_small_enable(false);
    float *got = run_step(2, &g, na, nb, nc, a, b, c0);
    rt_gemm_small_enable(was);
    double err = tu_rel_err(got, want, nc);
    ck_assert_msg(err <= 1e-5, "case %zu, kernel off: rel err %g", s, err);
    free(got);
    free(a);
    free(b);
    free(c0);
    free(want);
  }
}
END_TEST

/* ---- benchmark ---- */

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* One thread, weights hot in cache: the decode step's GEMMs at batch 8 of
 * the GPT bench config, the kernel against cblas_sgemm (best of 5). */
START_TEST(benchmark) {
  if (!have_avx2()) return;
  static const int shape[][5] = {/* m, n, k, trans_b, batch */
                                 {8, 768, 256, 1, 1}, {8, 256, 256, 1, 1}, {8, 1024, 256, 1, 1}, {8, 256, 1024, 1, 1},
                                 {8, 1568, 256, 1, 1}, {1, 95, 32, 1, 64},  {1, 32, 95, 0, 64}};
  openblas_set_num_threads(1);
  rng_state = 5;
  for (size_t s = 0; s < sizeof shape / sizeof shape[0]; s++) {
    int m = shape[s][0], n = shape[s][1], k = shape[s][2], tb = shape[s][3], batch = shape[s][4];
    Item t = item_new(m, n, k, tb, 0, 1, 0, false);
    double best[2] = {1e30, 1e30};
    int reps = 20;
    for (int trial = 0; trial < 5; trial++)
      for (int w = 0; w < 2; w++) {
        double t0 = now_us();
        for (int r = 0; r < reps; r++)
          for (int i = 0; i < batch; i++) /* the same item again: the cost of the call */
            if (w) rt_gemm_small(&t.g, t.a, t.b, t.c, 0, n);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, t.a, t.g.lda,
                             t.b, t.g.ldb, 0, t.c, t.g.ldc);
        double us = (now_us() - t0) / reps;
        if (us < best[w]) best[w] = us;
      }
    double gflop = 2.0 * m * n * k * batch / 1e3;
    printf("bench: %dx%dx%d trans_b %d x%d: OpenBLAS %.1f us (%.1f GFLOP/s), small-M kernel %.1f us (%.1f GFLOP/s)\n",
           m, n, k, tb, batch, best[0], gflop / best[0], best[1], gflop / best[1]);
    item_free(&t);
  }
}
END_TEST

/* rt_blas_better_core (blas_core.h): a user's OPENBLAS_CORETYPE always
 * stands; otherwise a core is named exactly when OpenBLAS fell back to
 * Prescott on a CPU with AVX2 + FMA, and it is the best the CPU supports. */
START_TEST(blas_core_choice) {
  char *corename = openblas_get_corename();
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  ck_assert_ptr_null(rt_blas_better_core());
  unsetenv("OPENBLAS_CORETYPE");
  const char *want = NULL;
  __builtin_cpu_init();
  if (!strcmp(corename, "Prescott")) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      want = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      want = "Haswell";
  }
  const char *got = rt_blas_better_core();
  printf("OpenBLAS core %s: dal asks for %s\n", corename, got ? got : "(its choice)");
  if (want) ck_assert_str_eq(got, want);
  else ck_assert_ptr_null(got);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gemm_small");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, env_turns_it_off);
  tcase_add_test(tc, kernel_matches_naive_matmul);
  tcase_add_test(tc, kernel_matches_on_larger_shapes);
  tcase_add_test(tc, column_splits_are_bit_identical);
  tcase_add_test(tc, fits_small_m_only);
  tcase_add_test(tc, scheduler_steps_match_the_kernel);
  tcase_add_test(tc, blas_core_choice);
  tcase_add_test(tc, benchmark);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
