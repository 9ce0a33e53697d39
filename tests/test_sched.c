/* test_sched.c — the thread pool and the plan scheduler: every thread runs
 * each job once, chunks cover every index once for many thread counts and
 * ranges, results are identical across runs and thread counts, GEMM steps
 * match a naive matmul (transposes, batches with strides, shared B, both
 * OpenBLAS modes), copies, input/output/state binding, errors, DAL_THREADS,
 * and a small benchmark (printed, not asserted). */
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ir/op_eval.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/rt_sched.h"
#include "runtime/core/tensor.h"
#include "runtime/core/threadpool.h"
#include "tests/util.h"

/* ---- helpers ---- */

static RtPool *new_pool(int n) {
  RtErr e = {{0}};
  RtPool *p = rt_pool_new(n, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  ck_assert_int_eq(rt_pool_threads(p), n);
  return p;
}

static RtTensor *new_tensor(RtDType t, int rank, const int64_t *dim) {
  RtErr e = {{0}};
  RtTensor *x = rt_tensor_new(t, rank, dim, &e);
  ck_assert_msg(x != NULL, "%s", e.msg);
  return x;
}

static RtBuffer buffer(RtBufKind kind, RtDType t, int rank, const int64_t *dim, const char *name) {
  RtBuffer b = {.kind = kind, .dtype = t, .rank = rank, .name = name};
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= (b.dim[i] = dim[i]);
  b.bytes = n * (int64_t)rt_dtype_size(t);
  return b;
}

static RtBuffer arena_at(RtDType t, int rank, const int64_t *dim, int64_t offset) {
  RtBuffer b = buffer(RT_BUF_ARENA, t, rank, dim, "tmp");
  b.offset = offset;
  return b;
}

static RtBuffer io(RtBufKind kind, int index, RtDType t, int rank, const int64_t *dim, const char *name) {
  RtBuffer b = buffer(kind, t, rank, dim, name);
  b.index = index;
  return b;
}

static RtStep kernel_step(int kernel, int64_t range, int narg, const int *arg) {
  return (RtStep){.kind = RT_STEP_KERNEL, .name = "k", .kernel = kernel, .range = range, .narg = narg, .arg = arg};
}

static void run_ok(const RtPlan *p, RtPool *pool, void *arena, RtTensor *const *in, RtTensor **out, RtTensorList *st) {
  RtErr e = {{0}};
  ck_assert_msg(rt_plan_run(p, pool, arena, in, out, st, NULL, &e) == 0, "%s", e.msg);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* ---- the pool ---- */

static atomic_int calls[RT_MAX_THREADS];
static int seen_nth[RT_MAX_THREADS];
static int stamp[RT_MAX_THREADS];

typedef struct {
  int round;
} Round;

static void note_thread(void *arg, int ith, int nth) {
  atomic_fetch_add(&calls[ith], 1);
  seen_nth[ith] = nth;
  stamp[ith] = ((Round *)arg)->round; /* plain writes: the pool must publish them */
}

START_TEST(pool_runs_each_thread_once_per_job) {
  for (int n = 1; n <= 5; n++) {
    RtPool *p = new_pool(n);
    for (int i = 0; i < n; i++) atomic_store(&calls[i], 0);
    for (int r = 1; r <= 300; r++) {
      Round round = {r};
      if (r % 60 == 0) usleep(1000); /* past the spin time: the workers sleep */
      if (r % 45 == 0) rt_pool_park(p);
      rt_pool_run(p, note_thread, &round);
      for (int i = 0; i < n; i++) {
        if (atomic_load(&calls[i]) != r || seen_nth[i] != n || stamp[i] != r)
          ck_abort_msg("%d threads, job %d: thread %d ran %d times (nth %d, stamp %d)", n, r, i,
                       atomic_load(&calls[i]), seen_nth[i], stamp[i]);
      }
    }
    rt_pool_free(p);
  }
  rt_pool_free(NULL);
  ck_assert_int_eq(rt_pool_threads(NULL), 1);
  Round round = {7};
  stamp[0] = 0;
  rt_pool_run(NULL, note_thread, &round); /* no pool: the caller alone */
  ck_assert_int_eq(stamp[0], 7);
}
END_TEST

/* rt_pool_run_n: every call number once per job, for call counts above and
 * below the thread count that change from job to job (a thread still
 * claiming in the previous job must never run a call of the next one). */
static atomic_int ncalls_seen[64];
static atomic_int bad_nth;

static void note_call(void *arg, int ith, int nth) {
  if (nth != *(int *)arg || ith < 0 || ith >= nth) atomic_store(&bad_nth, 1);
  else atomic_fetch_add(&ncalls_seen[ith], 1);
}

START_TEST(pool_runs_n_calls_once_each) {
  for (int nth = 1; nth <= 3; nth++) {
    RtPool *p = new_pool(nth);
    for (int job = 0; job < 2000; job++) {
      int n = 1 + (job * 7 + nth) % 37;
      for (int i = 0; i < n; i++) atomic_store(&ncalls_seen[i], 0);
      atomic_store(&bad_nth, 0);
      if (job % 500 == 499) usleep(1000); /* workers asleep */
      rt_pool_run_n(p, note_call, &n, n);
      ck_assert_msg(!atomic_load(&bad_nth), "%d threads, job %d: a call saw the wrong count", nth, job);
      for (int i = 0; i < n; i++)
        if (atomic_load(&ncalls_seen[i]) != 1)
          ck_abort_msg("%d threads, job %d (%d calls): call %d ran %d times", nth, job, n, i,
                       atomic_load(&ncalls_seen[i]));
    }
    int zero = 0;
    rt_pool_run_n(p, note_call, &zero, 0); /* no calls: nothing runs */
    ck_assert(!atomic_load(&bad_nth));
    rt_pool_free(p);
  }
  int n = 5;
  for (int i = 0; i < n; i++) atomic_store(&ncalls_seen[i], 0);
  rt_pool_run_n(NULL, note_call, &n, n); /* no pool: all on the caller */
  for (int i = 0; i < n; i++) ck_assert_int_eq(atomic_load(&ncalls_seen[i]), 1);
}
END_TEST

START_TEST(thread_count_from_dal_threads) {
  RtErr e = {{0}};
  unsetenv("DAL_THREADS");
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  ck_assert_int_eq(rt_threads_default(&e), cores < 1 ? 1 : cores);
  setenv("DAL_THREADS", "3", 1);
  ck_assert_int_eq(rt_threads_default(&e), 3);
  RtPool *p = rt_pool_new(0, &e);
  ck_assert_int_eq(rt_pool_threads(p), 3);
  rt_pool_free(p);
  p = rt_pool_new(2, &e); /* an explicit count (a flag) wins over the variable */
  ck_assert_int_eq(rt_pool_threads(p), 2);
  rt_pool_free(p);
  const char *bad[] = {"0", "abc", "3x", "", "999", "-2"};
  for (int i = 0; i < 6; i++) {
    setenv("DAL_THREADS", bad[i], 1);
    memset(e.msg, 0, sizeof e.msg);
    ck_assert_int_eq(rt_threads_default(&e), -1);
    ck_assert_ptr_null(rt_pool_new(0, &e));
    char want[64];
    snprintf(want, sizeof want, "DAL_THREADS='%s': expected a thread count from 1 to", bad[i]);
    ck_assert_msg(strstr(e.msg, want) != NULL, "%s", e.msg);
  }
  unsetenv("DAL_THREADS");
  ck_assert_ptr_null(rt_pool_new(-1, &e));
  ck_assert_ptr_nonnull(strstr(e.msg, "thread pool: -1 threads requested"));
}
END_TEST

/* ---- chunking ---- */

static atomic_int ncall;
static int64_t call_lo[64], call_hi[64];

/* args[0]: i32 [range], every visited index incremented. */
static void k_count(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  int32_t *c = args[0];
  for (int64_t i = begin; i < end; i++) c[i]++;
  int k = atomic_fetch_add(&ncall, 1);
  if (k < 64) call_lo[k] = begin, call_hi[k] = end;
}

START_TEST(chunks_cover_every_index_once) {
  const int nths[] = {1, 2, 3, 4, 7};
  const int64_t ranges[] = {1, 2, 3, 5, 6, 7, 64, 1001};
  RtKernelFn kern[] = {k_count};
  for (int a = 0; a < 5; a++) {
    RtPool *pool = new_pool(nths[a]);
    for (int r = 0; r < 8; r++) {
      int64_t n = ranges[r];
      RtBuffer b[] = {io(RT_BUF_OUTPUT, 0, RT_I32, 1, &n, "count")};
      int arg[] = {0};
      RtStep st[] = {kernel_step(0, n, 1, arg)};
      RtPlan p = {.name = "count", .nbuf = 1, .buf = b, .nstep = 1, .step = st, .nkernel = 1, .kernel = kern,
                  .noutput = 1};
      RtTensor *out[1] = {NULL};
      atomic_store(&ncall, 0);
      run_ok(&p, pool, NULL, NULL, out, NULL);
      for (int64_t i = 0; i < n; i++)
        if (rt_i32(out[0])[i] != 1)
          ck_abort_msg("%d threads, range %lld: index %lld visited %d times", nths[a], (long long)n, (long long)i,
                       rt_i32(out[0])[i]);
      /* The calls are exactly the chunks rt_chunk gives for 4 pieces per
       * thread (one piece without other threads), none empty. */
      int64_t pieces = nths[a] == 1 ? 1 : 4 * nths[a] < n ? 4 * nths[a] : n;
      ck_assert_int_eq(rt_sched_calls(pool, n, 4), pieces);
      for (int t = 0; t < pieces; t++) {
        int64_t lo, hi;
        rt_chunk(n, t, (int)pieces, &lo, &hi);
        ck_assert(lo < hi);
        bool found = false;
        for (int k = 0; k < atomic_load(&ncall); k++) found |= call_lo[k] == lo && call_hi[k] == hi;
        ck_assert_msg(found, "%d threads, range %lld: chunk %d [%lld, %lld) not called", nths[a], (long long)n, t,
                      (long long)lo, (long long)hi);
      }
      ck_assert_int_eq(atomic_load(&ncall), pieces);
      rt_tensor_free(out[0]);
    }
    rt_pool_free(pool);
  }
  /* rt_chunk itself: contiguous, in order, sizes within one of each other. */
  for (int nth = 1; nth <= 9; nth++)
    for (int64_t n = 0; n < 40; n++) {
      int64_t expect = 0;
      for (int t = 0; t < nth; t++) {
        int64_t lo, hi;
        rt_chunk(n, t, nth, &lo, &hi);
        ck_assert_int_eq(lo, expect);
        ck_assert(hi - lo == n / nth || hi - lo == n / nth + 1);
        expect = hi;
      }
      ck_assert_int_eq(expect, n);
    }
}
END_TEST

/* ---- determinism ---- */

enum { ROWS = 173, COLS = 61 };

/* a = tanh(1.3 x) + x^2 elementwise; args: x, a (f32 [ROWS*COLS]). */
static void k_map(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *x = args[0];
  float *a = args[1];
  for (int64_t i = begin; i < end; i++) a[i] = tanhf(1.3f * x[i]) + x[i] * x[i];
}

/* Row softmax; one iteration per row; args: a, y (f32 [ROWS, COLS]). */
static void k_softmax(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *a = args[0];
  float *y = args[1];
  for (int64_t r = begin; r < end; r++) {
    float m = a[r * COLS], s = 0;
    for (int c = 1; c < COLS; c++) m = fmaxf(m, a[r * COLS + c]);
    for (int c = 0; c < COLS; c++) s += (y[r * COLS + c] = expf(a[r * COLS + c] - m));
    for (int c = 0; c < COLS; c++) y[r * COLS + c] /= s;
  }
}

START_TEST(results_identical_across_runs_and_thread_counts) {
  int64_t dim[2] = {ROWS, COLS};
  RtTensor *x = new_tensor(RT_F32, 2, dim);
  for (int i = 0; i < ROWS * COLS; i++) rt_f32(x)[i] = sinf(0.37f * (float)i) * 3.0f;
  int64_t abytes = (int64_t)ROWS * COLS * 4;
  RtBuffer b[] = {io(RT_BUF_INPUT, 0, RT_F32, 2, dim, "x"), arena_at(RT_F32, 2, dim, 0),
                  io(RT_BUF_OUTPUT, 0, RT_F32, 2, dim, "y")};
  int a0[] = {0, 1}, a1[] = {1, 2};
  RtStep st[] = {kernel_step(0, ROWS * COLS, 2, a0), kernel_step(1, ROWS, 2, a1)};
  RtKernelFn kern[] = {k_map, k_softmax};
  RtPlan p = {.name = "det", .nbuf = 3, .buf = b, .nstep = 2, .step = st, .nkernel = 2, .kernel = kern,
              .arena_bytes = abytes, .ninput = 1, .noutput = 1};
  void *arena = rt_arena_new(abytes, NULL);
  RtTensor *ref = NULL;
  for (int nth = 1; nth <= 4; nth++) {
    RtPool *pool = new_pool(nth);
    for (int rep = 0; rep < 2; rep++) {
      RtTensor *y = NULL;
      memset(arena, 0xff, (size_t)abytes);
      run_ok(&p, pool, arena, &x, &y, NULL);
      if (!ref) {
        ref = y;
        continue;
      }
      ck_assert_msg(memcmp(ref->data, y->data, rt_tensor_bytes(y)) == 0, "%d threads, run %d differs", nth, rep);
      rt_tensor_free(y);
    }
    rt_pool_free(pool);
  }
  /* and the values are right (softmax rows sum to 1) */
  for (int r = 0; r < ROWS; r++) {
    double s = 0;
    for (int c = 0; c < COLS; c++) s += rt_f32(ref)[r * COLS + c];
    ck_assert_double_eq_tol(s, 1.0, 1e-5);
  }
  rt_tensor_free(ref);
  rt_tensor_free(x);
  rt_arena_free(arena);
}
END_TEST

/* ---- GEMM ---- */

typedef struct {
  int m, n, k, trans_a, trans_b, batch;
  int pad;         /* extra leading-dimension columns */
  bool shared_b;   /* stride_b 0 */
  bool shared_c;   /* stride_c 0, beta 1: the items accumulate into one C */
} GemmCase;

static float pattern(int64_t i, int salt) { return (float)((i * 37 + salt * 11) % 23) * 0.125f - 1.375f; }

/* Runs one GEMM step through the scheduler and checks it against a naive
 * double-precision matmul. */
static void check_gemm(const GemmCase *c, RtPool *pool, RtGemmMode mode) {
  int ra = c->trans_a ? c->k : c->m, ca = c->trans_a ? c->m : c->k;
  int rb = c->trans_b ? c->n : c->k, cb = c->trans_b ? c->k : c->n;
  RtGemm g = {.batch = c->batch, .trans_a = c->trans_a, .trans_b = c->trans_b, .m = c->m, .n = c->n, .k = c->k,
              .lda = ca + c->pad, .ldb = cb + c->pad, .ldc = c->n + c->pad, .alpha = 0.75f, .beta = 0.5f};
  g.stride_a = (int64_t)ra * g.lda + 5; /* gaps between batch items too */
  g.stride_b = c->shared_b ? 0 : (int64_t)rb * g.ldb + 3;
  g.stride_c = c->shared_c ? 0 : (int64_t)c->m * g.ldc + 7;
  if (c->shared_c) g.beta = 1;
  int64_t na = g.stride_a * c->batch, nb = c->shared_b ? (int64_t)rb * g.ldb : g.stride_b * c->batch,
          nc = c->shared_c ? (int64_t)c->m * g.ldc : g.stride_c * c->batch;
  RtTensor *a = new_tensor(RT_F32, 1, &na), *b = new_tensor(RT_F32, 1, &nb), *out = new_tensor(RT_F32, 1, &nc);
  for (int64_t i = 0; i < na; i++) rt_f32(a)[i] = pattern(i, 1);
  for (int64_t i = 0; i < nb; i++) rt_f32(b)[i] = pattern(i, 2);
  for (int64_t i = 0; i < nc; i++) rt_f32(out)[i] = pattern(i, 3);
  float *want = malloc((size_t)nc * sizeof *want);
  memcpy(want, out->data, (size_t)nc * sizeof *want);
  for (int t = 0; t < c->batch; t++) {
    const float *A = rt_f32(a) + t * g.stride_a, *B = rt_f32(b) + t * g.stride_b;
    float *C = want + t * g.stride_c;
    for (int i = 0; i < c->m; i++)
      for (int j = 0; j < c->n; j++) {
        double s = 0;
        for (int l = 0; l < c->k; l++)
          s += (double)(c->trans_a ? A[l * g.lda + i] : A[i * g.lda + l]) *
               (c->trans_b ? B[j * g.ldb + l] : B[l * g.ldb + j]);
        C[i * g.ldc + j] = (float)(0.75 * s + g.beta * C[i * g.ldc + j]);
      }
  }
  RtBuffer bufs[] = {io(RT_BUF_INPUT, 0, RT_F32, 1, &na, "a"), io(RT_BUF_INPUT, 1, RT_F32, 1, &nb, "b"),
                     io(RT_BUF_OUTPUT, 0, RT_F32, 1, &nc, "c")};
  int arg[] = {0, 1, 2};
  RtStep st = {.kind = RT_STEP_GEMM, .name = "gemm", .narg = 3, .arg = arg, .gemm = g};
  RtPlan p = {.name = "gemm", .nbuf = 3, .buf = bufs, .nstep = 1, .step = &st, .ninput = 2, .noutput = 1};
  RtTensor *in[] = {a, b};
  rt_sched_set_gemm_mode(mode);
  run_ok(&p, pool, NULL, in, &out, NULL);
  rt_sched_set_gemm_mode(RT_GEMM_SPLIT);
  double err = tu_rel_err(rt_f32(out), want, nc);
  ck_assert_msg(err <= 1e-5, "gemm m%d n%d k%d ta%d tb%d batch%d shared b%d c%d, %d threads, mode %d: rel err %g",
                c->m, c->n, c->k, c->trans_a, c->trans_b, c->batch, c->shared_b, c->shared_c, rt_pool_threads(pool),
                mode, err);
  free(want);
  rt_tensor_free(a);
  rt_tensor_free(b);
  rt_tensor_free(out);
}

START_TEST(gemm_matches_naive_matmul) {
  GemmCase cases[] = {
      /* m, n, k, trans_a, trans_b, batch, pad, shared_b, shared_c */
      {37, 29, 19, 0, 0, 1, 0, false, false}, {37, 29, 19, 1, 0, 1, 2, false, false},
      {37, 29, 19, 0, 1, 3, 1, false, false}, {37, 29, 19, 1, 1, 3, 0, true, false},
      {200, 70, 64, 0, 0, 1, 0, false, false}, {200, 70, 64, 1, 1, 1, 3, false, false}, /* split by rows */
      {8, 300, 40, 0, 0, 1, 0, false, false},  {8, 300, 40, 1, 1, 2, 1, true, false},   /* split by columns */
      {5, 7, 3, 0, 1, 8, 0, false, false},                                              /* many small items */
      {64, 48, 32, 0, 0, 3, 0, true, false},   {64, 48, 32, 1, 0, 3, 2, false, false},  /* 3 items, 2 threads */
      {64, 48, 32, 0, 0, 8, 0, false, true},   {20, 90, 64, 1, 0, 6, 1, false, true},   /* accumulating */
  };

  int ncase = (int)(sizeof cases / sizeof cases[0]);
  for (int nth = 1; nth <= 3; nth++) {
    RtPool *pool = new_pool(nth);
    for (int i = 0; i < ncase; i++) {
      check_gemm(&cases[i], pool, RT_GEMM_SPLIT);
      check_gemm(&cases[i], pool, RT_GEMM_BLAS);
    }
    rt_pool_free(pool);
  }
  check_gemm(&cases[4], NULL, RT_GEMM_SPLIT);
}
END_TEST

/* ---- binding, copies, state ---- */

/* t[r, :] = x[r, :] + w[r, :]; y[r, :] = t[r, :] * c; args: x w c t y ([4, 3], c [3]). */
static void k_add_scale(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  const float *x = args[0], *w = args[1], *c = args[2];
  float *t = args[3], *y = args[4];
  for (int64_t r = begin; r < end; r++)
    for (int j = 0; j < 3; j++) {
      t[r * 3 + j] = x[r * 3 + j] + w[r * 3 + j] + (float)ctx->step;
      y[r * 3 + j] = t[r * 3 + j] * c[j];
    }
}

static const float cdata[3] = {1, 2, -1};
static const int64_t d43[2] = {4, 3}, d3 = 3;

/* One step of "w <- x + w + step; returns (x + w + step) * c and a copy of w". */
static void binding_plan(RtBuffer *b, RtStep *st, RtPlan *p, RtKernelFn *kern) {
  static const int a0[] = {0, 1, 2, 3, 4}, a1[] = {3, 1}, a2[] = {1, 5};
  b[0] = io(RT_BUF_INPUT, 0, RT_F32, 2, d43, "x");
  b[1] = buffer(RT_BUF_STATE, RT_F32, 2, d43, "w");
  b[2] = buffer(RT_BUF_CONST, RT_F32, 1, &d3, "c");
  b[2].data = cdata;
  b[3] = arena_at(RT_F32, 2, d43, 64);
  b[4] = io(RT_BUF_OUTPUT, 0, RT_F32, 2, d43, "y");
  b[5] = io(RT_BUF_OUTPUT, 1, RT_F32, 2, d43, "w_new");
  st[0] = kernel_step(0, 4, 5, a0);
  st[1] = (RtStep){.kind = RT_STEP_COPY, .name = "update w", .narg = 2, .arg = a1};
  st[2] = (RtStep){.kind = RT_STEP_COPY, .name = "return w", .narg = 2, .arg = a2};
  kern[0] = k_add_scale;
  *p = (RtPlan){.name = "bind", .nbuf = 6, .buf = b, .nstep = 3, .step = st, .nkernel = 1, .kernel = kern,
                .arena_bytes = 128, .ninput = 1, .noutput = 2};
}

static RtTensorList *make_state(const char *other) {
  RtTensorList *l = rt_list_new();
  if (other) rt_list_put(l, other, new_tensor(RT_F32, 1, &d3));
  RtTensor *w = new_tensor(RT_F32, 2, d43);
  for (int i = 0; i < 12; i++) rt_f32(w)[i] = (float)i;
  rt_list_put(l, "w", w);
  rt_list_put(l, "zzz", new_tensor(RT_I32, 1, &d3));
  return l;
}

START_TEST(binds_inputs_outputs_state_and_constants) {
  RtBuffer b[6];
  RtStep st[3];
  RtPlan p;
  RtKernelFn kern[1];
  binding_plan(b, st, &p, kern);
  RtTensor *x = new_tensor(RT_F32, 2, d43);
  for (int i = 0; i < 12; i++) rt_f32(x)[i] = 0.5f * (float)i - 2;
  RtTensorList *state = make_state("aaa");
  RtTensor *y = new_tensor(RT_F32, 2, d43);
  RtTensor *out[2] = {y, NULL}; /* one given, one made by the run */
  void *arena = rt_arena_new(p.arena_bytes, NULL);
  RtPool *pool = new_pool(2);
  RtErr e = {{0}};
  RtRunCtx ctx = {.seed = 1, .step = 10};
  ck_assert_msg(rt_plan_run(&p, pool, arena, &x, out, state, &ctx, &e) == 0, "%s", e.msg);
  ck_assert_ptr_eq(out[0], y);
  ck_assert_ptr_nonnull(out[1]);
  const float *w = rt_f32(rt_list_get(state, "w"));
  for (int i = 0; i < 12; i++) {
    float t = (0.5f * (float)i - 2) + (float)i + 10;
    ck_assert_float_eq(w[i], t);
    ck_assert_float_eq(rt_f32(out[0])[i], t * cdata[i % 3]);
    ck_assert_float_eq(rt_f32(out[1])[i], t);
  }
  rt_tensor_free(out[0]);
  rt_tensor_free(out[1]);
  rt_tensor_free(x);
  rt_list_free(state);
  rt_arena_free(arena);
  rt_pool_free(pool);
}
END_TEST

/* A copy large enough to be split among the threads arrives whole; a copy
 * of a buffer onto itself does nothing. */
START_TEST(large_copies_split_among_threads) {
  int64_t n = (3 << 20) / 4 + 13, half = n / 2;
  RtBuffer b[] = {io(RT_BUF_INPUT, 0, RT_F32, 1, &n, "x"), io(RT_BUF_OUTPUT, 0, RT_F32, 1, &n, "y"),
                  buffer(RT_BUF_STATE, RT_F32, 1, &half, "lo"), buffer(RT_BUF_STATE, RT_F32, 1, &half, "lo")};
  int a0[] = {0, 1}, a1[] = {2, 3};
  RtStep st[] = {{.kind = RT_STEP_COPY, .name = "big", .narg = 2, .arg = a0},
                 {.kind = RT_STEP_COPY, .name = "same", .narg = 2, .arg = a1}};
  RtPlan p = {.name = "copies", .nbuf = 4, .buf = b, .nstep = 2, .step = st, .ninput = 1, .noutput = 1};
  RtTensor *x = new_tensor(RT_F32, 1, &n);
  for (int64_t i = 0; i < n; i++) rt_f32(x)[i] = (float)(i % 1000003);
  RtTensorList *state = rt_list_new();
  rt_list_put(state, "lo", new_tensor(RT_F32, 1, &half));
  for (int nth = 1; nth <= 3; nth++) {
    RtPool *pool = new_pool(nth);
    RtTensor *y = NULL;
    run_ok(&p, pool, NULL, &x, &y, state);
    ck_assert_msg(memcmp(y->data, x->data, (size_t)n * 4) == 0, "%d threads: the copy differs", nth);
    rt_tensor_free(y);
    rt_pool_free(pool);
  }
  rt_tensor_free(x);
  rt_list_free(state);
}
END_TEST

/* Every failure happens before the first step: nothing written, outputs
 * the run made are freed again. */
START_TEST(binding_errors) {
  RtBuffer b[6];
  RtStep st[3];
  RtPlan p;
  RtKernelFn kern[1];
  binding_plan(b, st, &p, kern);
  RtTensor *x = new_tensor(RT_F32, 2, d43);
  void *arena = rt_arena_new(p.arena_bytes, NULL);
  RtErr e;
  RtTensor *out[2] = {NULL, NULL};

  RtTensorList *no_w = rt_list_new();
  rt_list_put(no_w, "v", new_tensor(RT_F32, 2, d43));
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &x, out, no_w, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': state tensor 'w' not found");
  ck_assert(out[0] == NULL && out[1] == NULL);
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &x, out, NULL, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': state tensor 'w' not found");
  rt_list_free(no_w);

  RtTensorList *state = make_state(NULL);
  rt_list_put(state, "w", new_tensor(RT_F32, 1, &d3));
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &x, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': state tensor 'w' is f32[3], expected f32[4, 3]");
  rt_list_free(state);

  state = make_state(NULL);
  int64_t d44[2] = {4, 4};
  RtTensor *x44 = new_tensor(RT_F32, 2, d44);
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &x44, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': input 0 'x' is f32[4, 4], expected f32[4, 3]");
  RtTensor *none = NULL;
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &none, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': input 0 'x' is missing");
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, NULL, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': input 0 'x' is missing");
  RtTensor *wrong_out[2] = {NULL, new_tensor(RT_I32, 2, d43)};
  ck_assert_int_eq(rt_plan_run(&p, NULL, arena, &x, wrong_out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': output 1 'w_new' is i32[4, 3], expected f32[4, 3]");
  ck_assert_ptr_null(wrong_out[0]); /* made, then freed */
  rt_tensor_free(wrong_out[1]);
  ck_assert_int_eq(rt_plan_run(&p, NULL, NULL, &x, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': the arena of 128 bytes is missing");
  ck_assert_int_eq(rt_plan_run(&p, NULL, (char *)arena + 4, &x, out, state, NULL, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': the arena of 128 bytes is not 64-byte aligned");
  for (int i = 0; i < 12; i++) ck_assert_float_eq(rt_f32(rt_list_get(state, "w"))[i], (float)i); /* untouched */
  rt_list_free(state);
  rt_tensor_free(x44);
  rt_tensor_free(x);
  rt_arena_free(arena);
}
END_TEST

START_TEST(malformed_plans_are_errors) {
  RtBuffer b[6];
  RtStep st[3];
  RtPlan p;
  RtKernelFn kern[1];
  binding_plan(b, st, &p, kern);
  RtErr e;
  ck_assert_int_eq(rt_plan_check(&p, &e), 0);

  int bad_arg[] = {3, 9};
  st[1].arg = bad_arg;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 1 'update w': argument 1 is buffer 9 of 6");
  binding_plan(b, st, &p, kern);

  b[3].offset = 96;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_ptr_nonnull(strstr(e.msg, "buffer 3 'tmp' at arena offset 96 (48 bytes) is misaligned or outside"));
  binding_plan(b, st, &p, kern);

  b[2].bytes = 8;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': buffer 2 'c' has 8 bytes for 3 elements of f32");
  binding_plan(b, st, &p, kern);

  st[0].kernel = 1;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 0 'k': kernel 1 of 1 is missing");
  binding_plan(b, st, &p, kern);

  st[0].range = 0;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 0 'k': parallel range 0 (at least 1)");
  binding_plan(b, st, &p, kern);

  int copy_small[] = {2, 3};
  st[1].arg = copy_small;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 1 'update w': copy of 12 bytes into 48");
  binding_plan(b, st, &p, kern);

  b[4].index = 2;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': buffer 4 'y' is output 2 of 2");
  binding_plan(b, st, &p, kern);

  /* A GEMM reading past its operand: 4x3 @ 3x4 from [4, 3] buffers is fine,
   * 4x4 @ 4x3 is not. */
  int garg[] = {0, 1, 3};
  st[1] = (RtStep){.kind = RT_STEP_GEMM, .name = "mm", .narg = 3, .arg = garg,
                   .gemm = {.batch = 1, .m = 4, .n = 3, .k = 3, .lda = 3, .ldb = 3, .ldc = 3, .alpha = 1}};
  ck_assert_int_eq(rt_plan_check(&p, &e), 0);
  st[1].gemm.k = 4, st[1].gemm.lda = 4;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 1 'mm': GEMM operand a reaches element 16 of buffer 'x' (12 elements)");
  st[1].gemm.k = 3, st[1].gemm.lda = 2;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_ptr_nonnull(strstr(e.msg, "GEMM operand a has leading dimension 2 for 3 columns"));
  st[1].gemm.lda = 3, st[1].gemm.batch = 2, st[1].gemm.stride_a = 0, st[1].gemm.stride_b = 0, st[1].gemm.stride_c = 0;
  ck_assert_int_eq(rt_plan_check(&p, &e), 0); /* overlapping C blocks: accumulation, allowed */
  st[1].gemm.stride_b = 4;
  ck_assert_int_eq(rt_plan_check(&p, &e), -1);
  ck_assert_str_eq(e.msg, "plan 'bind': step 1 'mm': GEMM operand b reaches element 13 of buffer 'w' (12 elements)");
  ck_assert_int_eq(rt_plan_check(NULL, &e), -1);
}
END_TEST

/* ---- DAL_PROFILE ---- */

/* The report of what ran, read back from a temporary file. */
static char *profile_report(void) {
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  rt_prof_report(f);
  long n = ftell(f);
  char *text = calloc((size_t)n + 1, 1);
  rewind(f);
  ck_assert_int_eq((long)fread(text, 1, (size_t)n, f), n);
  fclose(f);
  return text;
}

/* binding_plan with its kernel named, an input, state and an arena: what
 * the profile tests run (times runs at a go). */
typedef struct {
  RtBuffer b[6];
  RtStep st[3];
  RtPlan p;
  RtKernelFn kern[1];
  const char *kname[1];
  RtTensor *x, *out[2];
  RtTensorList *state;
  void *arena;
} ProfRun;

static void prof_init(ProfRun *r) {
  binding_plan(r->b, r->st, &r->p, r->kern);
  r->kname[0] = "t_k7_add_scale";
  r->p.kernel_name = r->kname;
  r->x = new_tensor(RT_F32, 2, d43);
  r->state = make_state(NULL);
  r->arena = rt_arena_new(r->p.arena_bytes, NULL);
  r->out[0] = r->out[1] = NULL;
}

static void prof_runs(ProfRun *r, int times) {
  for (int i = 0; i < times; i++) run_ok(&r->p, NULL, r->arena, &r->x, r->out, r->state);
}

static void prof_free(ProfRun *r) {
  rt_tensor_free(r->out[0]);
  rt_tensor_free(r->out[1]);
  rt_tensor_free(r->x);
  rt_list_free(r->state);
  rt_arena_free(r->arena);
}

START_TEST(profile_counts_steps_and_gemm_flops) {
  rt_sched_set_profile(0);
  free(profile_report()); /* start empty */
  ProfRun pr;
  prof_init(&pr);
  prof_runs(&pr, 1); /* not profiled */
  char *off = profile_report();
  ck_assert_msg(strstr(off, "no plan steps ran"), "%s", off);
  free(off);

  rt_sched_set_profile(1);
  prof_runs(&pr, 3);
  /* a 256x256x256 GEMM, twice */
  int64_t d64[2] = {256, 256};
  RtBuffer gb[] = {buffer(RT_BUF_STATE, RT_F32, 2, d64, "w"), arena_at(RT_F32, 2, d64, 0),
                   arena_at(RT_F32, 2, d64, 256 * 256 * 4)};
  int garg[] = {0, 1, 2};
  RtStep gs = {.kind = RT_STEP_GEMM, .name = "mm", .narg = 3, .arg = garg,
               .gemm = {.batch = 1, .m = 256, .n = 256, .k = 256, .lda = 256, .ldb = 256, .ldc = 256, .alpha = 1}};
  RtPlan gp = {.name = "gemmplan", .nbuf = 3, .buf = gb, .nstep = 1, .step = &gs, .arena_bytes = 2 * 256 * 256 * 4};
  RtTensorList *gstate = rt_list_new();
  rt_list_put(gstate, "w", new_tensor(RT_F32, 2, d64));
  void *garena = rt_arena_new(gp.arena_bytes, NULL);
  memset(garena, 0, (size_t)gp.arena_bytes);
  for (int r = 0; r < 2; r++) run_ok(&gp, NULL, garena, NULL, NULL, gstate);
  rt_sched_set_profile(0);
  char *rep = profile_report();
  ck_assert_msg(strstr(rep, "5 plan run(s)"), "%s", rep);
  /* one row per kernel, copy reason and GEMM shape, with its call count */
  const char *want[] = {"bind: t_k7_add_scale [4]", "bind: copy update w (48 bytes)", "bind: copy return w",
                        "gemmplan: mm 256x256x256 x1", "add_scale", "by category:", "by step:"};
  for (int i = 0; i < (int)(sizeof want / sizeof *want); i++)
    ck_assert_msg(strstr(rep, want[i]), "no '%s' in:\n%s", want[i], rep);
  const char *k = strstr(rep, "bind: t_k7_add_scale");
  const char *line = k;
  while (line > rep && line[-1] != '\n') line--;
  double total, share, per;
  long calls;
  ck_assert_int_eq(sscanf(line, "%lf %lf%% %ld %lf", &total, &share, &calls, &per), 4);
  ck_assert_int_eq(calls, 3);
  /* the GEMM row has a GFLOP/s column: 2 * 256^3 flops per call over its time
   * (printed to 0.1 ms, so loosely) */
  const char *g = strstr(rep, "gemmplan: mm");
  line = g;
  while (line > rep && line[-1] != '\n') line--;
  double gflops;
  ck_assert_int_eq(sscanf(line, "%lf %lf%% %ld %lf %lf", &total, &share, &calls, &per, &gflops), 5);
  ck_assert_int_eq(calls, 2);
  ck_assert(gflops > 0 && total > 0);
  double want_gflops = 2 * 2.0 * 256 * 256 * 256 / (total * 1e6);
  ck_assert_msg(gflops > 0.5 * want_gflops && gflops < 2 * want_gflops, "%g GFLOP/s, %g ms", gflops, total);
  free(rep);
  prof_free(&pr);
  rt_list_free(gstate);
  rt_arena_free(garena);
}
END_TEST

/* rt_prof_clear forgets the runs so far (a benchmark's warm-up): only the
 * runs after it are counted. */
START_TEST(profile_clear_drops_earlier_runs) {
  rt_sched_set_profile(0);
  free(profile_report());
  ProfRun pr;
  prof_init(&pr);
  rt_sched_set_profile(1);
  prof_runs(&pr, 4);
  rt_prof_clear();
  prof_runs(&pr, 2);
  rt_sched_set_profile(0);
  char *rep = profile_report();
  ck_assert_msg(strstr(rep, "2 plan run(s)"), "%s", rep);
  const char *line = strstr(rep, "bind: t_k7_add_scale");
  ck_assert_ptr_nonnull(line);
  while (line > rep && line[-1] != '\n') line--;
  double total, share, per;
  long calls;
  ck_assert_int_eq(sscanf(line, "%lf %lf%% %ld %lf", &total, &share, &calls, &per), 4);
  ck_assert_int_eq(calls, 2);
  free(rep);
  rt_prof_clear(); /* on an empty profile: nothing to drop */
  char *empty = profile_report();
  ck_assert_msg(strstr(empty, "no plan steps ran"), "%s", empty);
  free(empty);
  prof_free(&pr);
}
END_TEST

/* ---- benchmark (printed, not asserted) ---- */

/* y = x + 1 over [begin, end) of f32 rows of 1024; args: x, y. */
static void k_inc(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *x = args[0];
  float *y = args[1];
  for (int64_t i = begin * 1024; i < end * 1024; i++) y[i] = x[i] + 1;
}

/* tanh-GELU in place, rows of 1024; args: h. */
static void k_gelu(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  float *h = args[0];
  for (int64_t i = begin * 1024; i < end * 1024; i++) {
    float v = h[i];
    h[i] = 0.5f * v * (1 + tanhf((float)OP_EVAL_GELU_K * (v + (float)OP_EVAL_GELU_C * v * v * v)));
  }
}

/* x += y (residual), rows of 256; args: y, x. */
static void k_residual(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *y = args[0];
  float *x = args[1];
  for (int64_t i = begin * 256; i < end * 256; i++) x[i] += y[i];
}

/* Wall time of the best of 'reps' runs, in ms, and the process CPU time
 * of that run (all threads: work plus any spinning) in *cpu. */
static double time_plan(const RtPlan *p, RtPool *pool, void *arena, RtTensorList *state, int reps, double *cpu) {
  double best = 1e30;
  run_ok(p, pool, arena, NULL, NULL, state); /* warm-up */
  for (int r = 0; r < reps; r++) {
    double t = now_ms(), c = cpu_ms();
    run_ok(p, pool, arena, NULL, NULL, state);
    t = now_ms() - t, c = cpu_ms() - c;
    if (t < best) best = t, *cpu = c;
  }
  return best;
}

START_TEST(benchmark) {
  /* 1. Per-step cost: 1000 small kernel steps of 8 rows of 1024. */
  enum { NSTEP = 1000 };
  int64_t dim[2] = {8, 1024};
  RtBuffer b[] = {arena_at(RT_F32, 2, dim, 0), arena_at(RT_F32, 2, dim, 8 * 4096)};
  static RtStep steps[NSTEP];
  static int args[NSTEP][2];
  for (int s = 0; s < NSTEP; s++) {
    args[s][0] = s % 2, args[s][1] = 1 - s % 2;
    steps[s] = kernel_step(0, 8, 2, args[s]);
  }
  RtKernelFn kinc[] = {k_inc};
  RtPlan p = {.name = "steps", .nbuf = 2, .buf = b, .nstep = NSTEP, .step = steps, .nkernel = 1, .kernel = kinc,
              .arena_bytes = 2 * 8 * 4096};
  void *arena = rt_arena_new(p.arena_bytes, NULL);
  memset(arena, 0, (size_t)p.arena_bytes);
  for (int nth = 1; nth <= 2; nth++) {
    RtPool *pool = new_pool(nth);
    double cpu, ms = time_plan(&p, pool, arena, NULL, 3, &cpu);
    printf("bench: %d kernel steps of 8x1024 floats, %d thread%s: %.2f us/step (CPU %.2f us/step)\n", NSTEP, nth,
           nth > 1 ? "s" : "", ms * 1000 / NSTEP, cpu * 1000 / NSTEP);
    rt_pool_free(pool);
  }
  rt_arena_free(arena);

  /* 2. Two MLP blocks of a transformer: x [768, 256] -> GEMM [256, 1024] ->
   * GELU -> GEMM [1024, 256] -> residual, with OpenBLAS split by the pool
   * and with OpenBLAS's own threads; then the process CPU time over 30 ms of
   * idling afterwards (threads still spinning). */
  enum { T = 768, D = 256, F = 1024 };
  int64_t dx[2] = {T, D}, dw1[2] = {D, F}, dw2[2] = {F, D}, dh[2] = {T, F};
  RtBuffer mb[] = {buffer(RT_BUF_STATE, RT_F32, 2, dx, "x"),  buffer(RT_BUF_STATE, RT_F32, 2, dw1, "w1"),
                   buffer(RT_BUF_STATE, RT_F32, 2, dw2, "w2"), arena_at(RT_F32, 2, dh, 0),
                   arena_at(RT_F32, 2, dx, (int64_t)T * F * 4)};
  int g1[] = {0, 1, 3}, gl[] = {3}, g2[] = {3, 2, 4}, rs[] = {4, 0};
  RtStep ms[8];
  for (int l = 0; l < 2; l++) {
    ms[4 * l + 0] = (RtStep){.kind = RT_STEP_GEMM, .name = "fc1", .narg = 3, .arg = g1,
                             .gemm = {.batch = 1, .m = T, .n = F, .k = D, .lda = D, .ldb = F, .ldc = F, .alpha = 1}};
    ms[4 * l + 1] = kernel_step(0, T, 1, gl);
    ms[4 * l + 2] = (RtStep){.kind = RT_STEP_GEMM, .name = "fc2", .narg = 3, .arg = g2,
                             .gemm = {.batch = 1, .m = T, .n = D, .k = F, .lda = F, .ldb = D, .ldc = D, .alpha = 1}};
    ms[4 * l + 3] = kernel_step(1, T, 2, rs);
  }
  RtKernelFn mk[] = {k_gelu, k_residual};
  RtPlan mp = {.name = "mlp", .nbuf = 5, .buf = mb, .nstep = 8, .step = ms, .nkernel = 2, .kernel = mk,
               .arena_bytes = ((int64_t)T * F + (int64_t)T * D) * 4};
  RtTensorList *state = rt_list_new();
  rt_list_put(state, "x", new_tensor(RT_F32, 2, dx));
  rt_list_put(state, "w1", new_tensor(RT_F32, 2, dw1));
  rt_list_put(state, "w2", new_tensor(RT_F32, 2, dw2));
  void *marena = rt_arena_new(mp.arena_bytes, NULL);
  double gflop = 2.0 * 2 * 2 * T * D * F / 1e9;
  struct {
    int nth;
    RtGemmMode mode;
    const char *what;
  } cfg[] = {{1, RT_GEMM_SPLIT, "1 thread"},
             {2, RT_GEMM_SPLIT, "2 threads, GEMMs split by the pool (OpenBLAS 1 thread)"},
             {2, RT_GEMM_BLAS, "2 threads, OpenBLAS threads on the caller, pool parked"}};
  for (int c = 0; c < 3; c++) {
    RtPool *pool = new_pool(cfg[c].nth);
    rt_sched_set_gemm_mode(cfg[c].mode);
    double cpu, t = time_plan(&mp, pool, marena, state, 3, &cpu);
    double cpu0 = cpu_ms();
    usleep(30000);
    double idle = cpu_ms() - cpu0;
    printf("bench: 2 MLP blocks (%.2f GFLOP), %s: %.2f ms (%.1f GFLOP/s, CPU %.2f ms); CPU used in the next 30 ms "
           "idle: %.1f ms\n",
           gflop, cfg[c].what, t, gflop / t * 1e3, cpu, idle);
    rt_pool_free(pool);
  }
  rt_sched_set_gemm_mode(RT_GEMM_SPLIT);
  rt_arena_free(marena);
  rt_list_free(state);
}
END_TEST

int main(void) {
  Suite *s = suite_create("sched");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, pool_runs_each_thread_once_per_job);
  tcase_add_test(tc, pool_runs_n_calls_once_each);
  tcase_add_test(tc, thread_count_from_dal_threads);
  tcase_add_test(tc, chunks_cover_every_index_once);
  tcase_add_test(tc, results_identical_across_runs_and_thread_counts);
  tcase_add_test(tc, gemm_matches_naive_matmul);
  tcase_add_test(tc, binds_inputs_outputs_state_and_constants);
  tcase_add_test(tc, large_copies_split_among_threads);
  tcase_add_test(tc, binding_errors);
  tcase_add_test(tc, malformed_plans_are_errors);
  tcase_add_test(tc, profile_counts_steps_and_gemm_flops);
  tcase_add_test(tc, profile_clear_drops_earlier_runs);
  tcase_add_test(tc, benchmark);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
