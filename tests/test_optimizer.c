/* test_optimizer.c — AdamW lowered to IR (passes/optimizer.h).
 *
 * Against PyTorch: tests/fixtures/adamw_ref.py runs torch.optim.AdamW (and
 * clip_grad_norm_) for three steps on four parameters of ranks 2, 1, 3 and
 * 0 with random gradients, and writes everything as .npy; here the same
 * steps run as one IR graph on the reference executor (gradients bound as
 * INPUTs, parameters and moments as persistent tensors updated in place),
 * and parameters, moments, step count and gradient norms are compared to
 * 1e-6 relative (max-abs difference over max-abs of the reference). Other
 * tests cover the graph's shape (names, updates, outputs) and every refused
 * call, which must leave the graph unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/ref.h"
#include "ir/ir.h"
#include "passes/optimizer.h"
#include "runtime/io/npy.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_optimizer.c", __LINE__, 1})
#define NPARAM 4
#define NSTEP 3
#define TOL 1e-6

typedef struct {
  const char *name;
  double lr[NSTEP];
  double beta1, beta2, eps, wd, clip;
  double gscale[NSTEP];
  const char *decay_only; /* non-NULL: a decays callback accepting only this param */
} OptCase;

static bool decays_named(const IrNode *p, void *ctx) { return strcmp(p->name, (const char *)ctx) == 0; }

/* The fixture's parameter shapes (adamw_ref.py's SHAPES): ranks 2, 1, 3, 0. */
static const IrShape shapes[NPARAM] = {{2, {4, 3}}, {1, {5}}, {3, {2, 3, 2}}, {0, {0}}};

static const OptCase cases[] = {
    /* MODELS.md: GPT's optimizer (decay on matrices only), with a
     * warm-up-like learning-rate schedule through the opt.lr input. */
    {"gpt", {1e-4, 2e-4, 3e-4}, 0.9, 0.95, 1e-8, 0.01, 0, {1, 1, 1}, NULL},
    /* MODELS.md: the dVAE's optimizer (no weight decay). */
    {"dvae", {1e-3, 1e-3, 1e-3}, 0.9, 0.999, 1e-8, 0, 0, {1, 1, 1}, NULL},
    /* Clipping by global norm: steps 0 and 2 are clipped, step 1 is under the limit. */
    {"clip", {1e-3, 1e-3, 1e-3}, 0.9, 0.95, 1e-8, 0.01, 1.0, {2, 0.05, 1}, NULL},
    /* A large weight decay, given by a callback to one rank-1 parameter only. */
    {"custom", {1e-2, 1e-2, 1e-2}, 0.8, 0.99, 1e-6, 0.5, 0, {1, 1, 1}, "p1"},
};
#define NCASE ((int)(sizeof cases / sizeof cases[0]))

/* Writes every case's reference with one run of the fixture script. */
static void make_fixtures(void) {
  char cmd[4096];
  int k = snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/fixtures/adamw_ref.py");
  for (int c = 0; c < NCASE; c++) {
    const OptCase *o = &cases[c];
    char mask[NPARAM + 1];
    for (int i = 0; i < NPARAM; i++) {
      char name[16];
      snprintf(name, sizeof name, "p%d", i);
      bool d = o->decay_only ? strcmp(name, o->decay_only) == 0 : shapes[i].rank >= 2;
      mask[i] = o->wd > 0 && d ? '1' : '0';
    }
    mask[NPARAM] = 0;
    k += snprintf(cmd + k, sizeof cmd - (size_t)k, " '%s/%s:%.17g,%.17g,%.17g:%.17g:%.17g:%.17g:%.17g:%.17g:%s:%g,%g,%g'",
                  tu_tmpdir(), o->name, o->lr[0], o->lr[1], o->lr[2], o->beta1, o->beta2, o->eps, o->wd, o->clip,
                  mask, o->gscale[0], o->gscale[1], o->gscale[2]);
  }
  if (tu_sh("%s", cmd) != 0) {
    fprintf(stderr, "adamw_ref.py failed: %s\n", cmd);
    exit(1);
  }
}

