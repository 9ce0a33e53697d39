/* cmd_emit.c — `dalc FILE.dal --emit=ir|dot|llvm|asm|obj`: (llvm, asm and obj:
 * the native kernels of one entry, chosen as for dot)  the graph IR as text (one
 * entry with --fn, else every entry) or as Graphviz (one entry: --fn, else
 * the first training entry, else the first entry; fused kernels drawn as
 * clusters unless -fno-fuse), to stdout or -o FILE. --explain-fusion lists
 * every producer that was not fused into its consumer, and why. */
#include <stdio.h>
#include <string.h>

#include "codegen/llvm/cg_llvm.h"
#include "codegen/lower.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "runtime/io/fileio.h"
#include "tools/cli.h"

/* The entry that --emit=dot draws when --fn is not given. */
static int default_dot_entry(const FeProgram *p) {
  for (int i = 0; i < fe_entry_count(p); i++)
    if (fe_entry_is_train(p, i)) return i;
  return 0;
}

/* --emit=llvm|asm|obj: the kernels of one entry (a training entry as its
 * whole training step would run: forward, backward, AdamW). */
static int emit_native(FeProgram *p, const char *name, const DalcArgs *a) {
  IrGraph *g = cli_lower(p, name, a, false);
  if (!g) return 1;
  RtErr e;
  int status = 1;
  CgSession *s = NULL;
  CgModule *m = NULL;
  FusePlan *plan = NULL;
  FILE *out = NULL;
  if (g->train) {
    AdamWOptions o = cli_adamw_options(p);
    if (opt_train_step(g, &o) || cli_run_passes(g, a)) {
      cli_graph_error(g);
      goto done;
    }
  }
  FuseOptions fo = a->fuse;
  plan = fuse_plan(g, &fo);
  if (!(s = cg_session_new(&e)) || !(m = cg_module_new(s, g, plan, &e))) {
    cli_error("%s", e.msg);
    goto done;
  }
  if (!strcmp(a->emit, "obj")) {
    status = cg_module_emit_object(m, a->output, &e) ? 1 : 0;
  } else {
    out = a->output ? fopen(a->output, "w") : stdout;
    if (!out) {
      cli_error("cannot write %s", a->output);
      goto done;
    }
    status = (!strcmp(a->emit, "llvm") ? cg_module_print_llvm(m, out, &e) : cg_module_print_asm(m, out, &e)) ? 1 : 0;
  }
  if (status) cli_error("%s", e.msg);
done:
  if (out && out != stdout && rt_stream_close(out, a->output, &e)) {
    cli_error("%s", e.msg);
    status = 1;
  }
  cg_module_free(m);
  cg_session_free(s);
  if (plan) fuse_plan_free(plan);
  ir_graph_free(g);
  return status;
}

int cmd_emit(const DalcArgs *a) {
  if (!a->emit) {
    cli_error("nothing to do: use --emit=ir|dot, or a subcommand (dalc --help)");
    return 1;
  }
  int dot = !strcmp(a->emit, "dot");
  int native = !strcmp(a->emit, "llvm") || !strcmp(a->emit, "asm") || !strcmp(a->emit, "obj");
  if (!dot && !native && strcmp(a->emit, "ir")) {
    cli_error("--emit must be ir, dot, llvm, asm or obj, not '%s'", a->emit);
    return 1;
  }
  if (!strcmp(a->emit, "obj") && !a->output) {
    cli_error("--emit=obj needs -o FILE.o");
    return 1;
  }
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  if (fe_entry_count(p) == 0) {
    cli_error("%s has no entry functions (mark one with @train or @infer)", a->file);
    fe_free(p);
    return 1;
  }
  const char *only = a->fn ? a->fn : dot || native ? fe_entry_name(p, default_dot_entry(p)) : NULL;
  if (native) {
    int status = emit_native(p, only, a);
    fe_free(p);
    return status;
  }
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
      FuseOptions fo = a->fuse;
      double t0 = pass_now();
      plan = fuse_plan(g, &fo);
      if (a->times) pass_times_add(a->times, "fusion plan", pass_now() - t0);
    }
    if (a->explain_fusion && plan) {
      fprintf(stderr, "; fusion of %s: %d nodes in %d kernels\n", g->name, g->n, fuse_kernel_count(plan));
      fuse_explain(g, plan, stderr);
      cg_conv_print_choices(g, cg_conv_algo_of(&a->fuse), stderr);
      cg_wino_fuse_explain(g, plan, stderr);
    }
    if (dot && plan && !a->no_fuse) fuse_print_dot(g, plan, out); /* one cluster per fused kernel */
    else if (dot) ir_print_dot(g, out);
    else ir_print(g, out);
    fuse_plan_free(plan);
    ir_graph_free(g);
    if (only) break;
    if (i + 1 < fe_entry_count(p)) fputc('\n', out);
  }
  RtErr e;
  if (out != stdout && rt_stream_close(out, a->output, &e)) {
    cli_error("%s", e.msg);
    status = 1;
  }
  fe_free(p);
  return status;
}
