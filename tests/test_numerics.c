/* test_numerics.c — --check-numerics in the scheduler against hand-made
 * plans (the first non-finite value stops the run, naming the step, its
 * .dal source, the buffer and the element; off, nothing is checked), the
 * scans and messages of runtime/core/numerics.h, the load check and
 * --allow-nonfinite, the write warning, and the training driver's
 * divergence rule and state snapshots. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/numerics.h"
#include "runtime/core/tensor.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "runtime/sched/rt_sched.h"
#include "runtime/train/train.h"
#include "tests/util.h"

/* ---- a plan of three steps: y = log(x) (a kernel), z = y * 2 (a kernel), out = z (a copy) ---- */

static void k_log(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *x = args[0];
  float *y = args[1];
  for (int64_t i = begin; i < end; i++) y[i] = logf(x[i]);
}

static int twice_calls;
static void k_twice(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {
  (void)ctx;
  const float *y = args[0];
  float *z = args[1];
  __atomic_add_fetch(&twice_calls, 1, __ATOMIC_RELAXED);
  for (int64_t i = begin; i < end; i++) z[i] = 2 * y[i];
}

enum { N = 12 };
static const int64_t dim[2] = {3, 4};

typedef struct {
  RtBuffer buf[4];
  RtStep step[3];
  int arg[6], write[3];
  RtKernelFn kern[2];
  const char *kname[2];
  RtPlan plan;
  RtTensor *x;
  void *arena;
} LogPlan;

static RtBuffer buffer(RtBufKind kind, const char *name, int64_t offset, int index) {
  RtBuffer b = {.kind = kind, .dtype = RT_F32, .rank = 2, .dim = {3, 4}, .bytes = N * 4, .offset = offset,
                .index = index, .name = name};
  return b;
}

static void log_plan(LogPlan *lp) {
  memset(lp, 0, sizeof *lp);
  lp->buf[0] = buffer(RT_BUF_INPUT, "x", 0, 0);
  lp->buf[1] = buffer(RT_BUF_ARENA, "y", 0, 0);
  lp->buf[2] = buffer(RT_BUF_ARENA, NULL, 64, 0);
  lp->buf[3] = buffer(RT_BUF_OUTPUT, "out", 0, 0);
  int arg[6] = {0, 1, 1, 2, 2, 3};
  memcpy(lp->arg, arg, sizeof arg);
  lp->write[0] = 1, lp->write[1] = 2, lp->write[2] = 3;
  lp->step[0] = (RtStep){.kind = RT_STEP_KERNEL, .name = "k0_log", .kernel = 0, .range = N, .narg = 2,
                         .arg = lp->arg, .src = "m.dal:3:9", .nwrite = 1, .write = lp->write};
  lp->step[1] = (RtStep){.kind = RT_STEP_KERNEL, .name = "k1_mul", .kernel = 1, .range = N, .narg = 2,
                         .arg = lp->arg + 2, .src = "m.dal:4:9", .backward = 1, .nwrite = 1, .write = lp->write + 1};
  lp->step[2] = (RtStep){.kind = RT_STEP_COPY, .name = "output", .narg = 2, .arg = lp->arg + 4, .src = "m.dal:4:9",
                         .nwrite = 1, .write = lp->write + 2};
  lp->kern[0] = k_log, lp->kern[1] = k_twice;
  lp->kname[0] = "k0_log", lp->kname[1] = "k1_mul";
  lp->plan = (RtPlan){.name = "f", .nbuf = 4, .buf = lp->buf, .nstep = 3, .step = lp->step, .nkernel = 2,
                      .kernel = lp->kern, .kernel_name = lp->kname, .arena_bytes = 128, .ninput = 1, .noutput = 1};
  RtErr e = {{0}};
  lp->x = rt_tensor_new(RT_F32, 2, dim, &e);
  for (int i = 0; i < N; i++) rt_f32(lp->x)[i] = 1.0f + (float)i;
  lp->arena = rt_arena_new(128, &e);
  ck_assert_ptr_nonnull(lp->arena);
}

static void log_plan_free(LogPlan *lp) {
  rt_tensor_free(lp->x);
  rt_arena_free(lp->arena);
}

static int run(LogPlan *lp, RtTensor **out, RtErr *e) {
  twice_calls = 0;
  return rt_plan_run(&lp->plan, NULL, lp->arena, &lp->x, out, NULL, NULL, e);
}

START_TEST(check_names_the_first_step_its_source_buffer_and_element) {
  LogPlan lp;
  log_plan(&lp);
  rt_f32(lp.x)[6] = -1; /* log(-1) = nan at element [1, 2] of y */
  RtTensor *out = NULL;
  RtErr e = {{0}};
  rt_numerics_set_check(true);
  ck_assert_int_eq(run(&lp, &out, &e), -1);
  rt_numerics_set_check(false);
  ck_assert_ptr_null(out); /* the output it made is freed */
  ck_assert_int_eq(twice_calls, 0); /* nothing after the failing step ran */
  ck_assert_msg(strstr(e.msg, "m.dal:3:9: non-finite value: op 'k0_log' (plan step 0 of 3) of entry 'f' wrote") == e.msg,
                "%s", e.msg);
  ck_assert_msg(strstr(e.msg, "element [1, 2] of intermediate 'y' [3, 4]"), "%s", e.msg);
  ck_assert_msg(strstr(e.msg, "nan"), "%s", e.msg);
  log_plan_free(&lp);
}
END_TEST

START_TEST(check_names_a_later_step_and_the_gradient) {
  LogPlan lp;
  log_plan(&lp);
  rt_f32(lp.x)[11] = INFINITY; /* log(inf) = inf: step 0 */
  RtTensor *out = NULL;
  RtErr e = {{0}};
  rt_numerics_set_check(true);
  ck_assert_int_eq(run(&lp, &out, &e), -1);
  ck_assert_msg(strstr(e.msg, "op 'k0_log'") && strstr(e.msg, "element [2, 3]") && strstr(e.msg, "wrote inf"), "%s",
                e.msg);
  /* an unnamed buffer written by step 1, in the gradient */
  for (int i = 0; i < N; i++) rt_f32(lp.x)[i] = 1.0f;
  lp.kern[0] = k_twice; /* both steps double: 1e38 -> 2e38 (finite) -> 4e38 (inf, in step 1) */
  rt_f32(lp.x)[4] = 1e38f;
  ck_assert_int_eq(run(&lp, &out, &e), -1);
  rt_numerics_set_check(false);
  ck_assert_msg(strstr(e.msg, "m.dal:4:9: non-finite value: in the gradient of the op at this line, op 'k1_mul' "
                              "(plan step 1 of 3)") == e.msg, "%s", e.msg);
  ck_assert_msg(strstr(e.msg, "element [1, 0] of intermediate b2 [3, 4]"), "%s", e.msg);
  log_plan_free(&lp);
}
END_TEST

START_TEST(check_off_runs_every_step) {
  LogPlan lp;
  log_plan(&lp);
  rt_f32(lp.x)[0] = -1;
  RtTensor *out = NULL;
  RtErr e = {{0}};
  ck_assert_int_eq(run(&lp, &out, &e), 0);
  ck_assert_int_eq(twice_calls, 1);
  ck_assert(isnan(rt_f32(out)[0]));
  ck_assert_float_eq(rt_f32(out)[1], 2 * logf(2));
  /* and on, a finite run gives the same results */
  rt_f32(lp.x)[0] = 1;
  RtTensor *checked = NULL;
  rt_numerics_set_check(true);
  ck_assert_int_eq(run(&lp, &checked, &e), 0);
  rt_numerics_set_check(false);
  for (int i = 1; i < N; i++) ck_assert_float_eq(rt_f32(checked)[i], rt_f32(out)[i]);
  rt_tensor_free(out);
  rt_tensor_free(checked);
  log_plan_free(&lp);
}
END_TEST

START_TEST(written_buffer_ids_are_checked) {
  LogPlan lp;
  log_plan(&lp);
  lp.write[0] = 7;
  RtErr e = {{0}};
  ck_assert_int_eq(rt_plan_check(&lp.plan, &e), -1);
  ck_assert_msg(strstr(e.msg, "written buffer 0 is buffer 7 of 4"), "%s", e.msg);
  log_plan_free(&lp);
}
END_TEST

/* ---- scans, flags, messages ---- */

START_TEST(scans_find_the_first_non_finite_value) {
  enum { M = 10000 };
  float *x = calloc(M, sizeof *x);
  int64_t first = 0;
  ck_assert(rt_all_finite(x, M, &first));
  ck_assert_int_eq(first, -1);
  x[9000] = -INFINITY;
  x[5000] = NAN;
  ck_assert(!rt_all_finite(x, M, &first));
  ck_assert_int_eq(first, 5000);
  ck_assert_int_eq(rt_nonfinite_count(x, M, &first), 2);
  ck_assert_int_eq(first, 5000);
  x[5000] = 3.4e38f; /* large but finite */
  ck_assert(!rt_all_finite(x, M, &first));
  ck_assert_int_eq(first, 9000);
  free(x);
}
END_TEST

START_TEST(flags_are_taken_out_before_a_double_dash) {
  char *argv[] = {"dalc", "run", "--check-numerics", "m.dal", "--allow-nonfinite", "--", "train", "--check-numerics", NULL};
  int argc = 8;
  rt_numerics_take_flags(&argc, argv, 1);
  ck_assert_int_eq(argc, 6);
  ck_assert_str_eq(argv[2], "m.dal");
  ck_assert_str_eq(argv[3], "--");
  ck_assert_str_eq(argv[5], "--check-numerics"); /* the inner command line's own */
  ck_assert(rt_numerics_check() && rt_numerics_allow());
  rt_numerics_set_check(false);
  rt_numerics_set_allow(false);
}
END_TEST

START_TEST(loaded_files_with_non_finite_values_are_errors_unless_allowed) {
  RtErr e = {{0}};
  RtTensor *t = rt_tensor_new(RT_F32, 2, dim, &e);
  rt_f32(t)[5] = NAN;
  rt_f32(t)[7] = INFINITY;
  RtTensorList *l = rt_list_new();
  RtTensor *ok = rt_tensor_new(RT_F32, 2, dim, &e);
  rt_list_put(l, "fine", ok);
  rt_list_put(l, "enc.w", t);
  char *st = tu_path("bad.safetensors"), *npy = tu_path("bad.npy");
  ck_assert_int_eq(rt_safetensors_write(st, l, &e), 0);
  ck_assert_int_eq(rt_npy_write(npy, t, &e), 0);
  RtTensorList *back = NULL;
  ck_assert_int_eq(rt_safetensors_read(st, &back, &e), -1);
  ck_assert_ptr_null(back);
  ck_assert_msg(strstr(e.msg, "tensor 'enc.w' holds 2 non-finite values (element [1, 1] is nan); --allow-nonfinite"),
                "%s", e.msg);
  RtTensor *x = NULL; /* the .npy reader reads anything; an entry input is checked by its caller */
  ck_assert_int_eq(rt_npy_read(npy, &x, &e), 0);
  ck_assert(isnan(rt_f32(x)[5]));
  ck_assert_int_eq(rt_numerics_check_input("x", npy, x, &e), -1);
  ck_assert_msg(strstr(e.msg, "input 'x' (") && strstr(e.msg, "bad.npy) holds 2 non-finite values"), "%s", e.msg);
  rt_numerics_set_allow(true);
  ck_assert_int_eq(rt_safetensors_read(st, &back, &e), 0);
  ck_assert_int_eq(rt_numerics_check_input("x", npy, x, &e), 0);
  rt_numerics_set_allow(false);
  rt_tensor_free(x);
  rt_list_free(back);
  rt_list_free(l);
  free(st);
  free(npy);
}
END_TEST

START_TEST(written_files_warn_once_per_tensor) {
  RtErr e = {{0}};
  RtTensor *t = rt_tensor_new(RT_F32, 2, dim, &e);
  rt_f32(t)[2] = -INFINITY;
  ck_assert_int_eq(rt_numerics_warn_written("w.safetensors", "grad", t), 1);
  ck_assert_int_eq(rt_numerics_warn_written("w.safetensors", "grad", t), 0); /* warned already */
  ck_assert_int_eq(rt_numerics_warn_written("w.safetensors", "other", t), 1);
  rt_f32(t)[2] = 0;
  ck_assert_int_eq(rt_numerics_warn_written("x.safetensors", "grad", t), 0);
  rt_tensor_free(t);
}
END_TEST

/* ---- training: divergence and snapshots ---- */

START_TEST(divergence_rule) {
  RtDiverge d = {0};
  ck_assert(!rt_diverge_add(&d, 0, 0.65));
  ck_assert(rt_diverge_add(&d, 1, 4.5e27)); /* --lr 1e6 on the dVAE tiny */
  ck_assert(!rt_diverge_add(&d, 2, 4.5e27)); /* reported once */
  RtDiverge slow = {0};
  ck_assert(!rt_diverge_add(&slow, 5, 1.0));
  int at = -1;
  for (int s = 6; s < 40 && at < 0; s++)
    if (rt_diverge_add(&slow, (uint64_t)s, 30.0)) at = s; /* smoothed: 1 + 29 (1 - 0.9^k) > 10 after k = 4 */
  ck_assert_int_eq(at, 9);
  RtDiverge noisy = {0}; /* a loss that goes down, with spikes under the rule, never trips */
  ck_assert(!rt_diverge_add(&noisy, 0, 2.0));
  for (int s = 1; s < 200; s++) ck_assert(!rt_diverge_add(&noisy, (uint64_t)s, s % 10 ? 1.0 : 50.0));
  RtDiverge neg = {0}; /* a start <= 0: the rule does not apply */
  ck_assert(!rt_diverge_add(&neg, 0, -1.0));
  ck_assert(!rt_diverge_add(&neg, 1, 1e30));
}
END_TEST

static int fake_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)p, (void)seed, (void)e;
  return 0;
}