static RtTensor *load(const char *dir, const char *fmt, int a, int b) {
  char name[64], path[512];
  snprintf(name, sizeof name, fmt, a, b);
  snprintf(path, sizeof path, "%s/%s.npy", dir, name);
  RtTensor *t;
  RtErr e;
  ck_assert_msg(rt_npy_read(path, &t, &e) == 0, "%s", e.msg);
  return t;
}

static RtTensor *scalar_tensor(float v) {
  RtTensor *t = rt_tensor_new(RT_F32, 0, NULL, NULL);
  rt_f32(t)[0] = v;
  return t;
}

static void expect_close(const RtTensor *got, const RtTensor *want, const char *what) {
  ck_assert_int_eq(rt_tensor_numel(got), rt_tensor_numel(want));
  double err = tu_rel_err(rt_f32(got), rt_f32(want), rt_tensor_numel(want));
  ck_assert_msg(err <= TOL, "%s: relative error %g > %g", what, err, TOL);
}

/* Index in g->param of the persistent tensor called 'name'. */
static int param_slot(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->nparam; i++)
    if (strcmp(g->node[g->param[i]].name, name) == 0) return i;
  ck_abort_msg("no param or state \"%s\"", name);
  return -1;
}

static void run_case(const OptCase *c) {
  char *dir = tu_path(c->name);
  /* Parameters p0..p3 with the fixture's shapes, gradients as inputs. */
  IrGraph *g = ir_graph_new("step");
  int params[NPARAM], grads[NPARAM];
  for (int i = 0; i < NPARAM; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    params[i] = ir_param(g, name, shapes[i], IR_INIT_ZEROS, 0, 0, LOC);
    snprintf(name, sizeof name, "g.p%d", i);
    grads[i] = ir_input(g, name, IR_F32, shapes[i], LOC);
  }
  AdamWOptions o = {.beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps, .weight_decay = c->wd, .clip_norm = c->clip};
  if (c->decay_only) {
    o.decays = decays_named;
    o.decays_ctx = (void *)c->decay_only;
  }
  ck_assert_msg(opt_adamw(g, params, grads, NPARAM, &o) == 0, "%s", g->error);
  char why[512];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);

  /* Persistent tensors: the fixture's initial parameters, zeros for the state. */
  RtTensor **persist = calloc((size_t)g->nparam, sizeof *persist);
  for (int i = 0; i < g->nparam; i++) {
    const IrNode *n = &g->node[g->param[i]];
    if (n->op == OP_PARAM) persist[i] = load(dir, "p%d", n->name[1] - '0', 0);
    else persist[i] = rt_tensor_new(RT_F32, n->shape.rank, n->shape.d, NULL);
  }
  ck_assert_int_eq(g->ninput, NPARAM + 1);
  ck_assert_str_eq(g->node[g->input[NPARAM]].name, "opt.lr");
  for (int k = 0; k < NSTEP; k++) {
    RtTensor *in[NPARAM + 1], *out[1] = {NULL};
    for (int i = 0; i < NPARAM; i++) in[i] = load(dir, "g%d_%d", k, i);
    in[NPARAM] = scalar_tensor((float)c->lr[k]);
    RtErr e;
    RefOptions ro = {.seed = 1, .step = (uint64_t)k};
    ck_assert_msg(ref_run(g, in, persist, out, &ro, &e) == 0, "%s", e.msg);
    if (c->clip > 0) {
      ck_assert_int_eq(g->noutput, 1);
      RtTensor *want = load(dir, "norm%d", k, 0);
      char what[32];
      snprintf(what, sizeof what, "grad norm, step %d", k);
      expect_close(out[0], want, what);
      rt_tensor_free(want);
      rt_tensor_free(out[0]);
    }
    for (int i = 0; i <= NPARAM; i++) rt_tensor_free(in[i]);
  }
  ck_assert(rt_f32(persist[param_slot(g, "opt.step")])[0] == (float)NSTEP);
  for (int i = 0; i < NPARAM; i++) {
    char name[32], what[64];
    const char *kinds[3][2] = {{"p%d", "p%d_final"}, {"opt.m.p%d", "m%d"}, {"opt.v.p%d", "v%d"}};
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof name, kinds[k][0], i);
      RtTensor *want = load(dir, kinds[k][1], i, 0);
      snprintf(what, sizeof what, "%s: %s after %d steps", c->name, name, NSTEP);
      expect_close(persist[param_slot(g, name)], want, what);
      rt_tensor_free(want);
    }
  }
  for (int i = 0; i < g->nparam; i++) rt_tensor_free(persist[i]);
  free(persist);
  ir_graph_free(g);
  free(dir);
}

