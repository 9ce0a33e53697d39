/* cmd_tune.c — `dalc tune-conv FILE.dal [--config C] [--batch N] [--fn NAME]
 * [-o TABLE]`: measures every convolution shape of the model's entries (or
 * of entry NAME only; training entries as whole training steps, so their
 * backward-data convolutions and weight gradients too) under each
 * algorithm that can compute it, and writes the times into the conv table
 * that -fconv=auto reads (codegen/conv_table.h; -o: another file). Each
 * shape runs alone in a one-op plan on the runtime's pool: one warm-up,
 * then REPS timed runs, the median counts. Rows of the table for shapes
 * this model does not have are kept, so one table serves several models.
 * Progress, one line per shape, goes to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/conv_table.h"
#include "codegen/llvm/cg_llvm.h"
#include "codegen/lower.h"
#include "passes/fuse.h"
#include "runtime/core/threadpool.h"
#include "runtime/sched/rt_sched.h"
#include "tools/cli.h"

#define REPS 7

typedef struct {
  CgSession *session;
  RtPool *pool;
} Tuner;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A one-op graph computing conv node v of src from inputs of its operands'
 * shapes. */
static IrGraph *conv_alone(const IrGraph *src, int v) {
  const IrNode *n = &src->node[v];
  IrGraph *g = ir_graph_new("tune_conv");
  SrcLoc loc = {"tune-conv", 1, 1};
  int in[2];
  for (int i = 0; i < 2; i++)
    in[i] = ir_input(g, i ? "b" : "a", IR_F32, src->node[n->in[i]].shape, loc);
  int y = ir_build(g, n->op, in, 2, &n->attr, loc);
  if (in[0] < 0 || in[1] < 0 || y < 0) {
    ir_graph_free(g);
    return NULL;
  }
  ir_set_outputs(g, &y, NULL, 1);
  return g;
}

/* Median milliseconds of g's plan under algorithm a, or -1 with a message. */
static double time_algo(Tuner *t, IrGraph *g, CgConvAlgo a) {
  RtErr e = {{0}};
  FusePlan *fp = fuse_plan(g, &(FuseOptions){.enabled = true, .conv_algo = (int)a + 1});
  CgModule *m = fp ? cg_module_new(t->session, g, fp, &e) : NULL;
  if (fp) fuse_plan_free(fp);
  double ms = -1;
  RtTensor *in[2] = {NULL, NULL}, *out[1] = {NULL};
  void *arena = NULL;
  RtTensorList *state = rt_list_new();
  if (!m || cg_module_jit(m, &e)) goto done;
  const RtPlan *plan = cg_module_plan(m);
  if (!(arena = rt_arena_new(plan->arena_bytes, &e))) goto done;
  uint32_t x = 12345;
  for (int i = 0; i < 2; i++) {
    const IrShape *s = &g->node[g->input[i]].shape;
    if (!(in[i] = rt_tensor_new(RT_F32, s->rank, s->d, &e))) goto done;
    float *p = rt_f32(in[i]);
    for (int64_t k = 0, nk = rt_tensor_numel(in[i]); k < nk; k++) x = x * 1664525u + 1013904223u, p[k] = (float)(x >> 8) / 8388608.0f - 1;
  }
  double t_ms[REPS];
  RtRunCtx ctx = {0, 0};
  for (int r = -1; r < REPS; r++) {
    double t0 = now_ms();
    if (rt_plan_run(plan, t->pool, arena, in, out, state, &ctx, &e)) goto done;
    if (r >= 0) t_ms[r] = now_ms() - t0;
    rt_tensor_free(out[0]);
    out[0] = NULL;
  }
  qsort(t_ms, REPS, sizeof *t_ms, cmp_double);
  ms = t_ms[REPS / 2];
done:
  if (ms < 0) cli_error("tune-conv: %s", e.msg[0] ? e.msg : "could not compile a one-conv plan");
  for (int i = 0; i < 2; i++) rt_tensor_free(in[i]);
  rt_tensor_free(out[0]);
  rt_list_free(state);
  rt_arena_free(arena);
  cg_module_free(m);
  return ms;
}

