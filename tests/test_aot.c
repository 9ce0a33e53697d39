/* test_aot.c — the AOT build (codegen/aot.h) from C, so it also runs under
 * the sanitizers (tests/scripts/aot.py drives it through dalc on real
 * models):
 *
 *   - the C writer on a hand-made plan with what the models' plans rarely
 *     have: constant data of every kind (explicit words with NaN, -0 and a
 *     denormal; one value repeated; zeros), a GEMM's alpha as an exact hex
 *     float, names that need escaping; the file compiles with -Werror and
 *     the executable returns the data bit for bit;
 *   - cg_program_spec: state order, shared parameters, disagreements;
 *   - cg_aot_build on small graphs: the executable computes what the graph
 *     says from parameters initialised as runtime/core/init.h says, and failures
 *     are messages that leave nothing behind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/aot.h"
#include "codegen/aot_impl.h"
#include "ir/ref/ref_program.h"
#include "runtime/core/init.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tests/util.h"

#ifdef __SANITIZE_ADDRESS__
#define SANITIZE "-fsanitize=address,undefined"
#endif

/* The folder of the libraries that go with the dalc under test. */
static char *runtime_lib(void) {
  const char *dalc = tu_dalc();
  const char *slash = strrchr(dalc, '/');
  size_t n = slash ? (size_t)(slash - dalc) : 1;
  char *lib = malloc(n + 32);
  snprintf(lib, n + 32, "%.*s/libruntime.a", (int)n, slash ? dalc : ".");
  return lib;
}

/* Runs a command, returning its output; fails the test on a non-zero exit. */
static char *run_ok(const char *cmd) {
  int status;
  char *out = tu_sh_output(&status, "%s", cmd);
  ck_assert_msg(status == 0, "`%s` exited %d: %s", cmd, status, out);
  return out;
}

/* ---- the writer -------------------------------------------------------------------- */

static const uint32_t WORDS[5] = {0x3fc00000u /* 1.5 */, 0xc0000000u /* -2 */, 0x7fc00001u /* a NaN */,
                                  0x00000001u /* the smallest denormal */, 0x80000000u /* -0 */};
static const int32_t INTS[3] = {7, -1, 0};
static const float REPEATED[4] = {2.5f, 2.5f, 2.5f, 2.5f};
static const float ZEROS[3] = {0, 0, 0};

#define WEIRD "c\"1\\\n\t\xc3\xbc" /* a quote, a backslash, a newline, a tab, u-umlaut */

static const RtBuffer BUF[] = {
    {.kind = RT_BUF_CONST, .dtype = RT_F32, .rank = 1, .dim = {5}, .bytes = 20, .name = WEIRD, .data = WORDS},
    {.kind = RT_BUF_CONST, .dtype = RT_I32, .rank = 1, .dim = {3}, .bytes = 12, .name = "ints", .data = INTS},
    {.kind = RT_BUF_CONST, .dtype = RT_F32, .rank = 2, .dim = {2, 2}, .bytes = 16, .name = "2.5", .data = REPEATED},
    {.kind = RT_BUF_CONST, .dtype = RT_F32, .rank = 1, .dim = {3}, .bytes = 12, .name = "zeros", .data = ZEROS},
    {.kind = RT_BUF_OUTPUT, .dtype = RT_F32, .rank = 1, .dim = {15}, .bytes = 60, .index = 0, .name = "raw"},
    {.kind = RT_BUF_OUTPUT, .dtype = RT_F32, .rank = 2, .dim = {2, 2}, .bytes = 16, .index = 1, .name = "gemm"},
    {.kind = RT_BUF_ARENA, .dtype = RT_F32, .rank = 0, .bytes = 4, .offset = 64, .name = "unused %3"},
};
static const int ARGS[] = {0, 1, 2, 3, 4, 2, 2, 5};
static const char *const KNAME[] = {"aot_test_gather"};
static const RtStep STEP[] = {
    {.kind = RT_STEP_KERNEL, .name = "gather " WEIRD, .kernel = 0, .range = 1, .narg = 5, .arg = ARGS},
    {.kind = RT_STEP_GEMM, .name = "gemm", .kernel = -1, .narg = 3, .arg = ARGS + 5,
     .gemm = {.batch = 1, .trans_b = 1, .m = 2, .n = 2, .k = 2, .lda = 2, .ldb = 2, .ldc = 2, .alpha = 0.1f,
              .beta = 0}},
};
static const RtPlan PLAN = {.name = "consts " WEIRD, .nbuf = 7, .buf = BUF, .nstep = 2, .step = STEP,
                            .nkernel = 1, .kernel_name = KNAME, .arena_bytes = 128, .ninput = 0, .noutput = 2};