START_TEST(adamw_matches_torch) { run_case(&cases[_i]); }
END_TEST

/* loss = sum(w * x) over a [3, 2] parameter and a scalar one, plus two
 * gradients as inputs; returns the graph and fills p[2], gr[2]. */
static IrGraph *small_graph(int *p, int *gr) {
  IrGraph *g = ir_graph_new("train");
  g->train = true;
  IrShape s = {2, {3, 2}}, sc = {0, {0}};
  p[0] = ir_param(g, "w", s, IR_INIT_ZEROS, 0, 0, LOC);
  p[1] = ir_param(g, "b", sc, IR_INIT_ZEROS, 0, 0, LOC);
  int x = ir_input(g, "x", IR_F32, s, LOC);
  int loss = ir_reduce(g, OP_SUM, ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, p[0], x, LOC), p[1], LOC), 3, false, LOC);
  gr[0] = ir_input(g, "dw", IR_F32, s, LOC);
  gr[1] = ir_input(g, "db", IR_F32, sc, LOC);
  const char *name = "loss";
  ir_set_outputs(g, &loss, &name, 1);
  ck_assert_int_eq(g->noutput, 1);
  return g;
}

START_TEST(adamw_graph_has_named_state_updates_and_outputs) {
  int p[2], gr[2];
  IrGraph *g = small_graph(p, gr);
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .clip_norm = 2};
  ck_assert_msg(opt_adamw(g, p, gr, 2, &o) == 0, "%s", g->error);
  char why[512];
  ck_assert_msg(ir_verify(g, why, sizeof why), "%s", why);
  /* param, m and v of each, the step count and the two bias-correction sums */
  ck_assert_int_eq(g->nupdate, 2 * 3 + 3);
  const char *state[] = {"opt.step", "opt.bc1_sum", "opt.bc2_sum", "opt.m.w", "opt.v.w", "opt.m.b", "opt.v.b"};
  for (int i = 0; i < 7; i++) {
    int slot = param_slot(g, state[i]);
    const IrNode *n = &g->node[g->param[slot]];
    ck_assert_int_eq(n->op, OP_STATE);
    bool updated = false;
    for (int u = 0; u < g->nupdate; u++) updated = updated || g->update_target[u] == g->param[slot];
    ck_assert_msg(updated, "%s has no update", state[i]);
  }
  ck_assert_int_eq(g->node[g->param[param_slot(g, "opt.step")]].shape.rank, 0);
  ck_assert_str_eq(g->node[g->input[g->ninput - 1]].name, "opt.lr");
  ck_assert_int_eq(g->noutput, 2);
  ck_assert_str_eq(g->output_name[0], "loss");
  ck_assert_str_eq(g->output_name[1], "opt.grad_norm");
  /* The bias corrections come from geometric sums, not from 1 - pow(beta, t)
   * (which cancels in f32). */
  int pows = 0;
  for (int i = 0; i < g->n; i++) pows += g->node[i].op == OP_POW;
  ck_assert_int_eq(pows, 0);
  ir_graph_free(g);
}
END_TEST

/* Two runs of the step graph on a scalar parameter with a constant
 * gradient: each step moves the parameter by lr (with eps 0, the
 * bias-corrected m/sqrt(v) is sign(g) while g stays the same), whatever the
 * gradient's size. The bias corrections carry no cancellation (geometric
 * sums), so the steps are exact to a few f32 ulps. */
