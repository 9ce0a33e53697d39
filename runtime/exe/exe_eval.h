/* exe_eval.h — `eval`, the held-out measures of issue 9 (internal to
 * runtime/exe_eval*.c):
 *
 *   eval dvae --data SPEC [--count N] [--codes K] [common options]
 *   eval gpt  --data SPEC [--tokenizer TOK.json] [--train-data SPEC [--train-count N]]
 *             [--count N] [--codes K] [common options]
 *   eval classify (--data SPEC | --images IMAGES.npy) [--labels FILE [--repeat R]]
 *             [--count N] [common options]
 *   common:   [--params P.safetensors] [--init PREFIX=FILE]... [--init-partial] [--seed S] [--json]
 *
 * Each prints a table on stdout, or with --json one JSON object (a line).
 * The examples of a dataset are its first N in dataset order (the stored
 * examples of fashion-mnist, folder or a token cache, the first N scenes
 * of a generated stream such as shapes:test; rows of npy arrays in
 * order), B at a time (B the entry's batch); the last batch is padded with
 * repeats and the padding rows are not counted. N defaults to every
 * stored example; a generated stream and npy arrays need --count.
 * Module prefix: rt_eval_.
 */
#ifndef DAL_RT_EXE_EVAL_H
#define DAL_RT_EXE_EVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/checkpoint.h"
#include "runtime/sched/program.h"

/* ---- options every kind takes (exe_eval.c) ---- */
typedef struct {
  const char *params;
  RtInitFrom init;
  uint64_t seed;
  bool json;
} RtEvalCommon;

/* Parses a kind's command line: the common options into c, the kind's
 * own from opts[0..n); an unknown option is an error that names the
 * command ('what', "eval dvae") and lists its 'options' and the common
 * ones. */
int rt_eval_parse(int argc, char **argv, RtEvalCommon *c, const RtExeOpt *opts, int n, const char *what,
                  const char *options, RtErr *e);
/* The program's parameters as the options say (a note on stderr when
 * neither --params nor --init is given: the model is untrained). */
int rt_eval_state(RtProgram *p, const RtEvalCommon *c, RtErr *e);
/* "--params P", "--init vae=F", "the initialisers (seed S)" into buf. */
const char *rt_eval_params_str(const RtEvalCommon *c, char *buf, size_t size);

/* The entry called 'name' (-1 with a message naming 'what' needs it). */
int rt_eval_entry(const RtProgram *p, const char *name, const char *what, RtErr *e);
/* Runs entry 'entry' on 'in'; *out (noutput tensors, freed by the caller
 * with rt_eval_outputs_free) and checks that output 0 has the signature's
 * dtype and element count. */
int rt_eval_run(RtProgram *p, int entry, RtTensor *const *in, RtTensor ***out, uint64_t seed, RtErr *e);
void rt_eval_outputs_free(const RtProgram *p, int entry, RtTensor **out);

/* ---- the examples of a dataset, a batch at a time (exe_eval_data.c) ---- */
typedef struct {
  RtDataset *d;
  const char *spec;
  bool by_step;     /* npy: whole batches, rows (s B + j) mod rows */
  int64_t count;    /* examples to visit */
  int64_t done;     /* examples visited so far */
  int64_t B;
  uint64_t *k;      /* (B) the examples of the batch */
} RtEvalStream;

/* Opens 'spec' for entry 'en'; count 0: every stored example (an error
 * naming --count for a dataset without an end, or without a known size).
 * 'count_flag' names the flag in messages ("--count"). */
int rt_eval_stream_open(RtEvalStream *s, const char *spec, const RtEntrySpec *en, uint64_t seed, uint64_t count,
                        const char *count_flag, RtErr *e);
/* Fills 'inputs' with the next batch: the number of its rows that count
 * (1 .. B), 0 when every example has been visited, -1 on error. */
int64_t rt_eval_stream_next(RtEvalStream *s, RtTensor *const *inputs, RtErr *e);
void rt_eval_stream_close(RtEvalStream *s);
/* Allocates inputs[i] for every input of en (NULL-terminated array of
 * en->ninput + 1); NULL with a message on failure. */
RtTensor **rt_eval_inputs_new(const RtEntrySpec *en, RtErr *e);
void rt_eval_inputs_free(const RtEntrySpec *en, RtTensor **in);

/* ---- the measures themselves (exe_eval_metrics.c) ---- */

/* 10 log10(1 / mse): PSNR in dB of images in [0, 1]; +inf when mse is 0. */
double rt_eval_psnr(double mse);
/* The entropy in nats of the distribution counts[0 .. n) / total (0 for an
 * empty histogram), and in *used how many counts are non-zero. */
double rt_eval_entropy(const int64_t *counts, int64_t n, int64_t *used);
/* log sum exp(row[lo .. hi)), max-shifted, in double (lo < hi). */
double rt_eval_lse(const float *row, int64_t lo, int64_t hi);
/* log(exp(a) + exp(b)): two slices' log-sum-exps joined. */
double rt_eval_lse2(double a, double b);
/* -log softmax(row[lo .. hi))[t - lo] for lo <= t < hi: the cross-entropy
 * of target t under the logits of columns lo .. hi-1, in nats. */
double rt_eval_ce(const float *row, int64_t lo, int64_t hi, int64_t t);
/* The first index of the largest of x[0 .. n). */
int64_t rt_eval_argmax(const float *x, int64_t n);

/* ---- output: a table or one JSON object (exe_eval_report.c) ---- */
typedef struct RtEvalReport RtEvalReport;
/* A report titled 'title' (the table's first line). */
RtEvalReport *rt_eval_report_new(const char *kind, const char *title);
/* A number: JSON key, table label (NULL: in the JSON only), value
 * (non-finite: JSON null, the table "inf"/"nan"), printf format of the
 * table's value and its unit ("" for none). The same NULL label rule for
 * the int and string rows. */
void rt_eval_report_num(RtEvalReport *r, const char *key, const char *label, double v, const char *fmt,
                        const char *unit);
void rt_eval_report_int(RtEvalReport *r, const char *key, const char *label, int64_t v);
void rt_eval_report_str(RtEvalReport *r, const char *key, const char *label, const char *v);
/* A JSON array of numbers (not shown in the table; add rows for those). */
void rt_eval_report_array(RtEvalReport *r, const char *key, const double *v, int64_t n);
/* A line of the table only (not in the JSON). */
void rt_eval_report_note(RtEvalReport *r, const char *text);
/* Prints it (JSON or table) to f and frees it. */
int rt_eval_report_print(RtEvalReport *r, bool json, FILE *f, RtErr *e);

/* ---- the kinds (exe_eval_dvae.c, exe_eval_gpt.c, exe_eval_classify.c) ---- */
int rt_eval_dvae(RtProgram *p, int argc, char **argv, RtErr *e);
int rt_eval_gpt(RtProgram *p, int argc, char **argv, RtErr *e);
int rt_eval_classify(RtProgram *p, int argc, char **argv, RtErr *e);

#endif
