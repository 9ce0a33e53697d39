/* cmd_info.c — `dalc info`: configuration, entries, parameter table.
 * Parameters are collected from every entry's graph (by name, in order of
 * first use); nothing is allocated for them, so the paper-sized models
 * report their size without needing the memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"
#include "ir/ref/ref_program.h"
#include "runtime/sched/memfit.h"
#include "tools/cli.h"

/* "12,292,000,000" */
static const char *with_commas(long long v, char *buf, size_t size) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%lld", v);
  size_t o = 0;
  for (int i = 0; i < n && o + 2 < size; i++) {
    if (i && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = 0;
  return buf;
}

static void print_init(const IrNode *p) {
  switch (p->attr.init) {
  case IR_INIT_ZEROS: printf("zeros"); break;
  case IR_INIT_ONES: printf("ones"); break;
  case IR_INIT_NORMAL: printf("normal(%g, %g)", p->attr.init_a, p->attr.init_b); break;
  case IR_INIT_UNIFORM: printf("uniform(%.4g, %.4g)", p->attr.init_a, p->attr.init_b); break;
  }
}

/* What each entry needs to run, as a program runs it (runtime/sched/memfit.h):
 * every parameter, its planned arena (a training entry as its whole step,
 * gradients included), the optimizer state if it trains, the transient
 * state it uses; and what this machine has. The plans are made, not compiled. */
static int print_memory(FeProgram *p, const DalcArgs *args) {
  IrGraph **g = cli_program_graphs(p, args, false);
  if (!g) return 1;
  int n = fe_entry_count(p), status = 0;
  RtPlanProgramDesc d = {0};
  RtErr e;
  if (cg_program_spec(g, n, args->file, &d, &e)) {
    cli_error("%s", e.msg);
    status = 1;
  }
  RtMemHave h;
  rt_mem_have(&h);
  char buf[600];
  if (!status) printf("\nmemory, estimated (f32): available %s\n", rt_mem_have_str(&h, buf, sizeof buf));
  int width = 0;
  for (int i = 0; i < n; i++)
    if ((int)strlen(g[i]->name) > width) width = (int)strlen(g[i]->name);
  for (int i = 0; i < n && !status; i++) {
    FuseOptions fo = args->fuse;
    FusePlan *plan = fuse_plan(g[i], &fo);
    CgLowered *l = cg_lower(g[i], plan, NULL, &e);
    if (!l) {
      cli_error("%s", e.msg);
      status = 1;
    } else {
      RtMemNeed need;
      rt_mem_need_plan(d.state, d.nstate, &l->plan, g[i]->train, l->plan.arena_bytes, &need);
      printf("  %-*s %s %s%s\n", width, g[i]->name, g[i]->train ? "(train)" : "       ",
             rt_mem_need_str(&need, buf, sizeof buf),
             h.have >= 0 && rt_mem_total(&need) > h.have ? "  does not fit (--force runs it anyway)" : "");
    }
    cg_lowered_free(l);
    fuse_plan_free(plan);
  }
  cg_program_spec_free(&d);
  for (int i = 0; i < n; i++) ir_graph_free(g[i]);
  free(g);
  return status;
}

int cmd_info(const DalcArgs *args) {
  FeProgram *p = cli_load(args);
  if (!p) return 1;
  int status = 0;
  int nentry = fe_entry_count(p);
  IrGraph **graphs = calloc((size_t)(nentry ? nentry : 1), sizeof *graphs);

  printf("%s  config %s", args->file, fe_config_selected(p));
  printf("  (configs:");
  for (int i = 0; i < fe_config_count(p); i++) printf(" %s", fe_config_name(p, i));
  printf(")\n\nconstants:");
  for (int i = 0; i < fe_constant_count(p); i++) {
    char *v = fe_constant_value(p, i);
    printf("%s%s=%s", i % 8 ? "  " : "\n  ", fe_constant_name(p, i), v);
    free(v);
  }
  printf("\n\nentries:\n");
  for (int i = 0; i < nentry; i++) {
    graphs[i] = cli_lower_entry(p, i, args);
    if (!graphs[i]) {
      status = 1;
      goto done;
    }
    char sig[1024];
    printf("  @%s %s\n", fe_entry_is_train(p, i) ? "train" : "infer", cli_signature(graphs[i], sig, sizeof sig));
  }

  /* The union of every entry's parameters, by name, in order of first use;
   * then the state the entries declare (a sampler's KV cache). */
  int cap = 64, n = 0, nstate = 0;
  const IrNode **table = malloc((size_t)cap * sizeof *table);
  long long total = 0, state_total = 0;
  for (int pass = 0; pass < 2; pass++)
  for (int e = 0; e < nentry; e++) {
    for (int k = 0; k < graphs[e]->nparam; k++) {
      const IrNode *q = &graphs[e]->node[graphs[e]->param[k]];
      if ((q->op == OP_PARAM) != (pass == 0)) continue;
      int seen = 0;
      for (int j = 0; j < n && !seen; j++) seen = !strcmp(table[j]->name, q->name);
      if (seen) continue;
      if (n == cap) table = realloc(table, (size_t)(cap *= 2) * sizeof *table);
      table[n++] = q;
      if (pass == 0) total += ir_numel(&q->shape);
      else state_total += ir_numel(&q->shape), nstate++;
    }
  }
  char count[48], t[160];
  printf("\nparameters: %s  (%d tensors)", with_commas(total, count, sizeof count), n - nstate);
  if (nstate) printf("; state: %s values (%d tensors)", with_commas(state_total, count, sizeof count), nstate);
  putchar('\n');
  int width = 0;
  for (int j = 0; j < n; j++)
    if ((int)strlen(table[j]->name) > width) width = (int)strlen(table[j]->name);
  for (int j = 0; j < n; j++) {
    printf("  %-*s  %-22s ", width, table[j]->name,
           cli_type(0, table[j]->shape.d, table[j]->shape.rank, t, sizeof t));
    if (table[j]->op == OP_STATE)
      printf("state%s", table[j]->attr.transient ? " (transient: not saved)" : "");
    else
      print_init(table[j]), printf("%s", table[j]->attr.frozen ? "  frozen" : "");
    putchar('\n');
  }
  free(table);
  status = print_memory(p, args);
done:
  for (int i = 0; i < nentry; i++)
    if (graphs[i]) ir_graph_free(graphs[i]);
  free(graphs);
  fe_free(p);
  return status;
}
