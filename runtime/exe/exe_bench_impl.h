/* exe_bench_impl.h — what `bench` (exe_bench.c) and `bench --compare`
 * (exe_bench_compare.c) share: the parsed options and one timed step. Not
 * for use outside runtime/exe/exe_bench*.c. */
#ifndef DAL_RT_EXE_BENCH_IMPL_H
#define DAL_RT_EXE_BENCH_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"

#define RT_BENCH_MAX_SETS 32
#define RT_BENCH_MAX_VARIANTS 16

typedef struct {
  char name[128];
  double value;
} RtBenchSet;

typedef struct {
  const char *fn, *data, *tokenizer;
  uint64_t steps, warmup, seed;
  double max_seconds; /* the budget of the whole run; 0: none */
  bool json;
  RtBenchSet set[RT_BENCH_MAX_SETS];
  int nset;
  int ncompare;       /* --compare: the variants' compiler flags, one word list each */
  char **compare;
} RtBenchArgs;

/* The entry to time: --fn, else the training entry `train` would use. */
int rt_bench_pick_entry(const RtProgram *p, const char *fn, RtErr *e);
/* Allocates the inputs and fills the constant ones (opt.lr, --set); opens
 * the dataset for the others. */
int rt_bench_prepare_inputs(RtProgram *p, const RtEntrySpec *en, const RtBenchArgs *a, RtTensor **in,
                            RtDataset **data, RtErr *e);
/* Runs step s: fills its batch, runs the entry (timed: *ms wall, *cpu CPU
 * time), frees the outputs, checks the loss of a training entry. */
int rt_bench_one_step(RtProgram *p, int entry, const RtBenchArgs *a, RtTensor **in, RtDataset *data, RtTensor **out,
                      uint64_t s, double *ms, double *cpu, double *loss, RtErr *e);
double rt_bench_now_ms(void); /* CLOCK_MONOTONIC */
int rt_bench_cmp_double(const void *a, const void *b);
/* The fields every bench JSON report starts with: bench (its kind), model,
 * config, entry, train, batch, warmup. o is a cJSON object. */
struct cJSON;
void rt_bench_json_head(struct cJSON *o, const char *kind, const RtProgram *p, const RtEntrySpec *en, int64_t batch,
                        int warmup);

/* bench --compare (exe_bench_compare.c): the entry under each variant,
 * steps interleaved, one table. */
int rt_bench_compare(RtProgram *host, const RtBenchArgs *a, RtErr *e);

#endif