START_TEST(adamw_first_step_moves_by_lr) {
  IrGraph *g = ir_graph_new("step");
  IrShape sc = {0, {0}};
  int p = ir_param(g, "p", sc, IR_INIT_ZEROS, 0, 0, LOC);
  int gr = ir_input(g, "g", IR_F32, sc, LOC);
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 0};
  ck_assert_int_eq(opt_adamw(g, &p, &gr, 1, &o), 0);
  RtTensor *persist[8];
  ck_assert_int_le(g->nparam, 8);
  for (int i = 0; i < g->nparam; i++) persist[i] = scalar_tensor(i == 0 ? 1.0f : 0.0f);
  RtTensor *in[2] = {scalar_tensor(-123.0f), scalar_tensor(0.5f)};
  RtErr e;
  ck_assert_msg(ref_run(g, in, persist, NULL, NULL, &e) == 0, "%s", e.msg);
  ck_assert_float_eq_tol(rt_f32(persist[0])[0], 1.5f, 1e-6f);
  ck_assert_msg(ref_run(g, in, persist, NULL, NULL, &e) == 0, "%s", e.msg);
  ck_assert_float_eq_tol(rt_f32(persist[0])[0], 2.0f, 1e-6f);
  ck_assert(rt_f32(persist[param_slot(g, "opt.step")])[0] == 2.0f);
  for (int i = 0; i < g->nparam; i++) rt_tensor_free(persist[i]);
  rt_tensor_free(in[0]);
  rt_tensor_free(in[1]);
  ir_graph_free(g);
}
END_TEST

/* A frozen parameter (attr.frozen, from freeze() in the language) gets no
 * gradient, no moments and no update, even with weight decay; the others
 * train as before. loss = sum(w * x) + sum(v * x) over a matrix input x. */
START_TEST(train_step_skips_frozen_params) {
  for (int frozen = 0; frozen < 2; frozen++) {
    IrGraph *g = ir_graph_new("loss");
    g->train = true;
    IrShape m = {2, {2, 3}};
    int x = ir_input(g, "x", IR_F32, m, LOC);
    int w = ir_param(g, "vae.w", m, IR_INIT_ONES, 0, 0, LOC);
    int v = ir_param(g, "gpt.v", m, IR_INIT_ONES, 0, 0, LOC);
    g->node[w].attr.frozen = frozen;
    int a = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, w, x, LOC), 3u, false, LOC);
    int b = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, v, x, LOC), 3u, false, LOC);
    int loss = ir_binary(g, OP_ADD, a, b, LOC);
    ir_set_outputs(g, &loss, NULL, 1);
    AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.5};
    ck_assert_msg(opt_train_step(g, &o) == 0, "%s", g->error);
    bool has_m_w = false, has_m_v = false, upd_w = false, upd_v = false;
    for (int i = 0; i < g->nparam; i++) {
      has_m_w |= strcmp(g->node[g->param[i]].name, "opt.m.vae.w") == 0;
      has_m_v |= strcmp(g->node[g->param[i]].name, "opt.m.gpt.v") == 0;
    }
    for (int i = 0; i < g->nupdate; i++) {
      upd_w |= g->update_target[i] == w;
      upd_v |= g->update_target[i] == v;
    }
    ck_assert(has_m_v && upd_v);
    ck_assert_msg(has_m_w == !frozen && upd_w == !frozen, "frozen=%d: moments %d, update %d", frozen, has_m_w, upd_w);
    /* one step on the reference executor: the frozen one stays bit for bit */
    RtTensor *persist[16];
    ck_assert_int_le(g->nparam, 16);
    for (int i = 0; i < g->nparam; i++) {
      const IrNode *n = &g->node[g->param[i]];
      persist[i] = rt_tensor_new(RT_F32, n->shape.rank, n->shape.d, NULL);
      if (n->op == OP_PARAM)
        for (int64_t k = 0; k < rt_tensor_numel(persist[i]); k++) rt_f32(persist[i])[k] = 1.0f;
    }
    RtTensor *in[2] = {rt_tensor_new(RT_F32, 2, m.d, NULL), scalar_tensor(0.1f)};
    for (int k = 0; k < 6; k++) rt_f32(in[0])[k] = (float)(k + 1);
    RtErr e;
    RtTensor *out[2] = {NULL, NULL};
    ck_assert_msg(ref_run(g, in, persist, out, NULL, &e) == 0, "%s", e.msg);
    rt_tensor_free(out[0]);
    const float *pw = rt_f32(persist[param_slot(g, "vae.w")]), *pv = rt_f32(persist[param_slot(g, "gpt.v")]);
    for (int k = 0; k < 6; k++) {
      ck_assert(pv[k] != 1.0f);
      ck_assert(frozen ? pw[k] == 1.0f : pw[k] != 1.0f);
    }
    for (int i = 0; i < g->nparam; i++) rt_tensor_free(persist[i]);
    rt_tensor_free(in[0]);
    rt_tensor_free(in[1]);
    ir_graph_free(g);
  }
}
END_TEST

