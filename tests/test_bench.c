/* test_bench.c — the executables' `bench` command (runtime/exe/exe_bench.c)
 * through rt_main, on a hand-made RtProgram whose run function records
 * what it was given. No timing is asserted: only that the command runs the
 * steps it says, feeds them, and reports consistent fields, and that bad
 * flags and bad steps are errors with clear messages. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"
#include "runtime/sched/program.h"
#include "tests/util.h"

#define B 2
#define S 8  /* image side: the shapes dataset needs >= 8 */
#define T 5  /* tokens per example */
#define MAX_CALLS 64

/* ---- the program --------------------------------------------------------------
 *
 * loss(x: f32[B, 3, S, S], tau: f32, opt.lr: f32) -> loss     [train]
 *     loss = sqrt(tau) * mean(x^2) + w (NaN for tau < 0); w -= lr; opt.step += 1
 * embed(tok: i32[B, T]) -> f32[B, T, 4]
 * fail(a: f32) -> f32                                           always an error
 * Every call is recorded; 'sleep_ms' makes each call take at least that long. */

static const RtArgSpec loss_in[] = {
    {"x", RT_F32, 4, {B, 3, S, S}}, {"tau", RT_F32, 0, {0}}, {RT_LR_INPUT, RT_F32, 0, {0}}};
static const RtArgSpec loss_out[] = {{"loss", RT_F32, 0, {0}}};
static const RtArgSpec embed_in[] = {{"tok", RT_I32, 2, {B, T}}};
static const RtArgSpec embed_out[] = {{"embed", RT_F32, 3, {B, T, 4}}};
static const RtArgSpec fail_in[] = {{"a", RT_F32, 0, {0}}};
static const RtArgSpec fail_out[] = {{"fail", RT_F32, 0, {0}}};
static const RtEntrySpec entries[] = {
    {"loss", true, 3, loss_in, 1, loss_out},
    {"embed", false, 1, embed_in, 1, embed_out},
    {"fail", false, 1, fail_in, 1, fail_out},
};

typedef struct {
  int ncall, entry[MAX_CALLS];
  uint64_t step[MAX_CALLS], seed[MAX_CALLS];
  double xabs[MAX_CALLS], tau[MAX_CALLS], lr[MAX_CALLS], tok_sum[MAX_CALLS];
  float last_loss;
  int inits;
  uint64_t init_seed;
  int sleep_ms;
} Record;

static Record rec;

