/* test_plan_program.c — runtime/sched/plan_program.h: an RtProgram from static
 * plan tables (what AOT executables run), on hand-written plans whose
 * kernels are plain C functions:
 *
 *   affine(x: f32[4, 3]) -> y: f32[4, 2]      y = x @ lin.weight + c
 *       GEMM into an arena buffer, then a row kernel adding a constant
 *   sgd(x: f32[4, 3], opt.lr: f32) -> loss: f32     [train]
 *       loss = sum(lin.weight * colsum(x)); lin.weight -= lr * colsum(x)
 *       (a new value in the arena, copied over the state); opt.count += 1
 *
 * Checked: state layout and initialisation (rt_init_fill for parameters,
 * zeros otherwise, the seed), results, state updates, repeated runs, and
 * every table error being a message rather than a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/core/init.h"
#include "runtime/sched/plan_program.h"
#include "tests/util.h"

/* ---- kernels -------------------------------------------------------------------- */

static const float C_DATA[2] = {0.5f, -1.0f};

/* args: h (4, 2), c (2), y (4, 2); one row per iteration */
static void k_add_row(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *h = args[0], *c = args[1];
  float *y = args[2];
  for (int64_t r = begin; r < end; r++)
    for (int j = 0; j < 2; j++) y[r * 2 + j] = h[r * 2 + j] + c[j];
}

/* args: x (4, 3), lr (), w (3, 2), neww (3, 2), loss (); range 1 */
static void k_sgd(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx, (void)begin, (void)end;
  const float *x = args[0], *lr = args[1], *w = args[2];
  float *neww = args[3], *loss = args[4];
  float s = 0;
  for (int k = 0; k < 3; k++) {
    float col = 0;
    for (int r = 0; r < 4; r++) col += x[r * 3 + k];
    for (int j = 0; j < 2; j++) {
      s += w[k * 2 + j] * col;
      neww[k * 2 + j] = w[k * 2 + j] - *lr * col;
    }
  }
  *loss = s;
}

/* args: count (1), in place */
static void k_count(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx, (void)begin, (void)end;
  ((float *)args[0])[0] += 1;
}

/* ---- the tables ------------------------------------------------------------------ */

static const RtBuffer affine_buf[] = {
    {.kind = RT_BUF_INPUT, .dtype = RT_F32, .rank = 2, .dim = {4, 3}, .bytes = 48, .index = 0, .name = "x"},
    {.kind = RT_BUF_STATE, .dtype = RT_F32, .rank = 2, .dim = {3, 2}, .bytes = 24, .name = "lin.weight"},
    {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 2, .dim = {4, 2}, .bytes = 32, .offset = 64, .name = "h"},
    {.kind = RT_BUF_CONST, .dtype = RT_F32, .rank = 1, .dim = {2}, .bytes = 8, .name = "c", .data = C_DATA},
    {.kind = RT_BUF_OUTPUT, .dtype = RT_F32, .rank = 2, .dim = {4, 2}, .bytes = 32, .index = 0, .name = "y"},
};
static const int affine_arg[] = {0, 1, 2, 2, 3, 4};
static const RtKernelFn affine_kernel[] = {k_add_row};
static const char *const affine_kernel_name[] = {"k_add_row"};
static const RtStep affine_step[] = {
    {.kind = RT_STEP_GEMM, .name = "matmul", .kernel = -1, .narg = 3, .arg = affine_arg,
     .gemm = {.batch = 1, .m = 4, .n = 2, .k = 3, .lda = 3, .ldb = 2, .ldc = 2, .alpha = 1, .beta = 0}},
    {.kind = RT_STEP_KERNEL, .name = "add", .kernel = 0, .range = 4, .narg = 3, .arg = affine_arg + 3},
};
static const RtPlan affine_plan = {.name = "affine", .nbuf = 5, .buf = affine_buf, .nstep = 2, .step = affine_step,
                                   .nkernel = 1, .kernel = affine_kernel, .kernel_name = affine_kernel_name,
                                   .arena_bytes = 128, .ninput = 1, .noutput = 1};

