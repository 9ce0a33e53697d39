/* test_train.c — the training driver (runtime/train/train.h, rt_main) and
 * ir/ref/ref_program on a hand-built training step: linear regression
 * with noisy targets, its gradient and an SGD-with-momentum update written
 * directly in IR. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/ref/ref_program.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/train.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_train.c", __LINE__, 1})
#define B 4
#define D 3
#define N 10 /* rows in the dataset */

static IrShape shape(int rank, int64_t d0, int64_t d1) {
  int64_t d[2] = {d0, d1};
  return ir_shape_make(rank, d);
}

/* The linear model's prediction x @ w + b: [B]. */
static int predict(IrGraph *g, int x, int w, int b) {
  int xw = ir_build(g, OP_MATMUL, (int[]){x, w}, 2, NULL, LOC); /* [B, 1] */
  return ir_binary(g, OP_ADD, ir_reshape(g, xw, shape(1, B, 0), LOC), b, LOC);
}

/* v' = 0.9 v + grad; p' = p - lr * v' (both as updates). */
static void momentum(IrGraph *g, int p, int v, int grad, int lr) {
  int v2 = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, v, ir_scalar(g, IR_F32, 0.9, LOC), LOC), grad, LOC);
  int p2 = ir_binary(g, OP_SUB, p, ir_binary(g, OP_MUL, lr, v2, LOC), LOC);
  ck_assert_int_ge(ir_add_update(g, v, v2, LOC), 0);
  ck_assert_int_ge(ir_add_update(g, p, p2, LOC), 0);
}

/* step(x: f32[B, D], y: f32[B], tau: f32, opt.lr: f32) -> loss
 *   y~ = y + tau * gumbel     (noise that depends on the seed and step)
 *   loss = mean((x @ w + b - y~)^2); w, b by SGD with momentum; opt.step += 1 */
static IrGraph *step_graph(const char *param_name) {
  IrGraph *g = ir_graph_new("step");
  g->train = true;
  int x = ir_input(g, "x", IR_F32, shape(2, B, D), LOC);
  int y = ir_input(g, "y", IR_F32, shape(1, B, 0), LOC);
  int tau = ir_input(g, "tau", IR_F32, shape(0, 0, 0), LOC);
  int lr = ir_input(g, "opt.lr", IR_F32, shape(0, 0, 0), LOC);
  int w = ir_param(g, param_name, shape(2, D, 1), IR_INIT_NORMAL, 0.0, 0.5, LOC);
  int b = ir_param(g, "b", shape(1, 1, 0), IR_INIT_ZEROS, 0, 0, LOC);
  int vw = ir_state(g, "opt.m.w", shape(2, D, 1), LOC);
  int vb = ir_state(g, "opt.m.b", shape(1, 1, 0), LOC);
  int count = ir_state(g, "opt.step", shape(0, 0, 0), LOC);
  int noise = ir_build(g, OP_GUMBEL, NULL, 0, &(IrAttr){.shape = shape(1, B, 0), .salt = 7}, LOC);
  int target = ir_binary(g, OP_ADD, y, ir_binary(g, OP_MUL, tau, noise, LOC), LOC);
  int err = ir_binary(g, OP_SUB, predict(g, x, w, b), target, LOC);
  int sq = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, err, err, LOC), 1u, false, LOC);
  int loss = ir_binary(g, OP_MUL, sq, ir_scalar(g, IR_F32, 1.0 / B, LOC), LOC);
  /* d loss / d pred = 2 err / B; dw = x^T @ that; db = its sum. */
  int dpred = ir_binary(g, OP_MUL, err, ir_scalar(g, IR_F32, 2.0 / B, LOC), LOC);
  int dw = ir_build(g, OP_MATMUL, (int[]){x, ir_reshape(g, dpred, shape(2, B, 1), LOC)}, 2,
                    &(IrAttr){.trans_a = 1}, LOC);
  int db = ir_reduce(g, OP_SUM, dpred, 1u, true, LOC);
  momentum(g, w, vw, dw, lr);
  momentum(g, b, vb, db, lr);
  ck_assert_int_ge(ir_add_update(g, count, ir_binary(g, OP_ADD, count, ir_scalar(g, IR_F32, 1, LOC), LOC), LOC), 0);
  ck_assert_msg(loss >= 0, "%s", g->error);
  ir_set_outputs(g, &loss, (const char *[]){"loss"}, 1);
  return g;
}

/* predict(x: f32[B, D]) -> pred: f32[B], reading the same parameters. */
static IrGraph *predict_graph(void) {
  IrGraph *g = ir_graph_new("predict");
  int x = ir_input(g, "x", IR_F32, shape(2, B, D), LOC);
  int b = ir_param(g, "b", shape(1, 1, 0), IR_INIT_ZEROS, 0, 0, LOC);
  int w = ir_param(g, "w", shape(2, D, 1), IR_INIT_NORMAL, 0.0, 0.5, LOC);
  int p = predict(g, x, w, b);
  ir_set_outputs(g, &p, (const char *[]){"pred"}, 1);
  return g;
}

/* heldout(x: f32[B, D], y: f32[B], tau: f32) -> mean((x @ w + b - y)^2) + tau:
 * an inference entry returning a scalar, for --eval-fn (tau shows that the
 * run's schedules reach it). */
static IrGraph *heldout_graph(void) {
  IrGraph *g = ir_graph_new("heldout");
  int x = ir_input(g, "x", IR_F32, shape(2, B, D), LOC);
  int y = ir_input(g, "y", IR_F32, shape(1, B, 0), LOC);
  int tau = ir_input(g, "tau", IR_F32, shape(0, 0, 0), LOC);
  int w = ir_param(g, "w", shape(2, D, 1), IR_INIT_NORMAL, 0.0, 0.5, LOC);
  int b = ir_param(g, "b", shape(1, 1, 0), IR_INIT_ZEROS, 0, 0, LOC);
  int err = ir_binary(g, OP_SUB, predict(g, x, w, b), y, LOC);
  int sq = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, err, err, LOC), 1u, false, LOC);
  int mse = ir_binary(g, OP_MUL, sq, ir_scalar(g, IR_F32, 1.0 / B, LOC), LOC);
  int out = ir_binary(g, OP_ADD, mse, tau, LOC);
  ck_assert_msg(out >= 0, "%s", g->error);
  ir_set_outputs(g, &out, (const char *[]){"heldout"}, 1);
  return g;
}

