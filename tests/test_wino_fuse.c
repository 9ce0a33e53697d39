/* test_wino_fuse.c — the Winograd transforms fused with their neighbours'
 * elementwise work (codegen/lower_winograd.c, lower_wino_fuse.c) against
 * the reference executor:
 *   wino-epilogue  the output transform applies the conv group's epilogue
 *                  (bias, residual add) before storing;
 *   wino-prologue  the input transform computes relu(group_norm(h)) from h
 *                  and the norm's statistics instead of reading it.
 * On the dVAE's residual block, h + conv(relu(gn(conv(relu(gn(h))) + b1))) + b2,
 * at its tiny, bench and paper (batch 1, a 32x32 crop) shapes, with the
 * rules on and off, forward and (tiny, bench) every input's gradient; that
 * the fusions happen (CgLowered's counters) and that switching the rules
 * off gives the separate kernels back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/llvm/cg_llvm.h"
#include "codegen/lower.h"
#include "passes/autodiff.h"
#include "passes/fuse.h"
#include "tests/jit_check.h"
#include "tests/util.h"

#define LOC ((SrcLoc){"test_wino_fuse.c", __LINE__, 1})

/* The gradients' bound: the project's 1e-5 (their sums run through the
 * group norms' backward as well as the Winograd convs). */
#define GRAD_TOL 1e-5

/* A residual block: x [N, C, H, W], G groups. */
typedef struct {
  const char *config;
  int64_t N, C, H;
  int G;
} Block;

static const Block blocks[] = {
    {"tiny", 4, 16, 16, 4},   {"tiny", 4, 32, 8, 4},    {"bench", 2, 64, 64, 8}, {"bench", 2, 128, 32, 8},
    {"bench", 2, 256, 16, 8}, {"paper", 1, 128, 32, 32}, {"paper", 1, 256, 32, 32}, {"paper", 1, 512, 32, 32},
};
#define NBLOCKS ((int)(sizeof blocks / sizeof blocks[0]))

static IrShape shp(int rank, int64_t a, int64_t b, int64_t c, int64_t d) {
  return (IrShape){.rank = rank, .d = {a, b, c, d}};
}

static int input(IrGraph *g, const char *name, IrShape s) {
  int id = ir_input(g, name, IR_F32, s, LOC);
  ck_assert_msg(id >= 0, "%s", g->error);
  return id;
}

/* relu(group_norm(x)) -> conv 3x3 pad 1 -> + bias, the parameters inputs
 * named after 'tag'. */
static int norm_conv(IrGraph *g, const Block *b, int x, const char *tag) {
  char name[32];
  snprintf(name, sizeof name, "%s.gamma", tag);
  int gamma = input(g, name, shp(1, b->C, 0, 0, 0));
  snprintf(name, sizeof name, "%s.beta", tag);
  int beta = input(g, name, shp(1, b->C, 0, 0, 0));
  snprintf(name, sizeof name, "%s.w", tag);
  int w = input(g, name, shp(4, b->C, b->C, 3, 3));
  snprintf(name, sizeof name, "%s.b", tag);
  int bias = input(g, name, shp(3, b->C, 1, 1, 0));
  int n = ir_build(g, OP_GROUP_NORM, (int[]){x, gamma, beta}, 3, &(IrAttr){.groups = b->G, .eps = 1e-5f}, LOC);
  ck_assert_msg(n >= 0, "%s", g->error);
  int y = ir_build(g, OP_CONV2D, (int[]){ir_unary(g, OP_RELU, n, LOC), w}, 2, &(IrAttr){.stride = 1, .pad = 1}, LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  return ir_binary(g, OP_ADD, y, bias, LOC);
}

/* The block's forward graph (output: the block), or with grad the
 * gradient of sum(block * r) with respect to every other input. */
static IrGraph *block_graph(const Block *b, bool grad) {
  IrGraph *g = ir_graph_new(grad ? "wino_fuse_grad" : "wino_fuse");
  int h = input(g, "h", shp(4, b->N, b->C, b->H, b->H));
  int y = ir_binary(g, OP_ADD, h, norm_conv(g, b, norm_conv(g, b, h, "n1"), "n2"), LOC);
  ck_assert_msg(y >= 0, "%s", g->error);
  if (!grad) {
    ir_set_outputs(g, &y, NULL, 1);
    return g;
  }
  int r = input(g, "r", shp(4, b->N, b->C, b->H, b->H));
  int loss = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, y, r, LOC), 0xf, false, LOC);
  ck_assert_msg(loss >= 0, "%s", g->error);
  int wrt[16], out[16], n = 0;
  for (int k = 0; k < g->ninput; k++)
    if (g->input[k] != r) wrt[n++] = g->input[k];
  ck_assert_msg(ad_gradients(g, loss, wrt, n, out) == 0, "%s", g->error);
  ir_set_outputs(g, out, NULL, n); /* (not the loss: a sum of +-terms, whose relative error is the cancellation's) */
  return g;
}