static int fake_init(RtProgram *p, uint64_t seed, RtErr *e) {
  (void)e;
  rec.inits++;
  rec.init_seed = seed;
  rt_f32(p->state->tensor[0])[0] = 0.5f;
  rt_f32(p->state->tensor[1])[0] = 0;
  return 0;
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int fake_run(RtProgram *p, int entry, RtTensor *const *in, RtTensor **out, uint64_t seed, uint64_t step,
                    RtErr *e) {
  int c = rec.ncall < MAX_CALLS ? rec.ncall : MAX_CALLS - 1;
  rec.ncall++;
  rec.entry[c] = entry;
  rec.step[c] = step;
  rec.seed[c] = seed;
  if (rec.sleep_ms) nap(rec.sleep_ms);
  if (entry == 2) return rt_err(e, "entry 'fail' failed on purpose");
  if (entry == 1) {
    double sum = 0;
    for (int i = 0; i < B * T; i++) sum += rt_i32(in[0])[i];
    rec.tok_sum[c] = sum;
    out[0] = rt_tensor_new(RT_F32, 3, (int64_t[]){B, T, 4}, e);
    return out[0] ? 0 : -1;
  }
  const float *x = rt_f32(in[0]);
  double sq = 0, abs_sum = 0;
  for (int i = 0; i < B * 3 * S * S; i++) {
    sq += (double)x[i] * x[i];
    abs_sum += fabs(x[i]);
  }
  float tau = rt_f32(in[1])[0], lr = rt_f32(in[2])[0];
  rec.xabs[c] = abs_sum;
  rec.tau[c] = tau;
  rec.lr[c] = lr;
  float *w = rt_f32(p->state->tensor[0]);
  out[0] = rt_tensor_new(RT_F32, 0, NULL, e);
  if (!out[0]) return -1;
  rec.last_loss = rt_f32(out[0])[0] = (float)(sqrt(tau) * sq / (B * 3 * S * S)) + *w;
  *w -= lr;
  rt_f32(p->state->tensor[1])[0] += 1;
  return 0;
}

static void fake_free(RtProgram *p) {
  rt_list_free(p->state);
  free(p);
}

/* A fresh program; the record is kept (bench --compare makes several). */
static RtProgram *new_program(void) {
  RtProgram *p = calloc(1, sizeof *p);
  ck_assert_ptr_nonnull(p);
  p->model = "fake.dal";
  p->config = "test";
  p->state = rt_list_new();
  rt_list_put(p->state, "w", rt_tensor_new(RT_F32, 1, (int64_t[]){1}, NULL));
  rt_list_put(p->state, "opt.step", rt_tensor_new(RT_F32, 0, NULL, NULL));
  p->nparam = 1;
  p->nsaved = 2; /* no transient state */
  p->nentry = 3;
  p->entry = entries;
  p->lr = 0.125;
  p->init = fake_init;
  p->run = fake_run;
  p->free = fake_free;
  return p;
}

static RtProgram *make_program(void) {
  memset(&rec, 0, sizeof rec);
  return new_program();
}

/* ---- running rt_main with its output captured ----------------------------------- */

typedef struct {
  int status;
  char *out, *err; /* stdout and stderr of the call */
} Result;

static void result_free(Result *r) {
  free(r->out);
  free(r->err);
}

/* rt_main on a command line given as one string (split at spaces). */
static Result bench(RtProgram *p, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  char *argv[64];
  int argc = 0;
  argv[argc++] = "fake";
  for (char *t = strtok(line, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
  argv[argc] = NULL;

  char *out_path = tu_path("stdout.txt"), *err_path = tu_path("stderr.txt");
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1), saved_err = dup(2);
  int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert(saved_out >= 0 && saved_err >= 0 && fo >= 0 && fe >= 0);
  dup2(fo, 1);
  dup2(fe, 2);
  Result r = {.status = rt_main(p, argc, argv)};
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(fo);
  close(fe);
  close(saved_out);
  close(saved_err);
  r.out = tu_read_file(out_path, NULL);
  r.err = tu_read_file(err_path, NULL);
  ck_assert(r.out && r.err);
  free(out_path);
  free(err_path);
  return r;
}

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(cJSON_IsNumber(v), "JSON field '%s' is missing or not a number", key);
  return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(cJSON_IsString(v), "JSON field '%s' is missing or not a string", key);
  return v->valuestring;
}

static bool flag(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(cJSON_IsBool(v), "JSON field '%s' is missing or not a boolean", key);
  return cJSON_IsTrue(v);
}

/* The timing fields agree with one another and with the work per step. */
static void check_timing(const cJSON *o) {
  double lo = num(o, "ms_min"), med = num(o, "ms_median"), mean = num(o, "ms_mean"), hi = num(o, "ms_max");
  ck_assert(lo >= 0 && lo <= med && med <= hi && lo <= mean && mean <= hi);
  double per_s = num(o, "per_s"), per_step = num(o, "per_step");
  ck_assert_msg(fabs(per_s - per_step * 1e3 / med) <= 1e-9 * per_s, "per_s %g is not per_step/median", per_s);
  ck_assert(num(o, "peak_rss_kib") > 0);
  ck_assert(num(o, "cores_busy") >= 0);
}

/* ---- tests --------------------------------------------------------------------- */

START_TEST(test_train_json) {
  RtProgram *p = make_program();
  Result r = bench(p, "bench --warmup 1 --steps 3 --set tau=0.25 --seed 7 --json");
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  cJSON *o = cJSON_Parse(r.out);
  ck_assert_msg(o != NULL, "stdout is not one JSON object: %s", r.out);
  ck_assert_str_eq(str(o, "bench"), "dal");
  ck_assert_str_eq(str(o, "model"), "fake.dal");
  ck_assert_str_eq(str(o, "config"), "test");
  ck_assert_str_eq(str(o, "entry"), "loss");
  ck_assert(flag(o, "train"));
  ck_assert(!flag(o, "cold"));
  ck_assert_int_eq((int)num(o, "batch"), B);
  ck_assert_int_eq((int)num(o, "warmup"), 1);
  ck_assert_int_eq((int)num(o, "steps"), 3);
  ck_assert_str_eq(str(o, "unit"), "images");
  ck_assert_int_eq((int)num(o, "per_step"), B);
  check_timing(o);
  ck_assert_float_eq((float)num(o, "loss"), rec.last_loss);
  /* One init from the seed, then steps 0..3 of 'loss' with the seed, a
   * filled image batch, --set tau and the model's learning rate. */
  ck_assert_int_eq(rec.inits, 1);
  ck_assert_int_eq((int)rec.init_seed, 7);
  ck_assert_int_eq(rec.ncall, 4);
  for (int c = 0; c < 4; c++) {
    ck_assert_int_eq(rec.entry[c], 0);
    ck_assert_int_eq((int)rec.step[c], c);
    ck_assert_int_eq((int)rec.seed[c], 7);
    ck_assert(rec.xabs[c] > 0);
    ck_assert_float_eq(rec.tau[c], 0.25);
    ck_assert_float_eq(rec.lr[c], 0.125);
  }
  ck_assert(rec.xabs[0] != rec.xabs[1]); /* a new batch every step */
  ck_assert_ptr_nonnull(strstr(r.err, "warm-up 1/1"));
  ck_assert_ptr_nonnull(strstr(r.err, "step 3/3"));
  cJSON_Delete(o);
  result_free(&r);
  rt_program_free(p);
}
END_TEST

START_TEST(test_text_report) {
  RtProgram *p = make_program();
  Result r = bench(p, "bench --warmup 0 --steps 2 --set tau=1");
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  const char *want[] = {"bench fake.dal (test), entry loss [train], batch 2: 0 warm-up + 2 timed steps",
                        "ms/step", "median", "mean", "images/s", "cores busy", "loss", "peak RSS", "VmHWM"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(r.out, want[i]) != NULL, "'%s' missing from:\n%s", want[i], r.out);
  ck_assert_int_eq(rec.ncall, 2);
  result_free(&r);
  rt_program_free(p);
}
END_TEST

/* An inference entry on token rows from a .npy dataset: tokens/s, no loss. */
START_TEST(test_inference_tokens) {
  RtProgram *p = make_program();
  RtErr e;
  RtTensor *tok = rt_tensor_new(RT_I32, 2, (int64_t[]){4, T}, &e);
  for (int i = 0; i < 4 * T; i++) rt_i32(tok)[i] = i;
  char *path = tu_path("tok.npy");
  ck_assert_int_eq(rt_npy_write(path, tok, &e), 0);
  rt_tensor_free(tok);
  Result r = bench(p, "bench --fn embed --data npy:tok=%s --warmup 0 --steps 2 --json", path);
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  cJSON *o = cJSON_Parse(r.out);
  ck_assert_ptr_nonnull(o);
  ck_assert_str_eq(str(o, "entry"), "embed");
  ck_assert(!flag(o, "train"));
  ck_assert_str_eq(str(o, "unit"), "tokens");
  ck_assert_int_eq((int)num(o, "per_step"), B * T);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "loss")));
  check_timing(o);
  /* rows 0-1 then rows 2-3 of the file */
  ck_assert_int_eq(rec.ncall, 2);
  ck_assert_double_eq(rec.tok_sum[0], 45);
  ck_assert_double_eq(rec.tok_sum[1], 145);
  cJSON_Delete(o);
  result_free(&r);
  free(path);
  rt_program_free(p);
}
END_TEST