static const RtArgSpec OUTS[] = {{"raw", RT_F32, 1, {15}}, {"gemm", RT_F32, 2, {2, 2}}};
static const RtEntrySpec ENTRY[] = {{"consts", false, 0, NULL, 2, OUTS}};
static const RtStateSpec STATE[] = {
    {.name = "w.\xc3\xa9\"x", .dtype = RT_F32, .rank = 2, .dim = {2, 3}, .param = true, .init = RT_INIT_NORMAL,
     .init_a = 0.5, .init_b = 0.1},
    {.name = "opt.s", .dtype = RT_F32, .rank = 1, .dim = {1}},
};

static const char KERNELS[] =
    "#include <string.h>\n"
    "#include \"runtime/sched/plan.h\"\n"
    "void aot_test_gather(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end);\n"
    "void aot_test_gather(void *const *args, const RtRunCtx *ctx, int64_t begin, int64_t end) {\n"
    "  (void)ctx, (void)begin, (void)end;\n"
    "  char *out = args[4];\n"
    "  memcpy(out, args[0], 20);\n"
    "  memcpy(out + 20, args[1], 12);\n"
    "  memcpy(out + 32, args[2], 16);\n"
    "  memcpy(out + 48, args[3], 12);\n"
    "}\n";

START_TEST(test_writer_roundtrip) {
  char *src = tu_path("main.c"), *kern = tu_path("kernels.c"), *exe = tu_path("consts"), *lib = runtime_lib();
  FILE *f = fopen(src, "w");
  ck_assert_ptr_nonnull(f);
  RtErr e;
  RtPlanProgramDesc d = {.model = "m\"odel\\.dal", .config = "c\n1", .lr = 0.1, .nstate = 2, .state = STATE,
                         .nentry = 1, .entry = ENTRY};
  cg_aot_write_prologue(f, d.model, d.config, "cpu", "+features");
  ck_assert_msg(cg_aot_write_plan(f, 0, &PLAN, &e) == 0, "%s", e.msg);
  cg_aot_write_main(f, &d);
  ck_assert_int_eq(fclose(f), 0);
  tu_write_file(kern, KERNELS);
  const char *argv[] = {"cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I.", src, kern, lib, "-lopenblas",
                        "-lcjson", "-lz", "-lcairo", "-lfontconfig", "-lm", "-lpthread", "-o", exe,
#ifdef SANITIZE
                        SANITIZE,
#endif
                        NULL};
  ck_assert_msg(cg_aot_spawn((char *const *)argv, &e) == 0, "%s", e.msg);

  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s info", exe);
  char *info = run_ok(cmd);
  ck_assert_msg(strstr(info, "model: m\"odel\\.dal\nconfig: c\n1\n") != NULL, "%s", info);
  ck_assert_msg(strstr(info, "learning rate: 0.1\n") != NULL, "%s", info);
  ck_assert_msg(strstr(info, "consts() -> raw: f32[15], gemm: f32[2, 2]") != NULL, "%s", info);
  free(info);
  char *raw = tu_path("raw.npy"), *gemm = tu_path("gemm.npy"), *st = tu_path("state.safetensors");
  snprintf(cmd, sizeof cmd, "%s run --fn consts --out raw=%s --out gemm=%s --seed 9 --save-state %s", exe, raw, gemm,
           st);
  free(run_ok(cmd));
  RtTensor *t;
  ck_assert_msg(rt_npy_read(raw, &t, &e) == 0, "%s", e.msg);
  ck_assert_mem_eq(t->data, WORDS, 20);
  ck_assert_mem_eq((char *)t->data + 20, INTS, 12);
  ck_assert_mem_eq((char *)t->data + 32, REPEATED, 16);
  ck_assert_mem_eq((char *)t->data + 48, ZEROS, 12);
  rt_tensor_free(t);
  ck_assert_msg(rt_npy_read(gemm, &t, &e) == 0, "%s", e.msg);
  for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(rt_f32(t)[i], 0.1f * 12.5f, 1e-6); /* 2.5 * 2.5 * 2, scaled */
  rt_tensor_free(t);
  RtTensorList *l;
  ck_assert_msg(rt_safetensors_read(st, &l, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(l->n, 2);
  ck_assert_str_eq(l->name[0], STATE[0].name);
  float want[6];
  rt_init_fill(want, 6, RT_INIT_NORMAL, 0.5, 0.1, 9, STATE[0].name);
  ck_assert_mem_eq(rt_f32(l->tensor[0]), want, sizeof want);
  ck_assert(rt_f32(rt_list_get(l, "opt.s"))[0] == 0);
  rt_list_free(l);
  free(raw), free(gemm), free(st);
  free(src), free(kern), free(exe), free(lib);
}
END_TEST

START_TEST(test_writer_refuses_bad_names) {
  static const char *const bad[] = {"k-1"};
  RtPlan p = PLAN;
  p.kernel_name = bad;
  FILE *f = fopen("/dev/null", "w");
  RtErr e;
  ck_assert_int_eq(cg_aot_write_plan(f, 0, &p, &e), -1);
  ck_assert_msg(strstr(e.msg, "'k-1' is not a C identifier") != NULL, "%s", e.msg);
  fclose(f);
}
END_TEST

/* ---- cg_program_spec and cg_aot_build ---------------------------------------------------------- */

static const SrcLoc NOLOC = {0};

/* name(x: f32[4]) -> exp(x) * w + 1 (w a parameter [w_len], normal(0, 1));
 * with 'state', also reads a state tensor "s" [4]. */
static IrGraph *small_graph(const char *name, int64_t w_len, bool state) {
  IrGraph *g = ir_graph_new(name);
  int64_t four = 4;
  IrShape s4 = ir_shape_make(1, &four), sw = ir_shape_make(1, &w_len);
  int x = ir_input(g, "x", IR_F32, s4, NOLOC);
  int w = ir_param(g, "w", sw, IR_INIT_NORMAL, 0, 1, NOLOC);
  int y = ir_binary(g, OP_MUL, ir_unary(g, OP_EXP, x, NOLOC), w, NOLOC);
  y = ir_binary(g, OP_ADD, y, ir_scalar(g, IR_F32, 1, NOLOC), NOLOC);
  if (state) y = ir_binary(g, OP_ADD, y, ir_state(g, "s", s4, NOLOC), NOLOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  ir_set_outputs(g, &y, (const char *const[]){name}, 1);
  return g;
}

START_TEST(test_spec) {
  IrGraph *g[2] = {small_graph("f", 4, true), small_graph("h", 4, false)};
  RtPlanProgramDesc d;
  RtErr e;
  ck_assert_msg(cg_program_spec(g, 2, "m", &d, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(d.nstate, 2); /* w once, shared; the parameter before the state */
  ck_assert_str_eq(d.state[0].name, "w");
  ck_assert(d.state[0].param && d.state[0].init == RT_INIT_NORMAL && d.state[0].init_b == 1);
  ck_assert_str_eq(d.state[1].name, "s");
  ck_assert(!d.state[1].param);
  ck_assert_int_eq(d.nentry, 2);
  ck_assert_str_eq(d.entry[1].name, "h");
  ck_assert_str_eq(d.entry[1].input[0].name, "x");
  ck_assert_str_eq(d.entry[1].output[0].name, "h");
  cg_program_spec_free(&d);
  ir_graph_free(g[1]);
  g[1] = small_graph("h", 1, false); /* w of another shape */
  ck_assert_int_eq(cg_program_spec(g, 2, "m", &d, &e), -1);
  ck_assert_msg(strstr(e.msg, "entries disagree on 'w'") != NULL, "%s", e.msg);
  ir_graph_free(g[1]);
  g[1] = small_graph("f", 4, false);
  ck_assert_int_eq(cg_program_spec(g, 2, "m", &d, &e), -1);
  ck_assert_msg(strstr(e.msg, "two entries are called 'f'") != NULL, "%s", e.msg);
  ir_graph_free(g[0]);
  ir_graph_free(g[1]);
}
END_TEST

START_TEST(test_build) {
  char *exe = tu_path("small"), *lib = runtime_lib(), *x = tu_path("x.npy"), *y = tu_path("y.npy");
  CgAotOptions o = {.output = exe, .runtime_lib = lib, .include_dir = "."};
  IrGraph *g[2] = {small_graph("f", 4, false), small_graph("h", 1, false)};
  RtErr e;
  ck_assert_int_eq(cg_aot_build(g, 2, "small", "c", 0.5, &o, &e), -1); /* takes the graphs on failure too */
  ck_assert_msg(strstr(e.msg, "entries disagree on 'w'") != NULL, "%s", e.msg);

  IrGraph *h[1] = {small_graph("f", 4, false)};
  ck_assert_msg(cg_aot_build(h, 1, "small", "c", 0.5, &o, &e) == 0, "%s", e.msg);
  RtTensor *in = rt_tensor_new(RT_F32, 1, (int64_t[]){4}, NULL);
  for (int i = 0; i < 4; i++) rt_f32(in)[i] = 0.25f * (float)i - 0.5f;
  ck_assert_int_eq(rt_npy_write(x, in, &e), 0);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s run --fn f --in x=%s --out f=%s --seed 5", exe, x, y);
  free(run_ok(cmd));
  RtTensor *out;
  ck_assert_msg(rt_npy_read(y, &out, &e) == 0, "%s", e.msg);
  float w[4];
  rt_init_fill(w, 4, RT_INIT_NORMAL, 0, 1, 5, "w");
  for (int i = 0; i < 4; i++)
    ck_assert_float_eq_tol(rt_f32(out)[i], expf(rt_f32(in)[i]) * w[i] + 1, 1e-5f * (fabsf(w[i]) * 2 + 1));
  rt_tensor_free(out);
  rt_tensor_free(in);

  /* an output that cannot be written: said before compiling, nothing left */
  IrGraph *k[1] = {small_graph("f", 4, false)};
  o.output = "/nonexistent-dir/small";
  ck_assert_int_eq(cg_aot_build(k, 1, "small", "c", 0.5, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "cannot write /nonexistent-dir/small") != NULL, "%s", e.msg);
  /* a runtime library that is not there */
  IrGraph *m[1] = {small_graph("f", 4, false)};
  o.output = exe;
  o.runtime_lib = "/nonexistent-dir/libruntime.a";
  ck_assert_int_eq(cg_aot_build(m, 1, "small", "c", 0.5, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "/nonexistent-dir/libruntime.a is missing") != NULL, "%s", e.msg);
  free(exe), free(lib), free(x), free(y);
}
END_TEST

int main(void) {
  Suite *s = suite_create("aot");
  TCase *tc = tcase_create("aot");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_writer_roundtrip);
  tcase_add_test(tc, test_writer_refuses_bad_names);
  tcase_add_test(tc, test_spec);
  tcase_add_test(tc, test_build);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
