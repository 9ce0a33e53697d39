/* cmd_emit.c — `dalc FILE.dal --emit=ir|dot`: the graph IR as text (one
 * entry with --fn, else every entry) or as Graphviz (one entry: --fn, else
 * the first training entry, else the first entry; fused kernels drawn as
 * clusters unless -fno-fuse), to stdout or -o FILE. --explain-fusion lists
 * every producer that was not fused into its consumer, and why. */
#include <stdio.h>
#include <string.h>

#include "passes/fuse.h"
#include "tools/cli.h"

/* The entry that --emit=dot draws when --fn is not given. */
static int default_dot_entry(const FeProgram *p) {
  for (int i = 0; i < fe_entry_count(p); i++)
    if (fe_entry_is_train(p, i)) return i;
  return 0;
}

int cmd_emit(const DalcArgs *a) {
  if (!a->emit) {
    cli_error("nothing to do: use --emit=ir|dot, or a subcommand (dalc --help)");
    return 1;
  }
  int dot = !strcmp(a->emit, "dot");
  if (!dot && strcmp(a->emit, "ir")) {
    cli_error("--emit must be ir or dot, not '%s'", a->emit);
    return 1;
  }
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  if (fe_entry_count(p) == 0) {
    cli_error("%s has no entry functions (mark one with @train or @infer)", a->file);
    fe_free(p);
    return 1;
  }
  const char *only = a->fn ? a->fn : dot ? fe_entry_name(p, default_dot_entry(p)) : NULL;
  FILE *out = stdout;
  if (a->output && !(out = fopen(a->output, "w"))) {
    cli_error("cannot write %s", a->output);
    fe_free(p);
    return 1;
  }
  int status = 0;
  for (int i = 0; i < fe_entry_count(p); i++) {
    const char *name = only ? only : fe_entry_name(p, i);
    IrGraph *g = cli_lower(p, name, a, a->grad);
    if (!g) {
      status = 1;
      break;
    }
    FusePlan *plan = NULL;
    if (dot || a->explain_fusion) {
      FuseOptions fo = {.enabled = !a->no_fuse};
      double t0 = pass_now();
      plan = fuse_plan(g, &fo);
      if (a->times) pass_times_add(a->times, "fusion plan", pass_now() - t0);
    }
    if (a->explain_fusion && plan) {
      fprintf(stderr, "; fusion of %s: %d nodes in %d kernels\n", g->name, g->n, fuse_kernel_count(plan));
      fuse_explain(g, plan, stderr);
    }
    if (dot && plan && !a->no_fuse) fuse_print_dot(g, plan, out); /* one cluster per fused kernel */
    else if (dot) ir_print_dot(g, out);
    else ir_print(g, out);
    fuse_plan_free(plan);
    ir_graph_free(g);
    if (only) break;
    if (i + 1 < fe_entry_count(p)) fputc('\n', out);
  }
  if (out != stdout && fclose(out)) status = 1;
  fe_free(p);
  return status;
}
