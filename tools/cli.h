/* cli.h — dalc's command line, shared by its subcommands (tools/cmd_*.c).
 * main() parses options into a DalcArgs; each subcommand is a function
 * that returns the process exit status. */
#ifndef DAL_TOOLS_CLI_H
#define DAL_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/llvm/cg_llvm.h"
#include "frontend/frontend.h"
#include "passes/fuse.h"
#include "passes/optimizer.h"
#include "passes/passes.h"
#include "runtime/sched/program.h"

#define CLI_MAX_BINDINGS 64

typedef struct {
  const char *name; /* input or output name; NULL when the path was given alone */
  const char *path;
} CliBinding;

typedef struct {
  const char *file;        /* the .dal file */
  const char *config;      /* --config, NULL = the file's first */
  int64_t batch;           /* --batch, 0 = the config's */
  const char *fn;          /* --fn */
  const char *params;      /* --params p.safetensors */
  const char *save_params; /* --save-params p.safetensors */
  const char *emit;        /* --emit=ir|dot */
  const char *output;      /* -o */
  const char *passes;      /* --passes=a,b (default: the standard pipeline) */
  bool grad;               /* --grad: differentiate training entries (--emit) */
  const char *grad_out;    /* --grad-out g.safetensors (run) */
  bool stats;              /* --stats: node counts before and after each pass */
  const char *print_after; /* --print-after=PASS, --print-after-all ("all") */
  PassTimes *times;        /* --time-passes: phase timings, printed at exit */
  bool no_fuse;            /* -fno-fuse (after --fuse-rule: !fuse.enabled) */
  FuseOptions fuse;        /* -fno-fuse and --fuse-rule=+NAME,-NAME, left to right */
  bool no_cache;           /* --no-cache: bypass the compiled-object cache */
  CgCompileCounts *counts; /* with --time-passes: kernels compiled, deduplicated, cache hits and misses */
  bool ref;                /* --backend=ref: the reference executor instead of the JIT */
  bool explain_fusion;     /* --explain-fusion */
  int rest_argc;           /* the executable's command line after "--" */
  char **rest_argv;
  uint64_t seed;           /* --seed */
  CliBinding in[CLI_MAX_BINDINGS];
  int nin;
  CliBinding out[CLI_MAX_BINDINGS];
  int nout;
} DalcArgs;

/* Loads args->file with its config; prints the diagnostic and returns NULL on error. */
FeProgram *cli_load(const DalcArgs *args);
/* Lowers the entry called name (listing the entries if there is none) and
 * runs the pass pipeline over it. */
IrGraph *cli_lower(FeProgram *p, const char *name, const DalcArgs *a, bool grad);
/* Traces entry i (timed under --time-passes); prints the error on failure. */
IrGraph *cli_lower_entry(FeProgram *p, int i, const DalcArgs *a);
/* Runs the pipeline (--passes or the default) with --stats, --time-passes
 * and --print-after as asked. Returns 0 or -1 (g->error). */
int cli_run_passes(IrGraph *g, const DalcArgs *a);
/* Without --passes, a training step's remat pass (passes/remat.h) under
 * a's fusion options, unless --fuse-rule=-remat or -fno-fuse; its line to
 * stats if not NULL. Returns 0 or -1 (g->error). */
int cli_remat(IrGraph *g, const DalcArgs *a, FILE *stats);
/* A program of graphs[0..n) (taken over) on the chosen backend: JIT'd
 * native code, or the reference executor with --backend=ref. */
RtProgram *cli_program(IrGraph **graphs, int n, const FeProgram *p, const DalcArgs *a);
/* Every entry as a program runs it (training entries as whole training
 * steps, then the pass pipeline), in entry order; NULL after printing the
 * error. With check_memory, once traced, the model's parameters must fit
 * in memory (runtime/sched/memfit.h) before the slower rest. The caller
 * owns the array and the graphs. */