/* A first warm-up step over the whole budget is the one timed step. */
START_TEST(test_budget_cold) {
  RtProgram *p = make_program();
  rec.sleep_ms = 30;
  Result r = bench(p, "bench --warmup 3 --steps 5 --max-seconds 0.01 --set tau=1 --json");
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  cJSON *o = cJSON_Parse(r.out);
  ck_assert_ptr_nonnull(o);
  ck_assert(flag(o, "cold"));
  ck_assert_int_eq((int)num(o, "warmup"), 0);
  ck_assert_int_eq((int)num(o, "steps"), 1);
  ck_assert_int_eq(rec.ncall, 1);
  ck_assert(num(o, "ms_median") >= 30);
  check_timing(o);
  cJSON_Delete(o);
  result_free(&r);
  rt_program_free(p);
}
END_TEST

/* Without warm-up, the budget stops the timed steps (after at least one). */
START_TEST(test_budget_stops) {
  RtProgram *p = make_program();
  rec.sleep_ms = 20;
  Result r = bench(p, "bench --warmup 0 --steps 50 --max-seconds 0.03 --set tau=1 --json");
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  cJSON *o = cJSON_Parse(r.out);
  ck_assert_ptr_nonnull(o);
  int steps = (int)num(o, "steps");
  ck_assert(!flag(o, "cold"));
  ck_assert_msg(steps >= 1 && steps <= 2, "%d steps in a 30 ms budget of 20 ms steps", steps);
  ck_assert_int_eq(rec.ncall, steps);
  cJSON_Delete(o);
  result_free(&r);
  rt_program_free(p);
}
END_TEST