static const RtBuffer sgd_buf[] = {
    {.kind = RT_BUF_INPUT, .dtype = RT_F32, .rank = 2, .dim = {4, 3}, .bytes = 48, .index = 0, .name = "x"},
    {.kind = RT_BUF_INPUT, .dtype = RT_F32, .rank = 0, .bytes = 4, .index = 1, .name = "opt.lr"},
    {.kind = RT_BUF_STATE, .dtype = RT_F32, .rank = 2, .dim = {3, 2}, .bytes = 24, .name = "lin.weight"},
    {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 2, .dim = {3, 2}, .bytes = 24, .offset = 0, .name = "new w"},
    {.kind = RT_BUF_OUTPUT, .dtype = RT_F32, .rank = 0, .bytes = 4, .index = 0, .name = "loss"},
    {.kind = RT_BUF_STATE, .dtype = RT_F32, .rank = 1, .dim = {1}, .bytes = 4, .name = "opt.count"},
};
static const int sgd_arg[] = {0, 1, 2, 3, 4, 3, 2, 5};
static const RtKernelFn sgd_kernel[] = {k_sgd, k_count};
static const char *const sgd_kernel_name[] = {"k_sgd", "k_count"};
static const RtStep sgd_step[] = {
    {.kind = RT_STEP_KERNEL, .name = "sgd", .kernel = 0, .range = 1, .narg = 5, .arg = sgd_arg},
    {.kind = RT_STEP_COPY, .name = "update", .kernel = -1, .narg = 2, .arg = sgd_arg + 5},
    {.kind = RT_STEP_KERNEL, .name = "count", .kernel = 1, .range = 1, .narg = 1, .arg = sgd_arg + 7},
};
static const RtPlan sgd_plan = {.name = "sgd", .nbuf = 6, .buf = sgd_buf, .nstep = 3, .step = sgd_step,
                                .nkernel = 2, .kernel = sgd_kernel, .kernel_name = sgd_kernel_name,
                                .arena_bytes = 64, .ninput = 2, .noutput = 1};

static const RtArgSpec affine_in[] = {{"x", RT_F32, 2, {4, 3}}};
static const RtArgSpec affine_out[] = {{"affine", RT_F32, 2, {4, 2}}};
static const RtArgSpec sgd_in[] = {{"x", RT_F32, 2, {4, 3}}, {RT_LR_INPUT, RT_F32, 0, {0}}};
static const RtArgSpec sgd_out[] = {{"sgd", RT_F32, 0, {0}}};
static const RtEntrySpec ENTRIES[] = {{"affine", false, 1, affine_in, 1, affine_out},
                                      {"sgd", true, 2, sgd_in, 1, sgd_out}};
static const RtPlan *const PLANS[] = {&affine_plan, &sgd_plan};
static const RtStateSpec STATE[] = {
    {.name = "lin.weight", .dtype = RT_F32, .rank = 2, .dim = {3, 2}, .param = true, .init = RT_INIT_NORMAL,
     .init_a = 0.25, .init_b = 0.5},
    {.name = "opt.count", .dtype = RT_F32, .rank = 1, .dim = {1}},
};

static RtPlanProgramDesc desc(void) {
  return (RtPlanProgramDesc){.model = "hand.dal", .config = "test", .lr = 0.125, .nstate = 2, .state = STATE,
                             .nentry = 2, .entry = ENTRIES, .plan = PLANS, .threads = 2};
}