START_TEST(snapshots_restore_the_state_and_ema) {
  RtErr e = {{0}};
  RtTensorList *state = rt_list_new(), *ema = rt_list_new();
  rt_list_put(state, "w", rt_tensor_new(RT_F32, 2, dim, &e));
  rt_list_put(state, "opt.m.w", rt_tensor_new(RT_F32, 2, dim, &e));
  rt_list_put(state, "cache", rt_tensor_new(RT_F32, 2, dim, &e)); /* transient: not saved */
  rt_list_put(ema, "ema.w", rt_tensor_new(RT_F32, 2, dim, &e));
  RtProgram p = {.state = state, .nparam = 1, .nsaved = 2, .init = fake_init};
  for (int i = 0; i < N; i++) rt_f32(state->tensor[0])[i] = (float)i, rt_f32(ema->tensor[0])[i] = -(float)i;
  RtTrainSnap sn = {0};
  ck_assert_int_eq(rt_train_snap_take(&sn, &p, ema, 7, &e), 0);
  ck_assert(sn.valid && sn.step == 7);
  for (int k = 0; k < 3; k++) rt_f32(state->tensor[k])[3] = NAN;
  rt_f32(ema->tensor[0])[3] = NAN;
  rt_train_snap_restore(&sn, &p, ema);
  ck_assert_float_eq(rt_f32(state->tensor[0])[3], 3);
  ck_assert_float_eq(rt_f32(state->tensor[1])[3], 0);
  ck_assert(isnan(rt_f32(state->tensor[2])[3])); /* not part of a checkpoint */
  ck_assert_float_eq(rt_f32(ema->tensor[0])[3], -3);
  rt_train_snap_free(&sn);
  rt_list_free(state);
  rt_list_free(ema);
}
END_TEST

int main(void) {
  Suite *s = suite_create("numerics");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, check_names_the_first_step_its_source_buffer_and_element);
  tcase_add_test(tc, check_names_a_later_step_and_the_gradient);
  tcase_add_test(tc, check_off_runs_every_step);
  tcase_add_test(tc, written_buffer_ids_are_checked);
  tcase_add_test(tc, scans_find_the_first_non_finite_value);
  tcase_add_test(tc, flags_are_taken_out_before_a_double_dash);
  tcase_add_test(tc, loaded_files_with_non_finite_values_are_errors_unless_allowed);
  tcase_add_test(tc, written_files_warn_once_per_tensor);
  tcase_add_test(tc, divergence_rule);
  tcase_add_test(tc, snapshots_restore_the_state_and_ema);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
