/* compare.c — the compiler `bench --compare` asks for each variant
 * (runtime/exe/exe.h RtExeCompiler): dalc compiles the model again with
 * its own command line's flags followed by the variant's, and reports the
 * figures of the benched entry's plan (fusion plan and lowering, without
 * LLVM). Only the flags that change the compiled code may differ between
 * variants: -fno-fuse, --fuse-rule, -fconv and --passes. -fconv travels in
 * the variant's FuseOptions (conv_algo) to its own lowering, so variants
 * with different convolution algorithms live side by side in one process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower.h"
#include "runtime/exe/exe.h"
#include "tools/cli.h"

/* The variant's words applied to a copy of the host's arguments; -1 with
 * e->msg on a word that is not a variant flag. *passes, if set, is the
 * caller's to free. */
static int variant_args(const char *flags, DalcArgs *a, char **passes, RtErr *e) {
  char *copy = strdup(flags);
  if (!copy) return rt_err(e, "out of memory");
  int rc = 0;
  char *save = NULL;
  bool want_rule = false, want_passes = false, want_conv = false;
  for (char *w = strtok_r(copy, " \t\n", &save); w && rc == 0; w = strtok_r(NULL, " \t\n", &save)) {
    const char *rule = want_rule ? w : !strncmp(w, "--fuse-rule=", 12) ? w + 12 : NULL;
    const char *pipe = want_passes ? w : !strncmp(w, "--passes=", 9) ? w + 9 : NULL;
    const char *conv = want_conv ? w : !strncmp(w, "-fconv=", 7) ? w + 7 : NULL;
    want_rule = want_passes = want_conv = false;
    char err[1024];
    CgConvAlgo algo;
    if (conv) {
      if (cg_conv_algo_parse(conv, &algo)) a->fuse.conv_algo = (int)algo + 1;
      else rc = rt_err(e, "-fconv must be auto, im2col, winograd or direct, not '%s'", conv);
    } else if (rule) {
      if (fuse_rule_apply(&a->fuse, rule, err, sizeof err)) rc = rt_err(e, "%s", err);
    } else if (pipe) {
      free(*passes);
      if (!(*passes = strdup(pipe))) rc = rt_err(e, "out of memory");
      a->passes = *passes;
    } else if (!strcmp(w, "-fno-fuse")) {
      a->fuse.enabled = false;
    } else if (!strcmp(w, "--fuse-rule")) {
      want_rule = true;
    } else if (!strcmp(w, "--passes")) {
      want_passes = true;
    } else if (!strcmp(w, "-fconv")) {
      want_conv = true;
    } else {
      rc = rt_err(e,
                  "'%s' cannot differ between variants (a variant's flags: -fno-fuse, --fuse-rule=..., -fconv=..., "
                  "--passes=...)",
                  w);
    }
  }
  if (rc == 0 && (want_rule || want_passes || want_conv))
    rc = rt_err(e, "%s needs a value", want_rule ? "--fuse-rule" : want_passes ? "--passes" : "-fconv");
  a->no_fuse = !a->fuse.enabled;
  free(copy);
  return rc;
}

/* The figures of graph g's plan under a's fusion options. */
static int figures(const IrGraph *g, const DalcArgs *a, RtExePlanFigures *f, RtErr *e) {
  FusePlan *fp = fuse_plan(g, &a->fuse);
  if (!fp) return rt_err(e, "out of memory in the fusion pass");
  CgLowered *l = cg_lower(g, fp, NULL, e);
  if (l) {
    rt_exe_plan_figures(&l->plan, f);
    f->kernels = fuse_kernel_count(fp);
  }
  cg_lowered_free(l);
  fuse_plan_free(fp);
  return l ? 0 : -1;
}

static RtProgram *compile_variant(void *ctx, const char *flags, const char *entry, RtExePlanFigures *f, RtErr *e) {
  CliCompareHost *h = ctx;
  if (h->nvariant == CLI_MAX_VARIANTS) {
    rt_err(e, "more than %d variants", CLI_MAX_VARIANTS);
    return NULL;
  }
  DalcArgs *a = &h->variant[h->nvariant];
  *a = *h->base;
  a->rest_argc = 0;
  a->rest_argv = NULL;
  a->stats = false;
  a->print_after = NULL;
  a->times = NULL;
  char *passes = NULL;
  if (variant_args(flags, a, &passes, e)) {
    free(passes);
    return NULL;
  }
  h->nvariant++; /* the JIT keeps a pointer to a->fuse: it lives in h */
  int n = fe_entry_count(h->p), at = -1;
  IrGraph **graphs = cli_program_graphs(h->p, a, false); /* prints its errors */
  free(passes);
  if (!graphs) {
    rt_err(e, "the model did not compile under these flags (the error is above)");
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!strcmp(fe_entry_name(h->p, i), entry)) at = i;
  if (at < 0 || figures(graphs[at], a, f, e)) {
    if (at < 0) rt_err(e, "no entry '%s'", entry);
    for (int i = 0; i < n; i++) ir_graph_free(graphs[i]);
    free(graphs);
    return NULL;
  }
  RtProgram *prog = cli_program(graphs, n, h->p, a); /* takes the graphs */
  free(graphs);
  if (!prog) rt_err(e, "the model did not compile under these flags (the error is above)");
  return prog;
}

void cli_compare_install(CliCompareHost *h, const DalcArgs *base, FeProgram *p) {
  memset(h, 0, sizeof *h);
  h->base = base;
  h->p = p;
  rt_exe_set_compiler(&(RtExeCompiler){compile_variant, h});
}
