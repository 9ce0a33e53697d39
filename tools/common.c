/* common.c — loading, lowering and describing, and lists of texts read
 * from files, shared by dalc's subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/llvm/jit_program.h"
#include "ir/ref/ref_program.h"
#include "passes/attention.h"
#include "passes/autodiff.h"
#include "passes/passes.h"
#include "passes/remat.h"
#include "passes/simplify.h"
#include "runtime/sched/memfit.h"
#include "tools/cli.h"

FeProgram *cli_load(const DalcArgs *args) {
  FeOptions opt = {.config = args->config, .batch = args->batch};
  char *err = NULL;
  double t0 = pass_now();
  FeProgram *p = fe_load_file(args->file, &opt, &err);
  if (args->times) pass_times_add(args->times, "frontend: parse, check, configure", pass_now() - t0);
  if (!p) {
    fputs(err ? err : "dalc: error: could not load the program\n", stderr);
    free(err);
  }
  return p;
}

IrGraph *cli_lower_entry(FeProgram *p, int i, const DalcArgs *a) {
  char *err = NULL;
  double t0 = pass_now();
  IrGraph *g = fe_lower_entry(p, i, &err);
  if (a->times) pass_times_add(a->times, "frontend: trace entries to IR", pass_now() - t0);
  if (!g) {
    fputs(err ? err : "dalc: error: could not lower the entry\n", stderr);
    free(err);
    return NULL;
  }
  /* the attention rule rewrites the traced graph, before any gradient */
  if (a->fuse.enabled && fuse_rule_on(&a->fuse, FUSE_RULE_ATTENTION)) {
    int fused = 0;
    t0 = pass_now();
    if (pass_attention_fuse(g, &fused, a->explain_fusion ? stderr : NULL)) {
      cli_graph_error(g);
      ir_graph_free(g);
      return NULL;
    }
    if (a->times) pass_times_add(a->times, "pass attention", pass_now() - t0);
    if (a->stats && fused)
      fprintf(stderr, "attention: %s: %d attention pattern%s fused (rule 'attention')\n", g->name, fused,
              fused == 1 ? "" : "s");
  }
  return g;
}

int cli_run_passes(IrGraph *g, const DalcArgs *a) {
  PassRunOptions o = {.stats = a->stats ? stderr : NULL, .times = a->times, .print_after = a->print_after};
  if (pass_run_pipeline_opts(g, a->passes ? a->passes : CLI_DEFAULT_PASSES, &o)) return -1;
  return cli_remat(g, a, a->stats ? stderr : NULL);
}

int cli_remat(IrGraph *g, const DalcArgs *a, FILE *stats) {
  if (a->passes || !g->train || !a->fuse.enabled || !fuse_rule_on(&a->fuse, FUSE_RULE_REMAT)) return 0;
  PassRematStats st;
  double t0 = pass_now();
  if (pass_remat_opts(g, &a->fuse, &st)) return -1;
  if (a->times) pass_times_add(a->times, "pass remat", pass_now() - t0);
  if (stats) pass_remat_print(&st, stats);
  return 0;
}

/* g after the graph passes if rc (what came before) is 0; else, or if a
 * pass fails, the error reported, g freed and NULL. */
static IrGraph *passes_or_fail(IrGraph *g, int rc, const DalcArgs *a) {
  if (rc == 0) rc = cli_run_passes(g, a);
  if (rc) {
    cli_graph_error(g);
    ir_graph_free(g);
    return NULL;
  }
  return g;
}

IrGraph *cli_lower(FeProgram *p, const char *name, const DalcArgs *a, bool grad) {
  int i = fe_entry_find(p, name);
  if (i < 0) {
    fprintf(stderr, "dalc: error: no entry function '%s'; the entries are:", name);
    for (int k = 0; k < fe_entry_count(p); k++) fprintf(stderr, " %s", fe_entry_name(p, k));
    fputc('\n', stderr);
    return NULL;
  }
  IrGraph *g = cli_lower_entry(p, i, a);
  if (!g) return NULL;
  int rc = 0;
  if (grad && g->train) {
    if (a->stats) pass_print_stats(g, "traced", -1, stderr);
    double t0 = pass_now();
    rc = ad_grad_pass(g);
    if (a->times) pass_times_add(a->times, "pass grad", pass_now() - t0);
  }
  return passes_or_fail(g, rc, a);
}

void cli_graph_error(const IrGraph *g) {
  if (g->error_loc.file) {
    char *msg = fe_format_diag(g->error_loc, "%s", g->error);
    fputs(msg, stderr);
    free(msg);
  } else {
    cli_error("%s", g->error);
  }
}

const char *cli_type(int is_i32, const int64_t *dim, int rank, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "%s", is_i32 ? "i32" : "f32");
  if (rank == 0 || n >= size) return buf;
  n += (size_t)snprintf(buf + n, size - n, "[");
  for (int i = 0; i < rank && n < size; i++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)dim[i]);
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