/* Each bad command line: status 1, nothing run, this text in the message. */
static void expect_error(const char *args, const char *want) {
  RtProgram *p = make_program();
  Result r = bench(p, "%s", args);
  ck_assert_msg(r.status == 1, "'%s' gave status %d", args, r.status);
  ck_assert_msg(strstr(r.err, "fake: error: ") != NULL, "'%s': no error line in '%s'", args, r.err);
  ck_assert_msg(strstr(r.err, want) != NULL, "'%s': '%s' is not in '%s'", args, want, r.err);
  ck_assert_str_eq(r.out, "");
  result_free(&r);
  rt_program_free(p);
}

START_TEST(test_bad_flags) {
  expect_error("bench --steps 0 --set tau=1", "--steps must be in 1 .. 1000000, got '0'");
  expect_error("bench --warmup 1000001 --set tau=1", "--warmup must be in 0 .. 1000000, got '1000001'");
  expect_error("bench --steps x", "--steps needs a non-negative integer, got 'x'");
  expect_error("bench --warmup", "--warmup needs a value");
  expect_error("bench --max-seconds -1", "--max-seconds must not be negative");
  expect_error("bench --max-seconds inf", "--max-seconds needs a finite number");
  expect_error("bench --frobnicate", "bench: unknown option '--frobnicate'");
  expect_error("bench --set tau", "--set needs NAME=VALUE, got 'tau'");
  expect_error("bench --set tau=abc", "--set needs a finite number, got 'abc'");
  expect_error("bench --set tau=1 --set tau=2", "input 'tau' is given twice by --set");
  expect_error("bench --fn nope", "fake.dal has no entry 'nope' (its entries: loss, embed, fail)");
}
END_TEST

START_TEST(test_bad_inputs) {
  expect_error("bench --steps 1", "input tau: f32 of entry 'loss' has no value: give --set tau=VALUE");
  expect_error("bench --steps 1 --set bogus=1",
               "--set bogus: entry 'loss' has no input 'bogus' (its inputs: x, tau, opt.lr)");
  expect_error("bench --steps 1 --set tau=1 --set x=1", "--set x: input x: f32[2, 3, 8, 8] is not a scalar");
  expect_error("bench --fn embed --steps 1", "dataset shapes makes images");
  expect_error("bench --fn embed --steps 1", "choose the inputs with --data npy:NAME=FILE.npy");
  expect_error("bench --steps 1 --set tau=1 --data npy:x=/nonexistent.npy", "/nonexistent.npy");
  expect_error("bench --steps 1 --set tau=1 --data nosuch", "unknown dataset 'nosuch'");
}
END_TEST

/* A step that fails or returns a non-finite loss ends the run with its message. */
START_TEST(test_bad_steps) {
  expect_error("bench --fn fail --set a=1 --steps 2", "entry 'fail' failed on purpose");
  expect_error("bench --steps 2 --warmup 0 --set tau=-1", "step 0: the loss of 'loss' is NaN; no timing reported");
}
END_TEST

/* bench --compare's compiler: a fake program per variant, with figures
 * that say which variant it is; the variant "bad" does not compile. */
static int compiled;
static RtProgram *fake_compile(void *ctx, const char *flags, const char *entry, RtExePlanFigures *f, RtErr *e) {
  (void)ctx;
  if (strcmp(flags, "bad") == 0) {
    rt_err(e, "flag '%s' is bad", flags);
    return NULL;
  }
  ck_assert_str_eq(entry, "loss");
  compiled++;
  *f = (RtExePlanFigures){(int)strlen(flags), 2 * (int)strlen(flags), 1 << 20, 3 << 20};
  return new_program();
}