/* The linear model with the heldout entry as well. */
static RtProgram *make_program_eval(const char *model, uint64_t seed) {
  IrGraph *g[3] = {step_graph("w"), predict_graph(), heldout_graph()};
  RtErr e;
  RtProgram *p = cg_ref_program(g, 3, model, "test", 0.05, seed, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  return p;
}

static RtProgram *make_program(const char *model, uint64_t seed) {
  IrGraph *g[2] = {step_graph("w"), predict_graph()};
  RtErr e;
  RtProgram *p = cg_ref_program(g, 2, model, "test", 0.05, seed, &e);
  ck_assert_msg(p != NULL, "%s", e.msg);
  return p;
}

/* The true model the data follows. */
static const float w_true[D] = {1.5f, -2.0f, 0.5f};
static const float b_true = 0.25f;

static char *x_npy, *y_npy, *data_spec;

/* Writes x.npy [N, D] and y.npy [N] once per process. */
static void make_data(void) {
  if (data_spec) return;
  RtErr e;
  RtTensor *x = rt_tensor_new(RT_F32, 2, (int64_t[]){N, D}, &e);
  RtTensor *y = rt_tensor_new(RT_F32, 1, (int64_t[]){N}, &e);
  for (int i = 0; i < N; i++) {
    float acc = b_true;
    for (int k = 0; k < D; k++) {
      float v = (float)sin(1.0 + i * 0.7 + k * 1.3);
      rt_f32(x)[i * D + k] = v;
      acc += v * w_true[k];
    }
    rt_f32(y)[i] = acc;
  }
  x_npy = tu_path("x.npy");
  y_npy = tu_path("y.npy");
  ck_assert_int_eq(rt_npy_write(x_npy, x, &e), 0);
  ck_assert_int_eq(rt_npy_write(y_npy, y, &e), 0);
  rt_tensor_free(x);
  rt_tensor_free(y);
  size_t n = strlen(x_npy) + strlen(y_npy) + 16;
  data_spec = malloc(n);
  snprintf(data_spec, n, "npy:x=%s,y=%s", x_npy, y_npy);
}

/* rt_main on a command line given as one string (split at spaces). */
static int main_str(RtProgram *p, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  char *argv[64];
  int argc = 0;
  argv[argc++] = "linreg";
  for (char *t = strtok(line, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
  argv[argc] = NULL;
  return rt_main(p, argc, argv);
}

/* The common training flags for a run of 'steps' steps. */
static char *train_flags(int steps, const char *log, const char *ckpt) {
  make_data();
  static char buf[2048];
  snprintf(buf, sizeof buf, "train --steps %d --data %s --seed 11 --anneal tau=0.2:0.01 --quiet --log %s --checkpoint %s",
           steps, data_spec, log, ckpt);
  return buf;
}

/* ---- a step that raises a signal: the kill points of the resume tests ---- */

static int (*real_run)(RtProgram *, int, RtTensor *const *, RtTensor **, uint64_t, uint64_t, RtErr *);
static uint64_t signal_step;
static int signal_to_raise;

static int run_then_signal(RtProgram *p, int entry, RtTensor *const *in, RtTensor **out, uint64_t seed, uint64_t step,
                           RtErr *e) {
  int rc = real_run(p, entry, in, out, seed, step, e);
  if (p->entry[entry].train && step == signal_step) raise(signal_to_raise);
  return rc;
}

static void arm_signal(RtProgram *p, int sig, uint64_t step) {
  real_run = p->run;
  p->run = run_then_signal;
  signal_to_raise = sig;
  signal_step = step;
}

/* The data lines of a log (after the header), or NULL. */
static char *log_body(const char *path) {
  char *text = tu_read_file(path, NULL);
  if (!text) return NULL;
  char *nl = strchr(text, '\n');
  ck_assert_msg(nl != NULL, "%s has no header line", path);
  memmove(text, nl + 1, strlen(nl + 1) + 1);
  return text;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Loss of data line i of a log body. */
static double log_loss(const char *body, int line) {
  for (int i = 0; i < line; i++) body = strchr(body, '\n') + 1;
  const char *tab = strchr(body, '\t');
  return strtod(tab + 1, NULL);
}

static void assert_same_state(const RtProgram *a, const RtProgram *b) {
  ck_assert_int_eq(a->state->n, b->state->n);
  for (int i = 0; i < a->state->n; i++) {
    ck_assert_str_eq(a->state->name[i], b->state->name[i]);
    ck_assert_msg(memcmp(a->state->tensor[i]->data, b->state->tensor[i]->data, rt_tensor_bytes(a->state->tensor[i])) == 0,
                  "state tensor '%s' differs", a->state->name[i]);
  }
}

/* ---- cg_ref_program ---- */

START_TEST(test_program_state) {
  RtProgram *p = make_program("linreg", 3);
  /* Parameters first (in order of first use), then STATE nodes. */
  ck_assert_int_eq(p->nparam, 2);
  ck_assert_int_eq(p->state->n, 5);
  ck_assert_str_eq(p->state->name[0], "w");
  ck_assert_str_eq(p->state->name[1], "b");
  ck_assert_str_eq(p->state->name[2], "opt.m.w");
  ck_assert_str_eq(p->state->name[4], "opt.step");
  ck_assert_int_eq(p->nentry, 2);
  ck_assert(p->entry[0].train && !p->entry[1].train);
  ck_assert_int_eq(p->entry[0].ninput, 4);
  ck_assert_str_eq(p->entry[0].input[3].name, RT_LR_INPUT);
  ck_assert_str_eq(p->entry[1].output[0].name, "pred");
  ck_assert_int_eq(p->entry[1].output[0].dim[0], B);
  /* w from its initialiser (not all zero), the optimizer state zero. */
  double wsum = 0;
  for (int i = 0; i < D; i++) wsum += fabs(rt_f32(p->state->tensor[0])[i]);
  ck_assert(wsum > 0);
  ck_assert_float_eq(rt_f32(p->state->tensor[4])[0], 0.0f);
  /* The same seed gives the same parameters; another seed others. */
  RtProgram *q = make_program("linreg", 3), *r = make_program("linreg", 4);
  assert_same_state(p, q);
  ck_assert(memcmp(p->state->tensor[0]->data, r->state->tensor[0]->data, D * sizeof(float)) != 0);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(r);
}
END_TEST

START_TEST(test_program_disagreeing_graphs) {
  IrGraph *g[2] = {step_graph("w"), ir_graph_new("other")};
  ck_assert(ir_param(g[1], "w", shape(2, D, 2), IR_INIT_ZEROS, 0, 0, LOC) >= 0);
  int out = ir_param(g[1], "w", shape(2, D, 2), IR_INIT_ZEROS, 0, 0, LOC);
  ir_set_outputs(g[1], &out, NULL, 1);
  RtErr e;
  ck_assert_ptr_null(cg_ref_program(g, 2, "linreg", "test", 0.1, 0, &e));
  ck_assert_msg(strstr(e.msg, "'w'") && strstr(e.msg, "[3, 2]") && strstr(e.msg, "[3, 1]"), "%s", e.msg);
}
END_TEST

/* ---- training ---- */

START_TEST(test_loss_decreases) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("dec.tsv"), *ckpt = tu_path("dec.safetensors");
  ck_assert_int_eq(main_str(p, "%s --lr 0.05", train_flags(150, log, ckpt)), 0);
  char *text = tu_read_file(log, NULL);
  ck_assert_msg(strncmp(text, "step\tloss\ttau\topt.lr\n", 20) == 0, "header: %.40s", text);
  char *body = log_body(log);
  ck_assert_int_eq(count_lines(body), 150);
  double first = log_loss(body, 0), last = log_loss(body, 149);
  ck_assert_msg(last < first / 20, "loss %g -> %g", first, last);
  /* The annealed tau: 0.2 at step 0, 0.01 at the last step; lr constant. */
  ck_assert_msg(strstr(body, "0\t") == body && strstr(body, "\t0.200000003\t0.0500000007\n"), "%.80s", body);
  ck_assert_msg(strstr(body, "149\t") && strstr(body, "\t0.00999999978\t0.0500000007\n"), "%s", body);
  /* The inference entry reads the trained parameters. */
  RtErr e;
  RtTensor *x = NULL, *out = NULL;
  ck_assert_int_eq(rt_npy_read(x_npy, &x, &e), 0);
  x->dim[0] = B; /* the first B rows */
  ck_assert_int_eq(p->run(p, 1, &x, &out, 0, 0, &e), 0);
  for (int j = 0; j < B; j++) {
    float want = b_true;
    for (int k = 0; k < D; k++) want += rt_f32(x)[j * D + k] * w_true[k];
    ck_assert_msg(fabsf(rt_f32(out)[j] - want) < 0.1f, "row %d: %g vs %g", j, rt_f32(out)[j], want);
  }
  /* opt.step counted every step. */
  ck_assert_float_eq(rt_f32(rt_list_get(p->state, "opt.step"))[0], 150.0f);
  rt_tensor_free(x);
  rt_tensor_free(out);
  free(text);
  free(body);
  free(log);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

START_TEST(test_checkpoint_round_trip) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("rt.tsv"), *ckpt = tu_path("rt.safetensors");
  ck_assert_int_eq(main_str(p, "%s", train_flags(20, log, ckpt)), 0);
  /* Every state tensor under its own name, and the metadata. */
  RtTensorList *l;
  RtMeta *m;
  RtErr e;
  ck_assert_msg(rt_safetensors_read_meta(ckpt, &l, &m, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(l->n, p->state->n);
  ck_assert_str_eq(rt_meta_get(m, "dal.step"), "20");
  ck_assert_str_eq(rt_meta_get(m, "dal.seed"), "11");
  ck_assert_str_eq(rt_meta_get(m, "dal.model"), "linreg");
  ck_assert_str_eq(rt_meta_get(m, "dal.config"), "test");
  ck_assert_str_eq(rt_meta_get(m, "format"), "pt");
  rt_list_free(l);
  rt_meta_free(m);
  /* Loading restores every byte of the state, whatever the program held. */
  RtProgram *q = make_program("linreg", 99);
  RtCheckpointInfo info;
  ck_assert_msg(rt_checkpoint_load(ckpt, q, &info, &e) == 0, "%s", e.msg);
  ck_assert_uint_eq(info.step, 20);
  ck_assert_uint_eq(info.seed, 11);
  ck_assert_uint_eq(info.steps, 20);
  assert_same_state(p, q);
  /* Parameters (as for `run --params`): state the file lacks is zeroed,
   * state it has is taken. */
  RtProgram *r = make_program("linreg", 98);
  ck_assert_msg(rt_checkpoint_load_params(ckpt, r, &e) == 0, "%s", e.msg);
  assert_same_state(p, r);
  RtTensorList *params = rt_list_new();
  RtTensor *w = rt_tensor_new(RT_F32, 2, (int64_t[]){D, 1}, &e), *b = rt_tensor_new(RT_F32, 1, (int64_t[]){1}, &e);
  rt_f32(w)[1] = 7.0f;
  rt_list_put(params, "w", w);
  rt_list_put(params, "b", b);
  char *pfile = tu_path("params.safetensors");
  ck_assert_int_eq(rt_safetensors_write(pfile, params, &e), 0);
  ck_assert_msg(rt_checkpoint_load_params(pfile, r, &e) == 0, "%s", e.msg);
  ck_assert_float_eq(rt_f32(r->state->tensor[0])[1], 7.0f);
  ck_assert_float_eq(rt_f32(rt_list_get(r->state, "opt.step"))[0], 0.0f);
  /* A parameter missing or of the wrong shape: an error, the state kept. */
  rt_list_put(params, "b", rt_tensor_new(RT_F32, 1, (int64_t[]){2}, &e));
  ck_assert_int_eq(rt_safetensors_write(pfile, params, &e), 0);
  ck_assert_int_eq(rt_checkpoint_load_params(pfile, p, &e), -1);
  ck_assert_msg(strstr(e.msg, "'b'") && strstr(e.msg, "[2]") && strstr(e.msg, pfile), "%s", e.msg);
  ck_assert_int_eq(rt_checkpoint_load(ckpt, r, &info, &e), 0);
  assert_same_state(p, r);
  rt_list_free(params);
  free(pfile);
  free(log);
  free(ckpt);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(r);
}
END_TEST

/* The reference: an uninterrupted run of 60 steps; returns its log body
 * and leaves its final state in *out. */
static char *reference_run(RtProgram **out) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("ref.tsv"), *ckpt = tu_path("ref.safetensors");
  ck_assert_int_eq(main_str(p, "%s --every 10", train_flags(60, log, ckpt)), 0);
  char *body = log_body(log);
  ck_assert_int_eq(count_lines(body), 60);
  free(log);
  free(ckpt);
  *out = p;
  return body;
}

START_TEST(test_sigint_resume_identical) {
  RtProgram *ref;
  char *want = reference_run(&ref);
  char *log = tu_path("int.tsv"), *ckpt = tu_path("int.safetensors");
  /* SIGINT during step 25: the step finishes, a checkpoint at 26, status 130. */
  RtProgram *p = make_program("linreg", 0);
  arm_signal(p, SIGINT, 25);
  struct sigaction before;
  sigaction(SIGINT, NULL, &before);
  ck_assert_int_eq(main_str(p, "%s --every 10", train_flags(60, log, ckpt)), 130);
  char *body = log_body(log);
  ck_assert_int_eq(count_lines(body), 26);
  RtProgram *q = make_program("linreg", 5);
  RtCheckpointInfo info;
  RtErr e;
  ck_assert_int_eq(rt_checkpoint_load(ckpt, q, &info, &e), 0);
  ck_assert_uint_eq(info.step, 26);
  struct sigaction now;
  sigaction(SIGINT, NULL, &now);
  ck_assert_msg(now.sa_handler == before.sa_handler, "the driver must put the old SIGINT handler back");
  rt_program_free(p);
  free(body);
  /* Resume in a fresh program (other seed: everything comes from the file). */
  ck_assert_int_eq(main_str(q, "%s --resume %s", train_flags(60, log, ckpt), ckpt), 0);
  body = log_body(log);
  ck_assert_str_eq(body, want);
  assert_same_state(ref, q);
  free(body);
  free(want);
  free(log);
  free(ckpt);
  rt_program_free(ref);
  rt_program_free(q);
}
END_TEST

START_TEST(test_sigkill_resume_identical) {
  RtProgram *ref;
  char *want = reference_run(&ref);
  char *log = tu_path("kill.tsv"), *ckpt = tu_path("kill.safetensors");
  /* A child killed outright during step 33, 3 steps after its last checkpoint. */
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    RtProgram *p = make_program("linreg", 0);
    arm_signal(p, SIGKILL, 33);
    main_str(p, "%s --every 10", train_flags(60, log, ckpt));
    _exit(0); /* not reached */
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
  char *body = log_body(log);
  ck_assert_int_eq(count_lines(body), 33); /* steps 0..32 were logged */
  free(body);
  /* Resuming from step 30 runs steps 30..32 again: the log keeps one line each. */
  RtProgram *q = make_program("linreg", 0);
  ck_assert_int_eq(main_str(q, "%s --resume %s", train_flags(60, log, ckpt), ckpt), 0);
  body = log_body(log);
  ck_assert_str_eq(body, want);
  assert_same_state(ref, q);
  /* No temporary file is left next to the checkpoint. */
  ck_assert_int_eq(tu_sh("ls -a '%s' | grep -v -e '^\\.*$' | grep -v -e '\\.tsv$' -e '\\.safetensors$' -e '\\.npy$' >&2", tu_tmpdir()), 1);
  free(body);
  free(want);
  free(log);
  free(ckpt);
  rt_program_free(ref);
  rt_program_free(q);
}
END_TEST

/* A signal during the last step: the run is complete, status 0. */
START_TEST(test_signal_in_last_step) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("last.tsv"), *ckpt = tu_path("last.safetensors");
  arm_signal(p, SIGTERM, 9);
  ck_assert_int_eq(main_str(p, "%s", train_flags(10, log, ckpt)), 0);
  RtCheckpointInfo info;
  RtErr e;
  ck_assert_int_eq(rt_checkpoint_load(ckpt, p, &info, &e), 0);
  ck_assert_uint_eq(info.step, 10);
  free(log);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

/* Without --checkpoint: MODEL-CONFIG.safetensors in the current directory,
 * the model's directory and extension dropped. */
START_TEST(test_default_checkpoint_path) {
  make_data();
  RtProgram *p = make_program("models/linreg.dal", 0);
  ck_assert_int_eq(chdir(tu_tmpdir()), 0);
  ck_assert_int_eq(main_str(p, "train --steps 2 --data %s --set tau=0 --quiet", data_spec), 0);
  ck_assert_int_eq(access("linreg-test.safetensors", F_OK), 0);
  rt_program_free(p);
}
END_TEST

/* Resuming cuts the log to the steps before the checkpoint, dropping a
 * line the killed run left unfinished. */
START_TEST(test_log_cut) {
  char *log = tu_path("cut.tsv");
  tu_write_file(log, "step\tloss\n0\t1\n1\t0.5\n2\t0.25\n3\t0.125\n4\t0.0");
  RtErr e;
  FILE *f = rt_train_log_open(log, "ignored", 3, &e);
  ck_assert_msg(f != NULL, "%s", e.msg);
  fputs("3\t0.2\n", f);
  fclose(f);
  char *text = tu_read_file(log, NULL);
  ck_assert_str_eq(text, "step\tloss\n0\t1\n1\t0.5\n2\t0.25\n3\t0.2\n");
  free(text);
  /* A fresh run starts the file over with its header. */
  f = rt_train_log_open(log, "step\tloss\ttau", 0, &e);
  fclose(f);
  text = tu_read_file(log, NULL);
  ck_assert_str_eq(text, "step\tloss\ttau\n");
  free(text);
  ck_assert_ptr_null(rt_train_log_open("/nonexistent/dir/log.tsv", "h", 0, &e));
  ck_assert_msg(strstr(e.msg, "/nonexistent/dir/log.tsv"), "%s", e.msg);
  free(log);
}
END_TEST

START_TEST(test_resume_errors) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("err.tsv"), *ckpt = tu_path("err.safetensors");
  ck_assert_int_eq(main_str(p, "%s", train_flags(5, log, ckpt)), 0);
  RtTrainOptions o;
  RtTrainResult res;
  RtErr e;
  char *argv[] = {"--steps", "10", "--data", data_spec, "--set", "tau=0.1", "--quiet", "--resume", ckpt, NULL};
  /* A corrupt checkpoint: a clear error naming the file; the state untouched. */
  char *bad = tu_path("corrupt.safetensors");
  ck_assert_int_eq(tu_sh("head -c 100 '%s' > '%s'", ckpt, bad), 0);
  argv[8] = bad;
  ck_assert_int_eq(rt_train_parse(9, argv, &o, &e), 0);
  RtProgram *q = make_program("linreg", 0);
  ck_assert_int_eq(rt_train(q, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, bad) && strstr(e.msg, "header length"), "%s", e.msg);
  RtProgram *fresh = make_program("linreg", 0);
  assert_same_state(q, fresh);
  /* The same model named by another path: accepted. */
  RtProgram *moved = make_program("/elsewhere/linreg.dal", 0);
  ck_assert_msg(rt_checkpoint_load(ckpt, moved, &(RtCheckpointInfo){0}, &e) == 0, "%s", e.msg);
  rt_program_free(moved);
  /* A checkpoint of another model. */
  RtProgram *other = make_program("otherreg", 0);
  argv[8] = ckpt;
  ck_assert_int_eq(rt_train_parse(9, argv, &o, &e), 0);
  ck_assert_int_eq(rt_train(other, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "linreg") && strstr(e.msg, "otherreg"), "%s", e.msg);
  /* A file without the training metadata. */
  char *plain = tu_path("plain.safetensors");
  ck_assert_int_eq(rt_safetensors_write(plain, p->state, &e), 0);
  argv[8] = plain;
  ck_assert_int_eq(rt_train_parse(9, argv, &o, &e), 0);
  ck_assert_int_eq(rt_train(q, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "dal.step") && strstr(e.msg, plain), "%s", e.msg);
  /* Another seed than the checkpoint's. */
  char *argv2[] = {"--steps", "10", "--data", data_spec, "--set", "tau=0.1", "--seed", "3", "--resume", ckpt};
  ck_assert_int_eq(rt_train_parse(10, argv2, &o, &e), 0);
  ck_assert_int_eq(rt_train(q, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "--seed 11"), "%s", e.msg);
  /* Already at the end: nothing to do, success. */
  ck_assert_int_eq(main_str(q, "%s --resume %s", train_flags(5, log, ckpt), ckpt), 0);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(fresh);
  rt_program_free(other);
  free(bad);
  free(plain);
  free(log);
  free(ckpt);
}
END_TEST

START_TEST(test_input_errors) {
  make_data();
  RtProgram *p = make_program("linreg", 0);
  RtTrainOptions o;
  RtTrainResult res;
  RtErr e;
  /* tau has no value: the error names it and both flags. */
  char *a1[] = {"--steps", "3", "--data", data_spec, "--quiet"};
  ck_assert_int_eq(rt_train_parse(5, a1, &o, &e), 0);
  ck_assert_int_eq(rt_train(p, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "tau") && strstr(e.msg, "--set tau=") && strstr(e.msg, "--anneal tau="), "%s", e.msg);
  /* y is not in the dataset. */
  char spec[1024];
  snprintf(spec, sizeof spec, "npy:x=%s", x_npy);
  char *a2[] = {"--steps", "3", "--data", spec, "--set", "tau=1", "--quiet"};
  ck_assert_int_eq(rt_train_parse(7, a2, &o, &e), 0);
  ck_assert_int_eq(rt_train(p, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "'y'") || strstr(e.msg, "y: f32[4]"), "%s", e.msg);
  /* --set of something that is not an input; shapes without an image input. */
  char *a3[] = {"--steps", "3", "--data", data_spec, "--set", "tau=1", "--set", "beta=2"};
  ck_assert_int_eq(rt_train_parse(8, a3, &o, &e), 0);
  ck_assert_int_eq(rt_train(p, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "no input 'beta'"), "%s", e.msg);
  char *a4[] = {"--steps", "3", "--set", "tau=1"};
  ck_assert_int_eq(rt_train_parse(4, a4, &o, &e), 0);
  ck_assert_int_eq(rt_train(p, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "shapes") && strstr(e.msg, "f32[B, 3, S, S]"), "%s", e.msg);
  /* Flag errors. */
  char *a5[] = {"--data", data_spec};
  ck_assert_int_eq(rt_train_parse(2, a5, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--steps"), "%s", e.msg);
  char *a6[] = {"--steps", "3", "--anneal", "tau=0:1"};
  ck_assert_int_eq(rt_train_parse(4, a6, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "same sign"), "%s", e.msg);
  char *a7[] = {"--steps", "x3"};
  ck_assert_int_eq(rt_train_parse(2, a7, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "'x3'"), "%s", e.msg);
  char *a8[] = {"--steps", "3", "--bogus"};
  ck_assert_int_eq(rt_train_parse(3, a8, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--bogus"), "%s", e.msg);
  /* Bad commands through rt_main give status 1. */
  ck_assert_int_eq(main_str(p, "frobnicate"), 1);
  ck_assert_int_eq(main_str(p, "train --steps 3 --data npy:x=/nonexistent.npy --set tau=1 --quiet"), 1);
  ck_assert_int_eq(main_str(p, "info"), 0);
  rt_program_free(p);
}
END_TEST

START_TEST(test_nonfinite_loss_stops) {
  make_data();
  RtProgram *p = make_program("linreg", 0);
  char *ckpt = tu_path("nan.safetensors");
  /* A learning rate so large the loss overflows: an error, no checkpoint. */
  int rc = main_str(p, "train --steps 400 --data %s --set tau=0 --lr 1e6 --quiet --every none --checkpoint %s", data_spec,
                    ckpt);
  ck_assert_int_eq(rc, 1);
  ck_assert_int_ne(access(ckpt, F_OK), 0);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

/* `run`: an entry on .npy inputs with parameters from a checkpoint. */
START_TEST(test_run_command) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("run.tsv"), *ckpt = tu_path("run.safetensors");
  ck_assert_int_eq(main_str(p, "%s", train_flags(30, log, ckpt)), 0);
  RtErr e;
  RtTensor *x = NULL;
  ck_assert_int_eq(rt_npy_read(x_npy, &x, &e), 0);
  x->dim[0] = B;
  char *xb = tu_path("xb.npy"), *yb = tu_path("yb.npy"), *out = tu_path("pred.npy"),
       *state = tu_path("state.safetensors");
  ck_assert_int_eq(rt_npy_write(xb, x, &e), 0);
  RtProgram *q = make_program("linreg", 1);
  ck_assert_int_eq(main_str(q, "run --fn predict --in x=%s --out pred=%s --params %s", xb, out, ckpt), 0);
  RtTensor *got = NULL, *want = NULL;
  ck_assert_int_eq(rt_npy_read(out, &got, &e), 0);
  ck_assert_int_eq(p->run(p, 1, &x, &want, 0, 0, &e), 0);
  ck_assert_double_eq(tu_rel_err(rt_f32(got), rt_f32(want), B), 0);
  /* A training step through `run` updates and saves the state. */
  ck_assert_int_eq(tu_sh("/usr/bin/python3 -c \"import numpy as np; np.save('%s', np.load('%s')[:%d])\"", yb, y_npy,
                         B), 0);
  ck_assert_int_eq(main_str(q, "run --fn step --in x=%s --in y=%s --in tau=0 --params %s --save-state %s", xb, yb,
                            ckpt, state), 0);
  RtTensorList *l;
  ck_assert_int_eq(rt_safetensors_read(state, &l, &e), 0);
  ck_assert_float_eq(rt_f32(rt_list_get(l, "opt.step"))[0], 31.0f); /* 30 steps, then this one */
  rt_list_free(l);
  /* Errors: an unknown input, a missing one, a wrong shape. */
  ck_assert_int_eq(main_str(q, "run --fn predict --in z=%s", xb), 1);
  ck_assert_int_eq(main_str(q, "run --fn step --in x=%s", xb), 1);
  ck_assert_int_eq(main_str(q, "run --fn predict --in x=%s", x_npy), 1);
  ck_assert_int_eq(main_str(q, "run --fn nope"), 1);
  rt_tensor_free(x);
  rt_tensor_free(got);
  rt_tensor_free(want);
  free(xb);
  free(yb);
  free(out);
  free(state);
  free(log);
  free(ckpt);
  rt_program_free(p);
  rt_program_free(q);
}
END_TEST


/* ---- schedules ---- */

START_TEST(test_schedule_values) {
  /* geom over the run: the old --anneal FROM:TO (FROM at 0, TO at N-1). */
  RtTrainScalar g = {.anneal = true, .from = 1, .to = 0.0625, .shape = RT_ANNEAL_GEOM};
  ck_assert_double_eq(rt_train_scalar_value(&g, 0, 101), 1);
  ck_assert_double_eq_tol(rt_train_scalar_value(&g, 50, 101), 0.25, 1e-15);
  ck_assert_double_eq_tol(rt_train_scalar_value(&g, 100, 101), 0.0625, 1e-15);
  ck_assert_double_eq(rt_train_scalar_value(&g, 0, 1), 1); /* a one-step run: FROM */
  /* cos over the run: half-way is the mean, a quarter is 1/2 + 1/(2 sqrt 2) of the way from TO. */
  RtTrainScalar c = {.anneal = true, .from = 1, .to = 0.0625, .shape = RT_ANNEAL_COS};
  ck_assert_double_eq(rt_train_scalar_value(&c, 0, 101), 1);
  ck_assert_double_eq_tol(rt_train_scalar_value(&c, 50, 101), (1 + 0.0625) / 2, 1e-15);
  ck_assert_double_eq_tol(rt_train_scalar_value(&c, 25, 101), 0.0625 + 0.9375 * (0.5 + 0.5 * sqrt(0.5)), 1e-15);
  ck_assert_double_eq(rt_train_scalar_value(&c, 100, 101), 0.0625);
  /* linear ramp over the first 5000 steps, then held. */
  RtTrainScalar l = {.anneal = true, .from = 0, .to = 6.6, .shape = RT_ANNEAL_LINEAR, .over = 5000};
  ck_assert_double_eq(rt_train_scalar_value(&l, 0, 20000), 0);
  ck_assert_double_eq_tol(rt_train_scalar_value(&l, 1000, 20000), 1.32, 1e-12);
  ck_assert_double_eq(rt_train_scalar_value(&l, 5000, 20000), 6.6);
  ck_assert_double_eq(rt_train_scalar_value(&l, 19999, 20000), 6.6);
  /* K longer than the run: still at the K-step pace. */
  ck_assert_double_eq_tol(rt_train_scalar_value(&l, 2500, 3000), 3.3, 1e-12);
  RtTrainScalar set = {.anneal = false, .from = 3, .to = 3};
  ck_assert_double_eq(rt_train_scalar_value(&set, 7, 10), 3);

  /* The learning rate: constant; warm-up; warm-up then cosine to --lr-min. */
  RtTrainOptions o = {.steps = 111};
  ck_assert_double_eq(rt_train_lr(&o, 0.01, 50), 0.01);
  o.warmup = 10;
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 0), 0.001, 1e-18);
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 4), 0.005, 1e-18);
  ck_assert_double_eq(rt_train_lr(&o, 0.01, 9), 0.01);
  ck_assert_double_eq(rt_train_lr(&o, 0.01, 110), 0.01);
  o.lr_decay = RT_LR_COS;
  o.lr_min = 0.001;
  o.lr_min_given = true;
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 10), 0.01, 1e-15);       /* decay starts after the warm-up */
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 60), 0.0055, 1e-15);     /* half-way */
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 110), 0.001, 1e-15);     /* --lr-min at step N-1 */
  o.lr_decay = RT_LR_LINEAR;
  o.lr_min_given = false;                                                 /* default: to 0 */
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 35), 0.0075, 1e-15);
  ck_assert_double_eq(rt_train_lr(&o, 0.01, 110), 0);
  o.warmup = 0;
  o.lr_decay = RT_LR_COS;
  ck_assert_double_eq(rt_train_lr(&o, 0.01, 0), 0.01);
  ck_assert_double_eq_tol(rt_train_lr(&o, 0.01, 55), 0.005, 1e-15);
}
END_TEST