const char *cli_signature(const IrGraph *g, char *buf, size_t size) {
  char t[160];
  size_t n = (size_t)snprintf(buf, size, "%s(", g->name);
  for (int i = 0; i < g->ninput && n < size; i++) {
    const IrNode *x = &g->node[g->input[i]];
    n += (size_t)snprintf(buf + n, size - n, "%s%s: %s", i ? ", " : "", x->name,
                          cli_type(x->dtype == IR_I32, x->shape.d, x->shape.rank, t, sizeof t));
  }
  if (n < size) n += (size_t)snprintf(buf + n, size - n, ")");
  for (int i = 0; i < g->noutput && n < size; i++) {
    const IrNode *y = &g->node[g->output[i]];
    n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : " -> ",
                          cli_type(y->dtype == IR_I32, y->shape.d, y->shape.rank, t, sizeof t));
  }
  return buf;
}

RtProgram *cli_program(IrGraph **graphs, int n, const FeProgram *p, const DalcArgs *a) {
  double lr = 1e-3;
  fe_global_number(p, "lr", &lr);
  RtErr e;
  RtProgram *prog;
  if (a->ref) {
    prog = cg_ref_program(graphs, n, a->file, fe_config_selected(p), lr, a->seed, &e);
  } else {
    /* Entries compile when first run, so a command compiles only what it
     * uses; --time-passes compiles them all up front, to time the whole
     * model. */
    CgJitOptions o = {.no_fuse = a->no_fuse, .fuse = &a->fuse, .times = a->times, .lazy = !a->times,
                      .no_cache = a->no_cache, .counts = a->counts};
    prog = cg_jit_program(graphs, n, a->file, fe_config_selected(p), lr, a->seed, &o, &e);
  }
  if (!prog) cli_error("%s", e.msg);
  else prog->source_hash = fe_source_hash((FeProgram *)p); /* lives as long as p, which outlives prog */
  return prog;
}

/* A model's optimizer settings come from its globals (MODELS.md section 1
 * and 2 give them per model), with PyTorch's AdamW defaults otherwise. */
AdamWOptions cli_adamw_options(const FeProgram *p) {
  AdamWOptions o = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .clip_norm = 0};
  fe_global_number(p, "adam_beta1", &o.beta1);
  fe_global_number(p, "adam_beta2", &o.beta2);
  fe_global_number(p, "adam_eps", &o.eps);
  fe_global_number(p, "weight_decay", &o.weight_decay);
  fe_global_number(p, "clip_norm", &o.clip_norm);
  return o;
}


int cli_check_params(IrGraph *const *g, int n, const DalcArgs *a) {
  RtMemNeed need = {0};
  for (int i = 0; i < n; i++)
    for (int k = 0; k < g[i]->nparam; k++) {
      const IrNode *q = &g[i]->node[g[i]->param[k]];
      int seen = q->op != OP_PARAM;
      for (int j = 0; j <= i && !seen; j++)
        for (int m = 0; m < (j < i ? g[j]->nparam : k) && !seen; m++)
          seen = !strcmp(g[j]->node[g[j]->param[m]].name, q->name);
      if (!seen) need.param += ir_numel(&q->shape) * (int64_t)sizeof(float);
    }
  RtErr e;
  if (rt_mem_check(&need, a->file, &e) == 0) return 0;
  cli_error("%s", e.msg);
  return -1;
}

IrGraph **cli_program_graphs(FeProgram *p, const DalcArgs *a, bool check_memory) {
  int n = fe_entry_count(p);
  IrGraph **graphs = calloc((size_t)n + 1, sizeof *graphs);
  AdamWOptions adamw = cli_adamw_options(p);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++)
    if (!(graphs[i] = cli_lower_entry(p, i, a))) rc = -1;
  if (rc == 0 && check_memory) rc = cli_check_params(graphs, n, a);
  /* each as a program runs it: a training entry made a training step
   * (forward, backward, AdamW), then the graph passes */
  for (int i = 0; i < n && rc == 0; i++) {
    double t0 = pass_now();
    int trc = graphs[i]->train ? opt_train_step(graphs[i], &adamw) : 0;
    if (a->times && graphs[i]->train) pass_times_add(a->times, "training step: grad + adamw", pass_now() - t0);
    if (!(graphs[i] = passes_or_fail(graphs[i], trc, a))) rc = -1;
  }
  if (rc == 0) return graphs;
  for (int k = 0; k < n; k++)
    if (graphs[k]) ir_graph_free(graphs[k]);
  free(graphs);
  return NULL;
}

int cli_texts_add(CliTexts *t, const char *s) {
  if (t->n == t->cap) {
    int64_t cap = t->cap ? 2 * t->cap : 1024;
    char **more = realloc(t->text, sizeof *more * (size_t)cap);
    if (!more) goto oom;
    t->text = more;
    t->cap = cap;
  }
  if (!(t->text[t->n] = strdup(s))) goto oom;
  t->n++;
  return 0;
oom:
  cli_error("out of memory");
  return -1;
}

int cli_texts_read(CliTexts *t, const char *path, bool skip_blank) {
  FILE *f = fopen(path, "r");
  if (!f) {
    cli_error("%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  char line[4096];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (*line || !skip_blank) rc = cli_texts_add(t, line);
  }
  fclose(f);
  return rc;
}

void cli_texts_free(CliTexts *t) {
  for (int64_t i = 0; i < t->n; i++) free(t->text[i]);
  free(t->text);
  *t = (CliTexts){0};
}

int cli_fuse_rule(FuseOptions *o, const char *spec) {
  char err[1024];
  if (fuse_rule_apply(o, spec, err, sizeof err) == 0) return 0;
  cli_error("%s", err);
  return -1;
}

bool cli_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
  return false;
}