IrGraph **cli_program_graphs(FeProgram *p, const DalcArgs *a, bool check_memory);
/* The model's AdamW settings (its globals adam_beta1, adam_beta2, adam_eps,
 * weight_decay, clip_norm; PyTorch's defaults otherwise). */
AdamWOptions cli_adamw_options(const FeProgram *p);
/* Do the parameters of graphs g[0..n) (the union by name) fit in memory
 * (runtime/sched/memfit.h)? -1 after printing the error. Asked before the
 * slow part of compiling; the programs check again, with everything,
 * before allocating. */
int cli_check_params(IrGraph *const *g, int n, const DalcArgs *a);
/* Applies a --fuse-rule value (fuse_rule_apply) to o; -1 after printing the error. */
int cli_fuse_rule(FuseOptions *o, const char *spec);
/* Prints g->error, with its source line when it has a location. */
void cli_graph_error(const IrGraph *g);

/* The passes dalc runs unless --passes says otherwise. */
#define CLI_DEFAULT_PASSES "cse,fold,algebra,dce"
/* "name(x: f32[4, 3, 16, 16], tau: f32) -> f32" into buf. */
const char *cli_signature(const IrGraph *g, char *buf, size_t size);
/* "f32[4, 3]" (or "f32" for a scalar) into buf. */
const char *cli_type(int dtype_is_i32, const int64_t *dim, int rank, char *buf, size_t size);
/* --help or -h among argv[0..argc), before any "--". */
bool cli_wants_help(int argc, char **argv);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growing list of texts (captions, lines of a file); zero-initialise. */
typedef struct {
  char **text;
  int64_t n, cap;
} CliTexts;
/* Appends a copy of s; -1 (after printing the error) if out of memory. */
int cli_texts_add(CliTexts *t, const char *s);
/* Appends every line of the file at path, without its line ending (blank
 * lines too unless skip_blank); -1 after printing the error. */
int cli_texts_read(CliTexts *t, const char *path, bool skip_blank);
void cli_texts_free(CliTexts *t);

/* bench --compare's compiler (compare.c): the variants' arguments live
 * here as long as their programs (the JIT keeps pointers into them). */
#define CLI_MAX_VARIANTS 16
typedef struct {
  const DalcArgs *base; /* the command line's own flags */
  FeProgram *p;
  DalcArgs variant[CLI_MAX_VARIANTS];
  int nvariant;
} CliCompareHost;
/* Installs h as the runtime's compiler (rt_exe_set_compiler) for the
 * model p, loaded under base; h, base and p must outlive every program
 * it compiles. */
void cli_compare_install(CliCompareHost *h, const DalcArgs *base, FeProgram *p);

int cmd_info(const DalcArgs *args);
int cmd_run(const DalcArgs *args);
int cmd_emit(const DalcArgs *args);
/* `dalc FILE.dal --stats`: passes, kernels and the memory plan of each entry. */
int cmd_stats(const DalcArgs *args);
/* dalc tune-conv FILE.dal: the conv table (tools/cmd_tune.c). */
int cmd_tune(const DalcArgs *args);
/* `dalc run FILE.dal -- train ...`: the model as a program, driven by the
 * executables' command line (runtime/sched/program.h). */
int cmd_program(const DalcArgs *args);
/* `dalc FILE.dal -o EXE`: the same program as a standalone executable (codegen/aot.h). */
int cmd_build(const DalcArgs *args);
/* `dalc bpe train|encode|decode ...` (cmd_bpe.c): its own arguments, after "bpe". */
int cmd_bpe(int argc, char **argv);
/* `dalc generate --model FILE ...` (cmd_generate.c): compiles the model the
 * file names and runs its `generate` command. */
int cmd_generate(int argc, char **argv);
/* `dalc judge shapes ...` (cmd_judge.c): caption accuracy of shapes images
 * by the runtime's rule-based reader. */
int cmd_judge(int argc, char **argv);
/* `dalc plot LOG.tsv ...` (cmd_plot.c): a training log as a PNG (runtime/draw/plot.h). */
int cmd_plot(int argc, char **argv);

#endif