/* Column 'name' of data line 'line' of a log (header included in 'text'). */
static double log_value(const char *text, const char *name, int line) {
  int col = 0;
  const char *p = text;
  for (;;) {
    size_t n = strcspn(p, "\t\n");
    if (n == strlen(name) && strncmp(p, name, n) == 0) break;
    ck_assert_msg(p[n] == '\t', "log has no column '%s'", name);
    p += n + 1;
    col++;
  }
  p = strchr(text, '\n') + 1;
  for (int i = 0; i < line; i++) p = strchr(p, '\n') + 1;
  for (int i = 0; i < col; i++) p = strchr(p, '\t') + 1;
  if (*p == '\t' || *p == '\n') return NAN; /* an empty field */
  return strtod(p, NULL);
}

/* The scheduled values reach the step's inputs and the log: each equals
 * the formula, rounded to f32 as the input holds it. */
START_TEST(test_schedules_in_log) {
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("sched.tsv"), *ckpt = tu_path("sched.safetensors");
  make_data();
  ck_assert_int_eq(main_str(p, "train --steps 41 --data %s --seed 2 --quiet --log %s --checkpoint %s --lr 0.04 "
                               "--warmup 8 --lr-decay cos --lr-min 0.004 --anneal tau=1:0.0625:cos",
                            data_spec, log, ckpt), 0);
  char *text = tu_read_file(log, NULL);
  RtTrainOptions o = {.steps = 41, .warmup = 8, .lr_decay = RT_LR_COS, .lr_min = 0.004, .lr_min_given = true};
  RtTrainScalar tau = {.anneal = true, .from = 1, .to = 0.0625, .shape = RT_ANNEAL_COS};
  for (int s = 0; s < 41; s++) {
    ck_assert_float_eq((float)log_value(text, "opt.lr", s), (float)rt_train_lr(&o, 0.04, (uint64_t)s));
    ck_assert_float_eq((float)log_value(text, "tau", s), (float)rt_train_scalar_value(&tau, (uint64_t)s, 41));
  }
  ck_assert_float_eq((float)log_value(text, "opt.lr", 0), 0.005f);
  ck_assert_float_eq((float)log_value(text, "opt.lr", 40), 0.004f);
  ck_assert_float_eq((float)log_value(text, "tau", 40), 0.0625f);
  free(text);
  free(log);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

/* Interrupted by SIGINT during step 25 and resumed, a run with 'flags'
 * (besides the common ones) gives the uninterrupted run's log and state. */
static void check_resume_identical_with(RtProgram *(*make)(const char *, uint64_t), const char *flags) {
  char *log = tu_path("ri-ref.tsv"), *ckpt = tu_path("ri-ref.safetensors");
  RtProgram *ref = make("linreg", 0);
  ck_assert_int_eq(main_str(ref, "%s --every 10 %s", train_flags(60, log, ckpt), flags), 0);
  char *want = tu_read_file(log, NULL);
  free(log);
  free(ckpt);
  log = tu_path("ri.tsv");
  ckpt = tu_path("ri.safetensors");
  RtProgram *p = make("linreg", 0);
  arm_signal(p, SIGINT, 25);
  ck_assert_int_eq(main_str(p, "%s --every 10 %s", train_flags(60, log, ckpt), flags), 130);
  RtProgram *q = make("linreg", 5);
  ck_assert_int_eq(main_str(q, "%s %s --resume %s", train_flags(60, log, ckpt), flags, ckpt), 0);
  char *got = tu_read_file(log, NULL);
  ck_assert_str_eq(got, want);
  assert_same_state(ref, q);
  /* The final checkpoints (with the EMA, if any) and EMA model files: byte for byte. */
  ck_assert_int_eq(tu_sh("cmp '%s/ri-ref.safetensors' '%s'", tu_tmpdir(), ckpt), 0);
  if (strstr(flags, "--ema"))
    ck_assert_int_eq(tu_sh("cmp '%s/ri-ref.ema.safetensors' '%s/ri.ema.safetensors'", tu_tmpdir(), tu_tmpdir()), 0);
  free(got);
  free(want);
  free(log);
  free(ckpt);
  rt_program_free(ref);
  rt_program_free(p);
  rt_program_free(q);
}

static void check_resume_identical(const char *flags) { check_resume_identical_with(make_program, flags); }

START_TEST(test_schedules_resume_identical) {
  check_resume_identical("--lr 0.05 --warmup 7 --lr-decay cos --lr-min 0.001");
  check_resume_identical("--warmup 30 --lr-decay linear");
}
END_TEST

START_TEST(test_schedule_errors) {
  make_data();
  RtTrainOptions o;
  RtErr e;
  struct {
    const char *flag, *value, *want;
  } bad[] = {
      {"--anneal", "tau=1:0.5:cosine", "unknown schedule shape 'cosine'"},
      {"--anneal", "tau=1:0.5:cos:0", "at least 1"},
      {"--anneal", "tau=1:0.5:cos:x", "'x'"},
      {"--anneal", "tau=1:0.5:cos:5:6", "FROM:TO[:SHAPE[:STEPS]]"},
      {"--anneal", "tau=1", "FROM:TO[:SHAPE[:STEPS]]"},
      {"--anneal", "beta=0:6.6", "same sign"},
      {"--anneal", "beta=0:6.6:geom:100", "same sign"},
      {"--lr-decay", "cosine", "none, cos or linear"},
      {"--warmup", "-1", "'-1'"},
      {"--lr-min", "-0.1", "negative"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *argv[] = {"--steps", "3", (char *)bad[i].flag, (char *)bad[i].value};
    ck_assert_int_eq(rt_train_parse(4, argv, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, bad[i].want), "%s %s: %s", bad[i].flag, bad[i].value, e.msg);
  }
  char *a1[] = {"--steps", "3", "--lr-min", "0.1"};
  ck_assert_int_eq(rt_train_parse(4, a1, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--lr-decay"), "%s", e.msg);
  /* Accepted forms: linear and cos from 0, the old two-number form. */
  char *a2[] = {"--steps", "3", "--anneal", "beta=0:6.6:linear:5000", "--anneal", "tau=1:0.1:cos", "--anneal", "x=2:1"};
  ck_assert_msg(rt_train_parse(8, a2, &o, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(o.scalar[0].shape, RT_ANNEAL_LINEAR);
  ck_assert_uint_eq(o.scalar[0].over, 5000);
  ck_assert_int_eq(o.scalar[1].shape, RT_ANNEAL_COS);
  ck_assert_uint_eq(o.scalar[1].over, 0);
  ck_assert_int_eq(o.scalar[2].shape, RT_ANNEAL_GEOM);
  /* --lr-min above the learning rate: an error when the run starts. */
  RtProgram *p = make_program("linreg", 0);
  ck_assert_int_eq(main_str(p, "train --steps 3 --data %s --set tau=0 --quiet --lr 0.01 --lr-decay cos --lr-min 0.1",
                            data_spec), 1);
  rt_program_free(p);
}
END_TEST

/* ---- the EMA of the parameters ---- */

/* Records the parameters before the first training step and after each. */
#define EMA_STEPS 6
static float seen[EMA_STEPS + 1][D + 1]; /* w then b */
static int nseen;

static void record_params(const RtProgram *p) {
  memcpy(seen[nseen], rt_f32(rt_list_get(p->state, "w")), D * sizeof(float));
  seen[nseen][D] = rt_f32(rt_list_get(p->state, "b"))[0];
  nseen++;
}

static int run_recording(RtProgram *p, int entry, RtTensor *const *in, RtTensor **out, uint64_t seed, uint64_t step,
                         RtErr *e) {
  if (p->entry[entry].train && nseen == 0) record_params(p);
  int rc = real_run(p, entry, in, out, seed, step, e);
  if (p->entry[entry].train) record_params(p);
  return rc;
}

START_TEST(test_ema_values) {
  ck_assert_double_eq(rt_ema_decay(0.999, 0), 0.1);
  ck_assert_double_eq_tol(rt_ema_decay(0.999, 80), 0.9, 1e-15);
  ck_assert_double_eq(rt_ema_decay(0.999, 100000), 0.999);
  ck_assert_double_eq(rt_ema_decay(0.3, 5), 0.3);
  RtProgram *p = make_program("linreg", 0);
  real_run = p->run;
  p->run = run_recording;
  nseen = 0;
  char *log = tu_path("ema.tsv"), *ckpt = tu_path("ema.safetensors");
  ck_assert_int_eq(main_str(p, "%s --ema 0.25 --lr 0.1", train_flags(EMA_STEPS, log, ckpt)), 0);
  ck_assert_int_eq(nseen, EMA_STEPS + 1);
  /* By hand: the average starts at the initial parameters; after step s,
   * d = min(0.25, (1+s)/(10+s)): 0.1, 2/11, 3/12, then 0.25. */
  double want[D + 1];
  for (int k = 0; k <= D; k++) want[k] = seen[0][k];
  for (int s = 0; s < EMA_STEPS; s++) {
    double d = fmin(0.25, (1.0 + s) / (10.0 + s));
    for (int k = 0; k <= D; k++) want[k] = d * want[k] + (1 - d) * seen[s + 1][k];
  }
  RtTensorList *l;
  RtMeta *m;
  RtErr e;
  ck_assert_msg(rt_safetensors_read_meta(ckpt, &l, &m, &e) == 0, "%s", e.msg);
  ck_assert_str_eq(rt_meta_get(m, "dal.ema"), "0.25");
  ck_assert_int_eq(l->n, p->state->n + 2); /* the state, then ema.w and ema.b */
  ck_assert_str_eq(l->name[p->state->n], "ema.w");
  const float *ew = rt_f32(rt_list_get(l, "ema.w")), *eb = rt_f32(rt_list_get(l, "ema.b"));
  for (int k = 0; k < D; k++) ck_assert_double_eq_tol(ew[k], want[k], 1e-6);
  ck_assert_double_eq_tol(eb[0], want[D], 1e-6);
  /* The average is not the last parameters (the run still moves them). */
  ck_assert_msg(fabs(ew[0] - seen[EMA_STEPS][0]) > 1e-4, "ema %g, param %g", ew[0], seen[EMA_STEPS][0]);
  /* The EMA model file: the EMA under the parameters' names, no optimizer state. */
  char *emafile = tu_path("ema.ema.safetensors");
  RtTensorList *lm;
  RtMeta *mm;
  ck_assert_msg(rt_safetensors_read_meta(emafile, &lm, &mm, &e) == 0, "%s", e.msg);
  ck_assert_int_eq(lm->n, 2);
  ck_assert(memcmp(rt_list_get(lm, "w")->data, ew, D * sizeof(float)) == 0);
  ck_assert_str_eq(rt_meta_get(mm, "dal.params"), "ema");
  ck_assert_str_eq(rt_meta_get(mm, "dal.model"), "linreg");
  ck_assert_str_eq(rt_meta_get(mm, "dal.step"), "6");
  /* Loading the EMA as the parameters, from the checkpoint or the model file. */
  RtProgram *q = make_program("linreg", 3), *r = make_program("linreg", 4);
  ck_assert_msg(rt_checkpoint_load_params_ema(ckpt, q, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(rt_f32(rt_list_get(q->state, "w")), ew, D * sizeof(float)) == 0);
  ck_assert(memcmp(rt_f32(rt_list_get(q->state, "opt.m.w")), rt_f32(rt_list_get(l, "opt.m.w")), D * sizeof(float)) == 0);
  ck_assert_msg(rt_checkpoint_load_params_ema(emafile, r, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(rt_f32(rt_list_get(r->state, "w")), ew, D * sizeof(float)) == 0);
  ck_assert_msg(rt_checkpoint_load_params(emafile, r, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(rt_f32(rt_list_get(r->state, "w")), ew, D * sizeof(float)) == 0);
  ck_assert_float_eq(rt_f32(rt_list_get(r->state, "opt.step"))[0], 0.0f);
  /* Plain parameters from the checkpoint are the trained ones, not the EMA. */
  ck_assert_msg(rt_checkpoint_load_params(ckpt, r, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(rt_f32(rt_list_get(r->state, "w")), seen[EMA_STEPS], D * sizeof(float)) == 0);
  /* The EMA model file is not a checkpoint to resume from. */
  RtCheckpointInfo info;
  ck_assert_int_eq(rt_checkpoint_load(emafile, r, &info, &e), -1);
  ck_assert_msg(strstr(e.msg, "EMA model file") && strstr(e.msg, emafile), "%s", e.msg);
  /* A checkpoint with an EMA restores (the EMA is not state) and reports its decay. */
  ck_assert_msg(rt_checkpoint_load(ckpt, r, &info, &e) == 0, "%s", e.msg);
  ck_assert_double_eq(info.ema_decay, 0.25);
  /* --init from a checkpoint with an EMA sets the parameters, skipping ema.*. */
  RtProgram *t = make_program("linreg", 7);
  RtInitFrom from = {0};
  ck_assert_int_eq(rt_init_from_add(&from, ckpt, &e), 0);
  ck_assert_msg(rt_init_from_apply(t, &from, &e) == 0, "%s", e.msg);
  ck_assert(memcmp(rt_f32(rt_list_get(t->state, "w")), seen[EMA_STEPS], D * sizeof(float)) == 0);
  rt_list_free(l);
  rt_meta_free(m);
  rt_list_free(lm);
  rt_meta_free(mm);
  free(emafile);
  free(log);
  free(ckpt);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(r);
  rt_program_free(t);
}
END_TEST

START_TEST(test_ema_resume_identical) {
  check_resume_identical("--ema 0.9");
  check_resume_identical("--ema 0.999 --warmup 10 --lr-decay cos");
}
END_TEST

START_TEST(test_ema_errors) {
  RtTrainOptions o;
  RtErr e;
  const char *bad[] = {"0", "1", "1.5", "-0.5", "x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *argv[] = {"--steps", "3", "--ema", (char *)bad[i]};
    ck_assert_int_eq(rt_train_parse(4, argv, &o, &e), -1);
    ck_assert_msg(strstr(e.msg, "--ema"), "%s: %s", bad[i], e.msg);
  }
  RtProgram *p = make_program("linreg", 0);
  char *log = tu_path("emaerr.tsv"), *ckpt = tu_path("emaerr.safetensors"), *plain = tu_path("plain-ck.safetensors");
  ck_assert_int_eq(main_str(p, "%s --ema 0.9", train_flags(4, log, ckpt)), 0);
  ck_assert_int_eq(main_str(p, "%s", train_flags(4, log, plain)), 0);
  RtProgram *q = make_program("linreg", 0);
  /* Another decay than the checkpoint's; --ema on a checkpoint without one. */
  char *a1[] = {"--steps", "8", "--data", data_spec, "--set", "tau=0", "--quiet", "--ema", "0.8", "--resume", ckpt};
  ck_assert_int_eq(rt_train_parse(11, a1, &o, &e), 0);
  RtTrainResult res;
  ck_assert_int_eq(rt_train(q, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "--ema 0.9") && strstr(e.msg, ckpt), "%s", e.msg);
  a1[10] = plain;
  ck_assert_int_eq(rt_train_parse(11, a1, &o, &e), 0);
  ck_assert_int_eq(rt_train(q, &o, &res, &e), -1);
  ck_assert_msg(strstr(e.msg, "no EMA") && strstr(e.msg, plain), "%s", e.msg);
  /* Resuming without --ema keeps the checkpoint's (a longer run: its
   * schedule changes, hence --resume-changed). */
  char *a2[] = {"--steps", "8", "--data", data_spec, "--anneal", "tau=0.2:0.01", "--quiet", "--resume", ckpt,
                "--resume-changed"};
  ck_assert_int_eq(rt_train_parse(10, a2, &o, &e), 0);
  ck_assert_msg(rt_train(q, &o, &res, &e) == 0, "%s", e.msg);
  ck_assert_msg(strstr(res.ema_model, "emaerr.ema.safetensors"), "%s", res.ema_model);
  RtCheckpointInfo info;
  ck_assert_int_eq(rt_checkpoint_load(ckpt, q, &info, &e), 0);
  ck_assert_uint_eq(info.step, 8);
  ck_assert_double_eq(info.ema_decay, 0.9);
  /* The EMA of a checkpoint that has none: an error naming the file. */
  ck_assert_int_eq(rt_checkpoint_load_params_ema(plain, q, &e), -1);
  ck_assert_msg(strstr(e.msg, "no EMA") && strstr(e.msg, plain) && strstr(e.msg, "--ema"), "%s", e.msg);
  /* The EMA model file's name. */
  char buf[256];
  rt_train_ema_path("dir/dvae.safetensors", buf, sizeof buf);
  ck_assert_str_eq(buf, "dir/dvae.ema.safetensors");
  rt_train_ema_path("dvae.ckpt", buf, sizeof buf);
  ck_assert_str_eq(buf, "dvae.ckpt.ema.safetensors");
  free(log);
  free(ckpt);
  free(plain);
  rt_program_free(p);
  rt_program_free(q);
}
END_TEST

/* ---- evaluation during training ---- */

/* "--eval-every ... --eval-data" flags for the heldout entry on the training arrays. */
static const char *eval_flags(int every, int batches) {
  static char buf[2048];
  make_data();
  snprintf(buf, sizeof buf, "--eval-every %d --eval-fn heldout --eval-data %s --eval-batches %d", every, data_spec,
           batches);
  return buf;
}

/* heldout on batches 0 .. m-1 of the arrays with tau, as the run evaluates it. */
static double heldout_mean(RtProgram *p, int m, double tau) {
  RtErr e;
  RtTensor *x = NULL, *y = NULL;
  ck_assert_int_eq(rt_npy_read(x_npy, &x, &e), 0);
  ck_assert_int_eq(rt_npy_read(y_npy, &y, &e), 0);
  RtTensor *in[3] = {rt_tensor_new(RT_F32, 2, (int64_t[]){B, D}, &e), rt_tensor_new(RT_F32, 1, (int64_t[]){B}, &e),
                     rt_tensor_new(RT_F32, 0, NULL, &e)};
  rt_f32(in[2])[0] = (float)tau;
  double sum = 0;
  for (int j = 0; j < m; j++) {
    for (int r = 0; r < B; r++) { /* rows (j B + r) mod N */
      int row = (j * B + r) % N;
      memcpy(rt_f32(in[0]) + r * D, rt_f32(x) + row * D, D * sizeof(float));
      rt_f32(in[1])[r] = rt_f32(y)[row];
    }
    RtTensor *out = NULL;
    ck_assert_msg(p->run(p, rt_program_entry(p, "heldout"), in, &out, 0, (uint64_t)j, &e) == 0, "%s", e.msg);
    sum += rt_f32(out)[0];
    rt_tensor_free(out);
  }
  for (int i = 0; i < 3; i++) rt_tensor_free(in[i]);
  rt_tensor_free(x);
  rt_tensor_free(y);
  return sum / m;
}

START_TEST(test_eval_logged) {
  RtProgram *p = make_program_eval("linreg", 0);
  char *log = tu_path("ev.tsv"), *ckpt = tu_path("ev.safetensors");
  ck_assert_int_eq(main_str(p, "%s --ema 0.9 --eval-ema %s", train_flags(22, log, ckpt), eval_flags(5, 3)), 0);
  char *text = tu_read_file(log, NULL);
  ck_assert_msg(strncmp(text, "step\tloss\ttau\topt.lr\teval.heldout\teval.heldout.ema\n", 50) == 0, "%.80s", text);
  /* After steps 4, 9, 14, 19 and the last, 21; empty fields elsewhere. */
  for (int s = 0; s < 22; s++) {
    bool due = (s + 1) % 5 == 0 || s == 21;
    ck_assert_msg(isnan(log_value(text, "eval.heldout", s)) != due, "step %d", s);
    ck_assert_msg(isnan(log_value(text, "eval.heldout.ema", s)) != due, "step %d", s);
  }
  /* The last evaluation, recomputed from the final parameters and their EMA:
   * tau at step 21 is the anneal's end, 0.01. */
  RtTrainScalar tau = {.anneal = true, .from = 0.2, .to = 0.01};
  double t21 = (float)rt_train_scalar_value(&tau, 21, 22);
  RtProgram *q = make_program_eval("linreg", 1);
  RtErr e;
  ck_assert_int_eq(rt_checkpoint_load_params(ckpt, q, &e), 0);
  double want = heldout_mean(q, 3, t21), got = log_value(text, "eval.heldout", 21);
  ck_assert_msg(fabs(got - want) <= 1e-7 * fabs(want), "eval %.9g, by hand %.9g", got, want);
  ck_assert_int_eq(rt_checkpoint_load_params_ema(ckpt, q, &e), 0);
  double want_ema = heldout_mean(q, 3, t21), got_ema = log_value(text, "eval.heldout.ema", 21);
  ck_assert_msg(fabs(got_ema - want_ema) <= 1e-7 * fabs(want_ema), "eval %.9g, by hand %.9g", got_ema, want_ema);
  ck_assert_msg(fabs(want_ema - want) > 1e-6, "the EMA's evaluation should differ from the parameters'");
  /* Evaluating changes nothing of the training: the run without it logs the
   * same losses and ends in the same state. */
  RtProgram *r = make_program_eval("linreg", 0);
  char *log2 = tu_path("ev2.tsv"), *ckpt2 = tu_path("ev2.safetensors");
  ck_assert_int_eq(main_str(r, "%s --ema 0.9", train_flags(22, log2, ckpt2)), 0);
  char *text2 = tu_read_file(log2, NULL);
  for (int s = 0; s < 22; s++) ck_assert_double_eq(log_value(text, "loss", s), log_value(text2, "loss", s));
  assert_same_state(p, r);
  ck_assert_int_eq(tu_sh("cmp '%s/ev.ema.safetensors' '%s/ev2.ema.safetensors'", tu_tmpdir(), tu_tmpdir()), 0);
  free(text);
  free(text2);
  free(log);
  free(ckpt);
  free(log2);
  free(ckpt2);
  rt_program_free(p);
  rt_program_free(q);
  rt_program_free(r);
}
END_TEST

START_TEST(test_eval_resume_identical) {
  char flags[2200];
  snprintf(flags, sizeof flags, "%s --ema 0.8 --eval-ema", eval_flags(7, 2));
  check_resume_identical_with(make_program_eval, flags);
}
END_TEST

START_TEST(test_eval_errors) {
  make_data();
  RtTrainOptions o;
  RtErr e;
  char *a1[] = {"--steps", "3", "--eval-every", "2", "--eval-data", "shapes:test"};
  ck_assert_int_eq(rt_train_parse(6, a1, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--eval-fn"), "%s", e.msg);
  char *a2[] = {"--steps", "3", "--eval-every", "2", "--eval-fn", "heldout"};
  ck_assert_int_eq(rt_train_parse(6, a2, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--eval-data"), "%s", e.msg);
  char *a3[] = {"--steps", "3", "--eval-fn", "heldout"};
  ck_assert_int_eq(rt_train_parse(4, a3, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "--eval-every"), "%s", e.msg);
  char *a4[] = {"--steps", "3", "--eval-every", "0"};
  ck_assert_int_eq(rt_train_parse(4, a4, &o, &e), -1);
  ck_assert_msg(strstr(e.msg, "at least 1"), "%s", e.msg);
  RtProgram *p = make_program_eval("linreg", 0);
  char *log = tu_path("everr.tsv"), *ckpt = tu_path("everr.safetensors");
  struct {
    const char *flags, *want;
  } bad[] = {
      {"--eval-every 2 --eval-fn step --eval-data %s", "training entry"},
      {"--eval-every 2 --eval-fn predict --eval-data %s", "scalar f32"},
      {"--eval-every 2 --eval-fn nope --eval-data %s", "no entry 'nope'"},
      {"--eval-every 2 --eval-fn heldout --eval-fn heldout --eval-data %s", "twice"},
      {"--eval-every 2 --eval-fn heldout --eval-ema --eval-data %s", "--ema"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char flags[2048], cmd[4096];
    snprintf(flags, sizeof flags, bad[i].flags, data_spec);
    snprintf(cmd, sizeof cmd, "%s %s", train_flags(3, log, ckpt), flags);
    char *argv[64];
    int argc = 0;
    for (char *t = strtok(cmd + strlen("train "), " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    ck_assert_msg(rt_train_parse(argc, argv, &o, &e) == 0, "%s", e.msg);
    RtTrainResult res;
    ck_assert_int_eq(rt_train(p, &o, &res, &e), -1);
    ck_assert_msg(strstr(e.msg, bad[i].want), "%s: %s", bad[i].flags, e.msg);
  }
  /* tau without a schedule; y missing from the eval data. */
  char spec[1024];
  snprintf(spec, sizeof spec, "npy:x=%s", x_npy);
  ck_assert_int_eq(main_str(p, "train --steps 3 --data %s --quiet --set tau=0 --eval-every 1 --eval-fn heldout "
                               "--eval-data %s --checkpoint %s", data_spec, spec, ckpt), 1);
  free(log);
  free(ckpt);
  rt_program_free(p);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("train");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_program_state);
  tcase_add_test(tc, test_program_disagreeing_graphs);
  tcase_add_test(tc, test_loss_decreases);
  tcase_add_test(tc, test_checkpoint_round_trip);
  tcase_add_test(tc, test_sigint_resume_identical);
  tcase_add_test(tc, test_sigkill_resume_identical);
  tcase_add_test(tc, test_signal_in_last_step);
  tcase_add_test(tc, test_log_cut);
  tcase_add_test(tc, test_default_checkpoint_path);
  tcase_add_test(tc, test_resume_errors);
  tcase_add_test(tc, test_input_errors);
  tcase_add_test(tc, test_nonfinite_loss_stops);
  tcase_add_test(tc, test_run_command);
  tcase_add_test(tc, test_schedule_values);
  tcase_add_test(tc, test_schedules_in_log);
  tcase_add_test(tc, test_schedules_resume_identical);
  tcase_add_test(tc, test_schedule_errors);
  tcase_add_test(tc, test_ema_values);
  tcase_add_test(tc, test_ema_resume_identical);
  tcase_add_test(tc, test_ema_errors);
  tcase_add_test(tc, test_eval_logged);
  tcase_add_test(tc, test_eval_resume_identical);
  tcase_add_test(tc, test_eval_errors);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