static RtTensor *x_input(void) {
  RtTensor *x = rt_tensor_new(RT_F32, 2, (int64_t[]){4, 3}, NULL);
  for (int i = 0; i < 12; i++) rt_f32(x)[i] = (float)(i % 5) - 1.5f;
  return x;
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_state_and_init) {
  RtPlanProgramDesc d = desc();
  RtErr e;
  RtProgram *p = rt_plan_program_new(&d, 11, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  ck_assert_str_eq(p->model, "hand.dal");
  ck_assert_str_eq(p->config, "test");
  ck_assert(p->lr == 0.125);
  ck_assert_int_eq(p->nentry, 2);
  ck_assert_int_eq(p->nparam, 1);
  ck_assert_int_eq(p->state->n, 2);
  ck_assert_str_eq(p->state->name[0], "lin.weight");
  ck_assert_str_eq(p->state->name[1], "opt.count");
  float want[6];
  rt_init_fill(want, 6, RT_INIT_NORMAL, 0.25, 0.5, 11, "lin.weight");
  ck_assert_mem_eq(rt_f32(p->state->tensor[0]), want, sizeof want);
  rt_f32(p->state->tensor[1])[0] = 7;
  ck_assert_int_eq(p->init(p, 12, &e), 0);
  ck_assert(rt_f32(p->state->tensor[1])[0] == 0);
  ck_assert(memcmp(rt_f32(p->state->tensor[0]), want, sizeof want) != 0); /* another seed, other values */
  rt_program_free(p);
}
END_TEST

START_TEST(test_run_entries) {
  RtPlanProgramDesc d = desc();
  RtErr e;
  RtProgram *p = rt_plan_program_new(&d, 3, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  RtTensor *x = x_input();
  float w0[6];
  memcpy(w0, rt_f32(p->state->tensor[0]), sizeof w0);
  for (int rep = 0; rep < 2; rep++) { /* the arena and pool are made once and reused */
    RtTensor *out[1] = {(RtTensor *)1};
    ck_assert_msg(p->run(p, 0, &x, out, 0, 0, &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(out[0]);
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < 2; j++) {
        double y = C_DATA[j];
        for (int k = 0; k < 3; k++) y += (double)rt_f32(x)[r * 3 + k] * w0[k * 2 + j];
        ck_assert_double_eq_tol(rt_f32(out[0])[r * 2 + j], y, 1e-5);
      }
    rt_tensor_free(out[0]);
  }
  /* the training entry: loss from the old weights, then the update and the count */
  RtTensor *lr = rt_tensor_new(RT_F32, 0, NULL, NULL);
  rt_f32(lr)[0] = 0.5f;
  RtTensor *in[2] = {x, lr}, *loss[1] = {NULL};
  ck_assert_msg(p->run(p, 1, in, loss, 0, 0, &e) == 0, "%s", e.msg);
  double want_loss = 0;
  for (int k = 0; k < 3; k++) {
    float col = 0;
    for (int r = 0; r < 4; r++) col += rt_f32(x)[r * 3 + k];
    for (int j = 0; j < 2; j++) {
      want_loss += w0[k * 2 + j] * col;
      ck_assert_float_eq(rt_f32(p->state->tensor[0])[k * 2 + j], w0[k * 2 + j] - 0.5f * col);
    }
  }
  ck_assert_double_eq_tol(rt_f32(loss[0])[0], want_loss, 1e-5);
  ck_assert(rt_f32(p->state->tensor[1])[0] == 1);
  rt_tensor_free(loss[0]);
  /* a wrong input: an error naming the plan, outputs NULL, state unchanged */
  RtTensor *bad = rt_tensor_new(RT_F32, 2, (int64_t[]){3, 4}, NULL);
  RtTensor *out[1] = {(RtTensor *)1};
  ck_assert_int_eq(p->run(p, 0, &bad, out, 0, 0, &e), -1);
  ck_assert_ptr_null(out[0]);
  ck_assert_msg(strstr(e.msg, "affine") != NULL, "%s", e.msg);
  ck_assert(rt_f32(p->state->tensor[1])[0] == 1);
  ck_assert_int_eq(p->run(p, 2, &x, out, 0, 0, &e), -1);
  ck_assert_msg(strstr(e.msg, "no entry number 2") != NULL, "%s", e.msg);
  rt_tensor_free(bad);
  rt_tensor_free(lr);
  rt_tensor_free(x);
  rt_program_free(p);
}
END_TEST

/* The program made from 'd' must fail with a message containing 'want'. */
static void expect_refused(const RtPlanProgramDesc *d, const char *want) {
  RtErr e = {{0}};
  RtProgram *p = rt_plan_program_new(d, 0, &e);
  ck_assert_msg(p == NULL, "expected an error about '%s'", want);
  ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' does not mention '%s'", e.msg, want);
}

START_TEST(test_bad_tables) {
  RtPlanProgramDesc d = desc();
  RtStateSpec st[2] = {STATE[1], STATE[0]};
  d.state = st; /* a parameter after other state */
  expect_refused(&d, "parameters go first");
  RtStateSpec dup[2] = {STATE[0], STATE[0]};
  d.state = dup;
  expect_refused(&d, "two state tensors are called 'lin.weight'");
  d = desc();
  d.nstate = 1; /* opt.count missing */
  expect_refused(&d, "'opt.count' is not part of hand.dal");
  RtStateSpec wrong[2] = {STATE[0], STATE[1]};
  wrong[1].dim[0] = 2;
  d = desc();
  d.state = wrong;
  expect_refused(&d, "state tensor 'opt.count' is f32[1] there but f32[2]");
  RtStateSpec i32p[2] = {STATE[0], STATE[1]};
  i32p[0].dtype = RT_I32;
  d.state = i32p;
  expect_refused(&d, "parameter 'lin.weight' is not f32");
  /* an entry whose spec disagrees with its plan */
  RtArgSpec in2[] = {{"x", RT_F32, 2, {4, 4}}};
  RtEntrySpec en[2] = {ENTRIES[0], ENTRIES[1]};
  en[0].input = in2;
  d = desc();
  d.entry = en;
  expect_refused(&d, "input 'x' is f32[4, 3] in the plan but f32[4, 4] in the entry");
  en[0] = ENTRIES[0];
  en[0].ninput = 2;
  expect_refused(&d, "its plan takes 1 inputs");
  /* a plan that fails rt_plan_check: a missing kernel */
  RtPlan broken = affine_plan;
  static const RtKernelFn none[] = {NULL};
  broken.kernel = none;
  const RtPlan *plans[2] = {&broken, &sgd_plan};
  d = desc();
  d.plan = plans;
  expect_refused(&d, "kernel 0 of 1 is missing");
  plans[0] = NULL;
  expect_refused(&d, "entry 'affine' has no plan");
}
END_TEST

START_TEST(test_bad_threads) {
  setenv("DAL_THREADS", "lots", 1);
  RtPlanProgramDesc d = desc();
  d.threads = 0; /* from DAL_THREADS: checked at the first run */
  RtErr e;
  RtProgram *p = rt_plan_program_new(&d, 0, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  RtTensor *x = x_input(), *out[1] = {NULL};
  ck_assert_int_eq(p->run(p, 0, &x, out, 0, 0, &e), -1);
  ck_assert_msg(strstr(e.msg, "DAL_THREADS") != NULL, "%s", e.msg);
  ck_assert_ptr_null(out[0]);
  setenv("DAL_THREADS", "1", 1);
  ck_assert_msg(p->run(p, 0, &x, out, 0, 0, &e) == 0, "%s", e.msg);
  rt_tensor_free(out[0]);
  rt_tensor_free(x);
  rt_program_free(p);
  unsetenv("DAL_THREADS");
}
END_TEST

/* Plans made at first use (RtPlanProgramDesc.make_plan, what dalc's JIT
 * does): nothing is made at construction; prepare or the first run makes
 * an entry's plan once; it is checked before it runs (a bad one is a
 * message, and a later good one still works); the arena grows for a
 * bigger plan made later. */
typedef struct {
  int made[2];
  const RtPlan *give[2];
} Maker;

static const RtPlan *make(void *ctx, int entry, RtErr *e) {
  Maker *m = ctx;
  m->made[entry]++;
  if (!m->give[entry]) rt_err(e, "cannot compile entry %d", entry);
  return m->give[entry];
}

START_TEST(test_plans_made_on_demand) {
  RtPlanProgramDesc d = desc();
  const RtPlan *none[2] = {NULL, NULL};
  /* sgd with its arena buffer at the end of 1 MiB: the arena made for
   * affine's plan must grow (under ASan, a write past it would fail) */
  RtBuffer far_buf[6];
  memcpy(far_buf, sgd_buf, sizeof far_buf);
  far_buf[3].offset = (1 << 20) - 64;
  RtPlan big_sgd = sgd_plan;
  big_sgd.buf = far_buf;
  big_sgd.arena_bytes = 1 << 20;
  Maker m = {{0, 0}, {NULL, &big_sgd}};
  d.plan = none;
  d.make_plan = make;
  d.make_ctx = &m;
  RtErr e;
  RtProgram *p = rt_plan_program_new(&d, 3, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  ck_assert(m.made[0] == 0 && m.made[1] == 0);
  ck_assert_ptr_nonnull(p->prepare);
  RtTensor *x = x_input(), *out[1] = {NULL};
  /* entry 0's maker fails: a message, no output; then it gets a plan */
  ck_assert_int_eq(p->run(p, 0, &x, out, 0, 0, &e), -1);
  ck_assert_msg(strstr(e.msg, "cannot compile entry 0"), "%s", e.msg);
  ck_assert_ptr_null(out[0]);
  RtPlan wrong = affine_plan;
  wrong.noutput = 2;
  m.give[0] = &wrong; /* checked like a table's plan */
  ck_assert_int_eq(rt_program_prepare(p, 0, &e), -1);
  ck_assert_msg(strstr(e.msg, "its plan takes 1 inputs and gives 2 outputs"), "%s", e.msg);
  m.give[0] = &affine_plan;
  ck_assert_msg(rt_program_prepare(p, 0, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(m.made[0], 3);
  ck_assert_msg(p->run(p, 0, &x, out, 0, 0, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(m.made[0], 3); /* made once */
  rt_tensor_free(out[0]);
  RtTensor *lr = rt_tensor_new(RT_F32, 0, NULL, NULL);
  rt_f32(lr)[0] = 0.5f;
  RtTensor *in[2] = {x, lr};
  for (int rep = 0; rep < 2; rep++) {
    ck_assert_msg(p->run(p, 1, in, out, 0, 0, &e) == 0, "%s", e.msg);
    rt_tensor_free(out[0]);
  }
  ck_assert_int_eq(m.made[1], 1);
  ck_assert(rt_f32(p->state->tensor[1])[0] == 2);
  ck_assert_int_eq(rt_program_prepare(p, 5, &e), -1);
  rt_tensor_free(lr);
  rt_tensor_free(x);
  rt_program_free(p);
  /* without a maker, prepare is not offered */
  d = desc();
  p = rt_plan_program_new(&d, 3, &e);
  ck_assert_ptr_null(p->prepare);
  ck_assert_int_eq(rt_program_prepare(p, 0, &e), 0);
  rt_program_free(p);
}
END_TEST

/* rt_state_init zeroes non-parameter state of any size and alignment,
 * large blocks by handing their pages back (state.c): every byte reads 0
 * afterwards, and a second init after writes zeroes it again. */
START_TEST(test_state_zeroed_lazily) {
  const int64_t sizes[] = {3, 1000, 300000, 1 << 20};
  for (int k = 0; k < 4; k++) {
    RtStateSpec spec[2] = {{.name = "opt.m", .dtype = RT_F32, .rank = 1, .dim = {sizes[k]}},
                           {.name = "kv", .dtype = RT_F32, .rank = 1, .dim = {sizes[k] + 5}, .transient = true}};
    RtTensorList *state = rt_list_new();
    RtErr e;
    ck_assert_int_eq(rt_state_alloc(state, spec, 2, "t.dal", &e), 0);
    for (int round = 0; round < 2; round++) {
      for (int i = 0; i < 2; i++) memset(state->tensor[i]->data, 0x5a, rt_tensor_bytes(state->tensor[i]));
      rt_state_init(state, spec, 2, 1);
      for (int i = 0; i < 2; i++) {
        const unsigned char *b = state->tensor[i]->data;
        size_t n = rt_tensor_bytes(state->tensor[i]), nonzero = 0;
        for (size_t j = 0; j < n; j++) nonzero += b[j] != 0;
        ck_assert_msg(nonzero == 0, "%s of %lld: %zu bytes not zero", spec[i].name, (long long)sizes[k], nonzero);
      }
    }
    rt_list_free(state);
  }
}
END_TEST

/* Pages of [p, p + n) that are resident (mincore), and how many pages
 * lie wholly inside it (*whole). */
static size_t resident_pages(const void *p, size_t n, size_t *whole) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
  *whole = hi > lo ? (hi - lo) / page : 0;
  if (!*whole) return 0;
  unsigned char *v = calloc(*whole, 1);
  ck_assert_int_eq(mincore((void *)lo, hi - lo, v), 0);
  size_t r = 0;
  for (size_t i = 0; i < *whole; i++) r += v[i] & 1;
  free(v);
  return r;
}

/* rt_state_make_resident faults in the moments' pages (all of them
 * resident afterwards) without changing a value, and leaves transient
 * state (a KV cache) and its lazily zeroed pages alone. */
START_TEST(test_state_made_resident) {
  const int64_t n = 1 << 20; /* 4 MiB each: zeroed lazily by rt_state_init */
  RtStateSpec spec[3] = {{.name = "w", .dtype = RT_F32, .rank = 1, .dim = {1000}, .param = true, .init = RT_INIT_ONES},
                         {.name = "opt.m.w", .dtype = RT_F32, .rank = 1, .dim = {n}},
                         {.name = "kv", .dtype = RT_F32, .rank = 1, .dim = {n}, .transient = true}};
  RtTensorList *state = rt_list_new();
  RtErr e;
  ck_assert_int_eq(rt_state_alloc(state, spec, 3, "t.dal", &e), 0);
  rt_state_init(state, spec, 3, 1);
  size_t whole, m_before = resident_pages(state->tensor[1]->data, (size_t)n * 4, &whole);
  ck_assert(whole > 1000);
  ck_assert_msg(m_before < whole / 2, "%zu of %zu pages resident after the lazy zeroing", m_before, whole);
  rt_f32(state->tensor[1])[12345] = 7; /* a value to keep */
  rt_state_make_resident(state, spec, 3);
  ck_assert_uint_eq(resident_pages(state->tensor[1]->data, (size_t)n * 4, &whole), whole);
  size_t kv = resident_pages(state->tensor[2]->data, (size_t)n * 4, &whole);
  ck_assert_msg(kv < whole / 2, "transient state: %zu of %zu pages made resident", kv, whole);
  const float *m = rt_f32(state->tensor[1]);
  size_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad += m[i] != (i == 12345 ? 7.0f : 0.0f);
  ck_assert_uint_eq(bad, 0);
  ck_assert(rt_f32(state->tensor[0])[999] == 1);
  rt_list_free(state);
}
END_TEST

int main(void) {
  Suite *s = suite_create("plan_program");
  TCase *tc = tcase_create("plan_program");
  tcase_add_test(tc, test_state_zeroed_lazily);
  tcase_add_test(tc, test_state_made_resident);
  tcase_add_test(tc, test_state_and_init);
  tcase_add_test(tc, test_run_entries);
  tcase_add_test(tc, test_bad_tables);
  tcase_add_test(tc, test_bad_threads);
  tcase_add_test(tc, test_plans_made_on_demand);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