START_TEST(test_compare) {
  RtProgram *p = make_program();
  rt_exe_set_compiler(NULL);
  Result r = bench(p, "bench --set tau=1 --compare a bb");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "built ahead of time") && strstr(r.err, "dalc run"), "%s", r.err);
  result_free(&r);
  rt_exe_set_compiler(&(RtExeCompiler){fake_compile, NULL});
  r = bench(p, "bench --set tau=1 --steps 3 --warmup 1 --json --compare a bb");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_int_eq(compiled, 2);
  cJSON *o = cJSON_Parse(r.out);
  ck_assert_ptr_nonnull(o);
  ck_assert_str_eq(str(o, "entry"), "loss");
  ck_assert_int_eq((int)num(o, "rounds"), 3);
  const cJSON *v = cJSON_GetObjectItem(o, "variants");
  ck_assert_int_eq(cJSON_GetArraySize(v), 2);
  for (int i = 0; i < 2; i++) {
    const cJSON *x = cJSON_GetArrayItem(v, i);
    ck_assert_str_eq(str(x, "flags"), i ? "bb" : "a");
    ck_assert_int_eq((int)num(x, "kernels"), i + 1);
    ck_assert_int_eq((int)num(x, "steps"), 2 * (i + 1));
    ck_assert(num(x, "bytes_moved") == 3 << 20 && num(x, "arena_bytes") == 1 << 20);
    ck_assert(num(x, "ms_min") <= num(x, "ms_median") && num(x, "ms_median") <= num(x, "ms_max"));
  }
  ck_assert(num(cJSON_GetArrayItem(v, 0), "ratio") == 1);
  cJSON_Delete(o);
  /* interleaved: every round runs the same step of both variants */
  ck_assert_int_eq(rec.ncall, 2 * (1 + 3));
  for (int c = 0; c < rec.ncall; c++) ck_assert_int_eq((int)rec.step[c], c / 2);
  result_free(&r);
  r = bench(p, "bench --set tau=1 --steps 2 --warmup 0 --compare a bb");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, "x first") && strstr(r.out, "\n  a ") && strstr(r.out, "\n  bb "), "%s", r.out);
  result_free(&r);
  r = bench(p, "bench --set tau=1 --compare a bad");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "variant 'bad': flag 'bad' is bad"), "%s", r.err);
  result_free(&r);
  r = bench(p, "bench --set tau=1 --compare");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "needs at least one variant"), "%s", r.err);
  result_free(&r);
  rt_exe_set_compiler(NULL);
  rt_program_free(p);
}
END_TEST

/* The plan figures: a GEMM's operands, a copy both ways, a kernel's
 * buffers once however many steps (chunks) call it. */
START_TEST(test_plan_figures) {
  RtBuffer buf[2] = {{.kind = RT_BUF_ARENA, .bytes = 16}, {.kind = RT_BUF_ARENA, .bytes = 24}};
  static const int args[2] = {0, 1};
  RtStep step[4] = {
      {.kind = RT_STEP_GEMM, .narg = 2, .arg = args, .gemm = {.batch = 1, .m = 2, .n = 3, .k = 4}},
      {.kind = RT_STEP_KERNEL, .kernel = 0, .range = 1, .narg = 2, .arg = args},
      {.kind = RT_STEP_KERNEL, .kernel = 0, .range = 1, .narg = 2, .arg = args},
      {.kind = RT_STEP_COPY, .narg = 2, .arg = args},
  };
  RtPlan pl = {.nbuf = 2, .buf = buf, .nstep = 4, .step = step, .nkernel = 1, .arena_bytes = 64};
  RtExePlanFigures f = {0};
  rt_exe_plan_figures(&pl, &f);
  ck_assert_int_eq(f.steps, 3);
  ck_assert_int_eq(f.arena_bytes, 64);
  ck_assert_int_eq(f.bytes_moved, (2 * 4 + 4 * 3 + 2 * 3) * 4 + (16 + 24) + 2 * 16);
  step[0].gemm.beta = 1; /* C is read too */
  step[0].gemm.batch = 2, step[0].gemm.stride_a = 8; /* A per batch, B shared, C once */
  rt_exe_plan_figures(&pl, &f);
  ck_assert_int_eq(f.bytes_moved, (2 * 2 * 4 + 4 * 3 + 2 * 2 * 3) * 4 + (16 + 24) + 2 * 16);
}
END_TEST

START_TEST(test_help_lists_bench) {
  RtProgram *p = make_program();
  Result r = bench(p, "help");
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "bench [--fn NAME] [--steps N] [--warmup W]"));
  result_free(&r);
  r = bench(p, "benchmark");
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "commands: info, train, run, data, tokenize, bench, sample, generate, eval, help"));
  result_free(&r);
  rt_program_free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("bench");
  TCase *tc = tcase_create("bench");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_train_json);
  tcase_add_test(tc, test_compare);
  tcase_add_test(tc, test_plan_figures);
  tcase_add_test(tc, test_text_report);
  tcase_add_test(tc, test_inference_tokens);
  tcase_add_test(tc, test_budget_cold);
  tcase_add_test(tc, test_budget_stops);
  tcase_add_test(tc, test_bad_flags);
  tcase_add_test(tc, test_bad_inputs);
  tcase_add_test(tc, test_bad_steps);
  tcase_add_test(tc, test_help_lists_bench);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