/* Adds the rows of every conv of g not yet in rows[0..*n), measured. */
static int tune_graph(Tuner *t, const IrGraph *src, CgConvTableRow **rows, int *n, int *cap) {
  for (int v = 0; v < src->n; v++) {
    IrOp op = src->node[v].op;
    if (op != OP_CONV2D && op != OP_CONV_TRANSPOSE2D && op != OP_CONV2D_BACKWARD_WEIGHT) continue;
    CgConvTableRow row;
    cg_conv_table_key(src, v, &row);
    bool seen = false;
    for (int i = 0; i < *n && !seen; i++)
      seen = cg_conv_table_same(&(*rows)[i], &row);
    if (seen) continue;
    IrGraph *g = conv_alone(src, v);
    if (!g) {
      cli_error("tune-conv: could not rebuild conv %%%d of %s", v, src->name);
      return -1;
    }
    fprintf(stderr, "[%d] %s [%lld,%lld,%lld,%lld] -> %lld k%lldx%lld s%d p%d:", *n + 1, ir_op_name(op),
            (long long)row.N, (long long)row.C, (long long)row.H, (long long)row.W, (long long)row.O,
            (long long)row.KH, (long long)row.KW, row.stride, row.pad);
    for (int a = CG_CONV_IM2COL; a < CG_CONV_TABLE_NALGO; a++) {
      if (cg_conv_pick(g, g->noutput ? g->output[0] : 0, (CgConvAlgo)a, NULL) != (CgConvAlgo)a) continue;
      row.ms[a] = time_algo(t, g, (CgConvAlgo)a);
      if (row.ms[a] < 0) {
        ir_graph_free(g);
        return -1;
      }
      fprintf(stderr, " %s %.3f ms", cg_conv_algo_flag((CgConvAlgo)a), row.ms[a]);
    }
    fputc('\n', stderr);
    ir_graph_free(g);
    if (*n == *cap) {
      *cap = *cap ? 2 * *cap : 64;
      CgConvTableRow *more = realloc(*rows, sizeof *more * (size_t)*cap);
      if (!more) {
        cli_error("out of memory");
        return -1;
      }
      *rows = more;
    }
    (*rows)[(*n)++] = row;
  }
  return 0;
}

int cmd_tune(const DalcArgs *a) {
  char path[4200], why[1024];
  if (a->output) snprintf(path, sizeof path, "%s", a->output);
  else if (cg_conv_table_path(path, sizeof path)) {
    cli_error("tune-conv: no cache directory to keep the table in (set DAL_CACHE_DIR or HOME, or give -o)");
    return 1;
  }
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  int status = 1, n = 0, cap = 0, nold = 0;
  CgConvTableRow *rows = NULL, *old = NULL;
  IrGraph **graphs = NULL;
  Tuner t = {0};
  RtErr e = {{0}};
  /* time the rules' choices: no old table may steer what is measured */
  cg_conv_table_set(NULL, 0);
  if (cg_conv_table_read(path, &old, &nold, why, sizeof why) < 0) fprintf(stderr, "dalc: note: %s: replaced\n", why);
  if (!(graphs = cli_program_graphs(p, a, false))) goto done;
  if (!(t.session = cg_session_new(&e)) || !(t.pool = rt_pool_new(0, &e))) {
    cli_error("%s", e.msg);
    goto done;
  }
  bool found = false;
  for (int i = 0; i < fe_entry_count(p); i++) {
    if (a->fn && strcmp(a->fn, fe_entry_name(p, i))) continue;
    found = true;
    if (tune_graph(&t, graphs[i], &rows, &n, &cap)) goto done;
  }
  if (!found) {
    cli_error("tune-conv: no entry function '%s' in %s", a->fn, a->file);
    goto done;
  }
  int measured = n;
  for (int i = 0; i < nold; i++) { /* keep other models' rows */
    bool mine = false;
    for (int k = 0; k < measured && !mine; k++) mine = cg_conv_table_same(&old[i], &rows[k]);
    if (mine) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      CgConvTableRow *more = realloc(rows, sizeof *more * (size_t)cap);
      if (!more) goto done;
      rows = more;
    }
    rows[n++] = old[i];
  }
  if (cg_conv_table_write(path, rows, n, why, sizeof why)) {
    cli_error("tune-conv: %s", why);
    goto done;
  }
  fprintf(stderr, "tune-conv: %d shapes measured, %d kept from before: %s\n", measured, n - measured, path);
  status = 0;
done:
  if (graphs)
    for (int i = 0; i < fe_entry_count(p); i++) ir_graph_free(graphs[i]);
  free(graphs);
  if (t.pool) rt_pool_free(t.pool);
  if (t.session) cg_session_free(t.session);
  free(rows);
  free(old);
  fe_free(p);
  return status;
}