/* Each refused call names the problem and leaves the graph unchanged. */
static void expect_refused(IrGraph *g, const int *p, const int *gr, int n, const AdamWOptions *o, const char *msg) {
  int nodes = g->n, ninput = g->ninput, nparam = g->nparam, nupdate = g->nupdate, noutput = g->noutput;
  ck_assert_int_eq(opt_adamw(g, p, gr, n, o), -1);
  ck_assert_msg(strstr(g->error, msg) != NULL, "error \"%s\" does not mention \"%s\"", g->error, msg);
  ck_assert_int_eq(g->n, nodes);
  ck_assert_int_eq(g->ninput, ninput);
  ck_assert_int_eq(g->nparam, nparam);
  ck_assert_int_eq(g->nupdate, nupdate);
  ck_assert_int_eq(g->noutput, noutput);
}

START_TEST(adamw_refuses_bad_calls) {
  int p[2], gr[2];
  IrGraph *g = small_graph(p, gr);
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  AdamWOptions bad = o;
  bad.beta2 = 1.0;
  expect_refused(g, p, gr, 2, &bad, "betas");
  bad = o;
  bad.eps = NAN;
  expect_refused(g, p, gr, 2, &bad, "eps");
  bad = o;
  bad.weight_decay = -1;
  expect_refused(g, p, gr, 2, &bad, "weight_decay");
  bad = o;
  bad.clip_norm = INFINITY;
  expect_refused(g, p, gr, 2, &bad, "clip_norm");
  expect_refused(g, p, gr, 2, NULL, "no options");
  expect_refused(g, p, gr, 0, &o, "no parameters");
  int swapped[2] = {gr[1], gr[0]};
  expect_refused(g, p, swapped, 2, &o, "gradient of \"w\" is f32[], the param is f32[3, 2]");
  int twice[2] = {p[0], p[0]};
  expect_refused(g, twice, gr, 2, &o, "listed twice");
  int notparam[2] = {p[0], gr[1]};
  expect_refused(g, notparam, gr, 2, &o, "(input), not a trainable param");
  int outside[2] = {p[0], 999};
  expect_refused(g, outside, gr, 2, &o, "%999, not a node");
  int i32 = ir_const(g, IR_I32, g->node[p[0]].shape, 1, LOC);
  int wrongtype[2] = {i32, gr[1]};
  expect_refused(g, p, wrongtype, 2, &o, "is i32[3, 2]");
  /* a second call: the names are taken */
  ck_assert_int_eq(opt_adamw(g, p, gr, 2, &o), 0);
  int q = ir_param(g, "q", g->node[gr[1]].shape, IR_INIT_ZEROS, 0, 0, LOC);
  expect_refused(g, &q, &gr[1], 1, &o, "already has an input \"opt.lr\"");
  expect_refused(g, p, gr, 1, &o, "already has an update");
  ir_graph_free(g);
}
END_TEST

int main(void) {
  Suite *s = suite_create("optimizer");
  TCase *tc = tcase_create("adamw");
  tcase_set_timeout(tc, 60);
  tcase_add_unchecked_fixture(tc, make_fixtures, NULL);
  tcase_add_loop_test(tc, adamw_matches_torch, 0, NCASE);
  tcase_add_test(tc, adamw_graph_has_named_state_updates_and_outputs);
  tcase_add_test(tc, adamw_first_step_moves_by_lr);
  tcase_add_test(tc, adamw_refuses_bad_calls);
  tcase_add_test(tc, train_step_skips_frozen_params);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