/* Fusion on, Winograd for every 3x3 conv, minus the rules in 'off'. */
static FusePlan *plan(const IrGraph *g, const char *off) {
  FuseOptions o = {.enabled = true, .conv_algo = CG_CONV_WINOGRAD + 1};
  char err[256];
  if (off) ck_assert_msg(fuse_rule_apply(&o, off, err, sizeof err) == 0, "%s", err);
  FusePlan *p = fuse_plan(g, &o);
  ck_assert_ptr_nonnull(p);
  return p;
}

static CgLowered *lower(const IrGraph *g, const FusePlan *p) {
  RtErr e;
  CgLowered *l = cg_lower(g, p, NULL, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  return l;
}

/* Kernel steps of kind k in l's plan, and of those GROUP_NORM steps, how
 * many store statistics only. */
static int steps_of(const CgLowered *l, CgKernelKind kind, int *stats) {
  int n = 0;
  if (stats) *stats = 0;
  for (int i = 0; i < l->plan.nstep; i++) {
    const RtStep *s = &l->plan.step[i];
    if (s->kind != RT_STEP_KERNEL || l->kernel[s->kernel].kind != kind) continue;
    n++;
    if (stats) *stats += l->kernel[s->kernel].gn_stats;
  }
  return n;
}

/* The block at shape _i through the JIT under each combination of the
 * two rules, against the reference; the forward at the Winograd bound,
 * and for tiny and bench the gradients at GRAD_TOL. */
START_TEST(test_block) {
  static const char *const variants[] = {NULL, "-wino-epilogue", "-wino-prologue", "-wino-epilogue,-wino-prologue"};
  const Block *b = &blocks[_i];
  for (int grad = 0; grad < 2; grad++) {
    if (grad && b->N == 1) continue; /* paper: forward only (inference) */
    IrGraph *g = block_graph(b, grad);
    double err[4];
    for (int v = 0; v < 4; v++) {
      FusePlan *p = plan(g, variants[v]);
      JcCheck c = {.tol = grad ? GRAD_TOL : CG_WINOGRAD_REL_TOL, .seed = 7};
      jc_check_random(g, p, 0, &c);
      err[v] = c.max_err;
      fuse_plan_free(p);
    }
    printf("wino fuse %-5s [%lld,%lld,%lld,%lld] G%d %s: rel err %.2e fused, %.2e -epilogue, %.2e -prologue, "
           "%.2e neither\n", b->config, (long long)b->N, (long long)b->C, (long long)b->H, (long long)b->H, b->G,
           grad ? "gradients" : "forward", err[0], err[1], err[2], err[3]);
    ir_graph_free(g);
  }
}
END_TEST

/* The forward block's one output through the JIT under fusion plan fp. */
static RtTensor *run_jit(IrGraph *g, const FusePlan *fp, RtTensor **in) {
  RtErr e = {{0}};
  CgModule *m = cg_module_new(jc_session(), g, fp, &e);
  ck_assert_msg(m != NULL && cg_module_jit(m, &e) == 0, "%s", e.msg);
  const RtPlan *pl = cg_module_plan(m);
  void *arena = rt_arena_new(pl->arena_bytes, &e);
  ck_assert_msg(arena != NULL, "%s", e.msg);
  RtTensor *out[1] = {NULL};
  RtTensorList *state = rt_list_new();
  RtRunCtx ctx = {7, 0};
  ck_assert_msg(rt_plan_run(pl, jc_pool(), arena, in, out, state, &ctx, &e) == 0, "%s", e.msg);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
  return out[0];
}

/* wino-prologue normalises as the group_norm kernel does: the block's
 * output is bit for bit the unfused plan's (so a training step's forward
 * and the remat copy its backward reads agree exactly, and a step computes
 * the same gradient as a plan without the rule). */
START_TEST(test_prologue_exact) {
  const Block *b = &blocks[3]; /* bench, 128 channels at 32x32 */
  IrGraph *g = block_graph(b, false);
  RtTensor *in[16];
  for (int k = 0; k < g->ninput; k++) in[k] = jc_make(IR_F32, &g->node[g->input[k]].shape, JC_NORMAL, 0);
  FusePlan *on = plan(g, NULL), *off = plan(g, "-wino-prologue");
  RtTensor *a = run_jit(g, on, in), *c = run_jit(g, off, in);
  jc_expect_agree("wino-prologue on vs off", a, c, 0, true);
  rt_tensor_free(a);
  rt_tensor_free(c);
  for (int k = 0; k < g->ninput; k++) rt_tensor_free(in[k]);
  fuse_plan_free(on);
  fuse_plan_free(off);
  ir_graph_free(g);
}
END_TEST

/* The forward block: both convs take their epilogue (bias; the second
 * also the residual add) into the output transform and their
 * relu(group_norm) into the input transform: no epilogue loops, the
 * group norms store statistics only. Each rule off gives its kernels back. */
START_TEST(test_structure) {
  const Block *b = &blocks[0];
  IrGraph *g = block_graph(b, false);
  FusePlan *p = plan(g, NULL);
  CgLowered *l = lower(g, p);
  int stats;
  ck_assert_int_eq(l->conv_winograd, 2);
  ck_assert_int_eq(l->wino_epilogue, 2);
  ck_assert_int_eq(l->wino_prologue, 2);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_LOOP, NULL), 0);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_GROUP_NORM, &stats), 2);
  ck_assert_int_eq(stats, 2);
  for (int i = 0; i < l->nkernel; i++)
    if (l->kernel[i].kind == CG_KERNEL_WINO_INPUT) ck_assert(l->kernel[i].wino_pro);
  ck_assert_ptr_nonnull(l->wino_fused);
  for (int v = 0; v < g->n; v++)
    if (g->node[v].op == OP_CONV2D) ck_assert_int_eq(l->wino_fused[v], CG_WINO_FUSED_EPILOGUE | CG_WINO_FUSED_PROLOGUE);
  cg_lowered_free(l);
  fuse_plan_free(p);

  p = plan(g, "-wino-epilogue"); /* an epilogue loop after each output transform */
  l = lower(g, p);
  ck_assert_int_eq(l->wino_epilogue, 0);
  ck_assert_int_eq(l->wino_prologue, 2);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_LOOP, NULL), 2);
  cg_lowered_free(l);
  fuse_plan_free(p);

  p = plan(g, "-wino-prologue"); /* group norms that store relu(gn), read by the input transforms */
  l = lower(g, p);
  ck_assert_int_eq(l->wino_epilogue, 2);
  ck_assert_int_eq(l->wino_prologue, 0);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_GROUP_NORM, &stats), 2);
  ck_assert_int_eq(stats, 0);
  for (int i = 0; i < l->nkernel; i++)
    if (l->kernel[i].kind == CG_KERNEL_WINO_INPUT) ck_assert(!l->kernel[i].wino_pro);
  cg_lowered_free(l);
  fuse_plan_free(p);

  p = plan(g, "-wino-epilogue,-wino-prologue"); /* the old structure */
  l = lower(g, p);
  ck_assert_int_eq(l->wino_epilogue + l->wino_prologue, 0);
  ck_assert_ptr_null(l->wino_fused);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_LOOP, NULL), 2);
  ck_assert_int_eq(steps_of(l, CG_KERNEL_GROUP_NORM, &stats), 2);
  ck_assert_int_eq(stats, 0);
  cg_lowered_free(l);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* In the gradient graph relu(group_norm) is also read by the backward
 * (the weight gradient, relu's mask), so it stays stored: no prologue;
 * the forward convs still take their epilogues. */
START_TEST(test_structure_grad) {
  IrGraph *g = block_graph(&blocks[0], true);
  FusePlan *p = plan(g, NULL);
  CgLowered *l = lower(g, p);
  ck_assert_int_eq(l->wino_prologue, 0);
  ck_assert_int_ge(l->wino_epilogue, 2);
  cg_lowered_free(l);
  fuse_plan_free(p);
  ir_graph_free(g);
}
END_TEST

/* Chunks of samples and of tile rows (a small col budget): the fused
 * kernels' windows, forward and gradients, against the reference. */
START_TEST(test_chunked) {
  cg_set_col_budget(_i == 0 ? 64 << 10 : 8 << 10);
  const Block b = {"odd", 3, 16, 13, 4}; /* odd planes: edge tiles */
  for (int grad = 0; grad < 2; grad++) {
    IrGraph *g = block_graph(&b, grad);
    FusePlan *p = plan(g, NULL);
    CgLowered *l = lower(g, p);
    ck_assert_int_ge(l->wino_epilogue, 2);
    ck_assert_int_eq(l->wino_prologue, grad ? 0 : 2);
    cg_lowered_free(l);
    JcCheck c = {.tol = grad ? GRAD_TOL : CG_WINOGRAD_REL_TOL, .seed = 11};
    jc_check_random(g, p, 0, &c);
    fuse_plan_free(p);
    ir_graph_free(g);
  }
  cg_set_col_budget(4ll << 20);
}
END_TEST

/* The rules by name, on by default, and switchable. */
START_TEST(test_rules) {
  ck_assert_int_eq(fuse_rule_find("wino-epilogue"), FUSE_RULE_WINO_EPILOGUE);
  ck_assert_int_eq(fuse_rule_find("wino-prologue"), FUSE_RULE_WINO_PROLOGUE);
  FuseOptions o = {.enabled = true};
  char err[256];
  ck_assert(fuse_rule_on(&o, FUSE_RULE_WINO_EPILOGUE) && fuse_rule_on(&o, FUSE_RULE_WINO_PROLOGUE));
  ck_assert_int_eq(fuse_rule_apply(&o, "-wino-prologue", err, sizeof err), 0);
  ck_assert(fuse_rule_on(&o, FUSE_RULE_WINO_EPILOGUE) && !fuse_rule_on(&o, FUSE_RULE_WINO_PROLOGUE));
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("wino_fuse");
  TCase *t = tcase_create("wino_fuse");
  tcase_add_checked_fixture(t, jc_setup, jc_teardown);
  tcase_set_timeout(t, 900);
  tcase_add_test(t, test_rules);
  tcase_add_test(t, test_prologue_exact);
  tcase_add_test(t, test_structure);
  tcase_add_test(t, test_structure_grad);
  tcase_add_loop_test(t, test_chunked, 0, 2);
  tcase_add_loop_test(t, test_block, 0, NBLOCKS);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return tu_run_suite(suite()); }
