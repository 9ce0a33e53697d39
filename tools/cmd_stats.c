/* cmd_stats.c — `dalc FILE.dal --stats` (no --emit): every entry as it
 * would run (a training entry as its whole training step: forward,
 * backward, AdamW), with node counts through the pass pipeline, the number
 * of fused kernels and plan steps, and the memory plan: the arena against
 * the lower bound (the most bytes ever live at once) and against no reuse
 * at all (the sum of every intermediate). */
#include <stdio.h>
#include <string.h>

#include "codegen/lower.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "passes/simplify.h"
#include "tools/cli.h"

static double mib(int64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

static int entry_stats(FeProgram *p, int i, const AdamWOptions *o, const DalcArgs *a) {
  IrGraph *g = cli_lower_entry(p, i, a);
  if (!g) return 1;
  printf("== %s%s\n", g->name, g->train ? " (training step: forward, backward, AdamW)" : "");
  int status = 1;
  FusePlan *plan = NULL;
  CgLowered *l = NULL;
  if (g->train) {
    pass_print_stats(g, "traced", -1, stdout);
    if (opt_train_step(g, o)) goto fail;
  }
  PassRunOptions ro = {.stats = stdout, .times = a->times};
  if (pass_run_pipeline_opts(g, a->passes ? a->passes : CLI_DEFAULT_PASSES, &ro)) goto fail;
  if (cli_remat(g, a, stdout)) goto fail;
  FuseOptions fo = a->fuse;
  plan = fuse_plan(g, &fo);
  RtErr e;
  if (!(l = cg_lower(g, plan, NULL, &e))) {
    cli_error("%s", e.msg);
    goto done;
  }
  int copies = 0;
  for (int i = 0; i < l->plan.nstep; i++) copies += l->plan.step[i].kind == RT_STEP_COPY;
  printf("kernels: %d fused kernels for %d nodes; %d plan steps (%d distinct kernel functions, %d copies)\n",
         fuse_kernel_count(plan), g->n, l->plan.nstep, l->plan.nkernel, copies);
  printf("memory:  arena %.2f MiB   lower bound %.2f MiB (arena/bound %.4f)   no reuse %.2f MiB (%.1fx the arena)\n",
         mib(l->plan.arena_bytes), mib(l->arena_lower_bound),
         l->arena_lower_bound ? (double)l->plan.arena_bytes / (double)l->arena_lower_bound : 1.0,
         mib(l->arena_no_reuse), l->plan.arena_bytes ? (double)l->arena_no_reuse / (double)l->plan.arena_bytes : 0.0);
  printf("in place: %d elementwise kernels write an output over an input that dies there\n", l->in_place);
  int folded = 0;
  for (int v = 0; plan->ln_into && v < g->n; v++) folded += plan->ln_into[v] >= 0;
  printf("ln prologue: %d layer_norms computed by the GEMM step that reads them (no kernel, no buffer)\n", folded);
  printf("convs:   %d Winograd, %d im2col + GEMM, %d direct; weight gradients: %d Winograd, %d im2col + GEMM, "
         "%d direct; of the Winograd ones %d F(4x4,3x3), the rest F(2x2,3x3)\n",
         l->conv_winograd, l->conv_im2col, l->conv_direct, l->wgrad_winograd, l->wgrad_im2col, l->wgrad_direct,
         l->winograd4);
  printf("wino-share-u: %d Winograd convs read another's weight transform U (%d weight kernels left): "
         "%.2f MiB of U not recomputed, arena lower bound +%.2f MiB\n", l->wino_shared, l->wino_weight_kernels,
         mib(l->wino_share_saved), mib(l->wino_share_added));
  printf("winograd fusion: %d output transforms apply their group's epilogue (wino-epilogue), %d input transforms "
         "compute their elementwise x (wino-prologue)\n", l->wino_epilogue, l->wino_prologue);
  cg_conv_print_choices(g, cg_conv_algo_of(&fo), stdout);
  cg_wino_share_print(l, stdout);
  status = 0;
  goto done;
fail:
  cli_graph_error(g);
done:
  cg_lowered_free(l);
  if (plan) fuse_plan_free(plan);
  ir_graph_free(g);
  return status;
}

int cmd_stats(const DalcArgs *a) {
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  AdamWOptions o = cli_adamw_options(p);
  int status = 0, found = 0;
  for (int i = 0; i < fe_entry_count(p) && !status; i++) {
    if (a->fn && strcmp(a->fn, fe_entry_name(p, i))) continue;
    found = 1;
    if (i) putchar('\n');
    status = entry_stats(p, i, &o, a);
  }
  if (a->fn && !found) status = cli_lower(p, a->fn, a, false) ? 0 : 1; /* reports the unknown name */
  fe_free(p);
  return status;
}
