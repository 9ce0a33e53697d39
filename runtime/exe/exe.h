/* exe.h — helpers shared by the executables' subcommands (exe_*.c,
 * train_args.c) and by dalc's (tools/cmd_*.c): flag parsing with the same
 * messages for the same mistakes, and the summary of an output. */
#ifndef DAL_RT_EXE_H
#define DAL_RT_EXE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/io/checkpoint.h"
#include "runtime/sched/plan.h"
#include "runtime/sched/program.h"

/* If argv[*i] is 'flag' ("--steps 5" or "--steps=5"): sets *val to its
 * value (advancing *i past a separate value) and returns 1; returns -1 with
 * a message if the value is missing, 0 if argv[*i] is another flag. */
int rt_exe_flag(int argc, char **argv, int *i, const char *flag, const char **val, RtErr *e);
/* A table of a command's plain options: each names a flag and exactly one
 * place its value goes (a string, a non-negative integer, or a switch that
 * takes no value). An integer must lie in lo .. hi when hi is nonzero. */
typedef struct {
  const char *flag;
  const char **str;
  uint64_t *num;
  bool *on;
  uint64_t lo, hi;
} RtExeOpt;

/* Matches argv[*i] against opts[0..n): 1 if one matched (its value stored,
 * *i advanced past a separate value), 0 if none did, -1 with a message on
 * a missing or bad value. */
int rt_exe_opts(int argc, char **argv, int *i, const RtExeOpt *opts, int n, RtErr *e);

/* Whole-string numbers, with errors that name the flag. */
int rt_exe_u64(const char *flag, const char *s, uint64_t *out, RtErr *e);
int rt_exe_f64(const char *flag, const char *s, double *out, RtErr *e);
/* rt_exe_u64, and the value must lie in lo .. hi (a message naming the
 * range if not; hi = UINT64_MAX: "at least lo"). */
int rt_exe_u64_in(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out, RtErr *e);
/* "name: f32[2, 3]  min -1  max 2  mean 0.5" (a single value as
 * "name: f32 = 0.5", an empty tensor as "name: f32[0, 3]  (empty)") and a
 * newline, to out. (exe_summary.c) */
void rt_exe_summarise(FILE *out, const char *name, const RtTensor *t);
/* A number given for a one-element input ("--in tau=0.5"; an i32 input
 * takes it rounded); NULL if 'text' is not a number or s has more than one
 * element. */
RtTensor *rt_exe_number_tensor(const RtArgSpec *s, const char *text, RtErr *e);
/* "x: f32[4, 3, 16, 16]" / "tau: f32" into buf. */
const char *rt_exe_arg_str(const RtArgSpec *a, char *buf, size_t size);
/* The training entry called fn (NULL: the only one, or if there are
 * several the one called "loss"); -1 with a message. */
int rt_exe_train_entry(const RtProgram *p, const char *fn, RtErr *e);

/* VmHWM of /proc/self/status in KiB (the process's peak resident memory),
 * or -1 where there is none. */
long long rt_exe_peak_rss_kib(void);
/* --init PREFIX=FILE (repeatable) and --init-partial (checkpoint.h) into
 * l: 1 if argv[*i] was one of them, 0 if not, -1 on a bad value. */
int rt_exe_init_flag(int argc, char **argv, int *i, RtInitFrom *l, RtErr *e);
/* A command's starting state: every parameter from 'params' (a
 * safetensors file, rt_checkpoint_load_params) if given, else from the
 * initialisers under 'seed'; then the --init files of l (NULL: none) on
 * top. What train, run and tokenize do with --params/--init/--seed. */
int rt_exe_state_start(RtProgram *p, const char *params, const RtInitFrom *l, uint64_t seed, RtErr *e);

/* An entry's plan in figures, for `bench --compare`. */
typedef struct {
  int kernels;         /* fused kernels: the groups that run code */
  int steps;           /* plan steps that run code: kernel calls and GEMMs */
  int64_t arena_bytes; /* the planned arena of intermediates */
  int64_t bytes_moved; /* an estimate of the bytes read and written per run
                          (rt_exe_plan_figures) */
} RtExePlanFigures;

/* steps, arena_bytes and bytes_moved of a plan (kernels is the caller's).
 * Bytes moved: a GEMM reads A and B and writes C (reads it too when beta
 * is not 0), each at its m, n, k and batch; a copy reads and writes its
 * bytes; a kernel step reads or writes each buffer it names in full, once
 * per kernel function and buffer (the steps of a chunked kernel share its
 * buffers; a window of a buffer counts as the whole buffer, once). An
 * estimate: what the plan's steps touch, not what the caches see. */
void rt_exe_plan_figures(const RtPlan *pl, RtExePlanFigures *f);

/* A compiler that hosts the program (`dalc run FILE.dal -- ...`) can build
 * it again under other compiler flags, which `bench --compare` needs. An
 * AOT-built executable has none: it cannot recompile itself. */
typedef struct {
  /* The program compiled with the host's own flags followed by 'flags'
   * (blank-separated words, e.g. "-fno-fuse --fuse-rule=-epilogue"), and
   * the figures of its entry called 'entry' in *f. NULL with e->msg on a
   * bad flag or a failed compile. The caller frees it (rt_program_free). */
  RtProgram *(*compile)(void *ctx, const char *flags, const char *entry, RtExePlanFigures *f, RtErr *e);
  void *ctx;
} RtExeCompiler;
/* Installs the host's compiler (NULL: none), for this process. */
void rt_exe_set_compiler(const RtExeCompiler *c);
const RtExeCompiler *rt_exe_compiler(void);

/* Before any work: every file a command's flags name for writing
 * (--checkpoint, --log, --out, --save-state, --logits-out, --out-npy, ...)
 * can be written (fileio.h rt_check_writable). argv[0] is the command; the
 * flags are not otherwise checked. rt_main calls it, and dalc before it
 * compiles the model. */
int rt_exe_check_outputs(int argc, char **argv, RtErr *e);

/* The usage of the executables' command 'cmd' (its lines of `help`, the
 * datasets if it takes one, the options of every command) to f, with prog
 * as the program's name; false if there is no such command. Every command
 * prints it for --help or -h. */
bool rt_exe_usage(FILE *f, const char *prog, const char *cmd);

int rt_exe_run(RtProgram *p, int argc, char **argv, RtErr *e);  /* `run` */
int rt_exe_data(RtProgram *p, int argc, char **argv, RtErr *e); /* `data` */
int rt_exe_bench(RtProgram *p, int argc, char **argv, RtErr *e); /* `bench` (exe_bench.c) */
int rt_exe_sample(RtProgram *p, int argc, char **argv, RtErr *e); /* `sample` (exe_sample.c) */
int rt_exe_generate(RtProgram *p, int argc, char **argv, RtErr *e); /* `generate` (exe_generate.c) */
int rt_exe_tokenize(RtProgram *p, int argc, char **argv, RtErr *e); /* `tokenize` (exe_tokenize.c) */
int rt_exe_eval(RtProgram *p, int argc, char **argv, RtErr *e); /* `eval` (exe_eval*.c) */

#endif
