/* numerics.h — non-finite values (NaN, +-Inf): finding them, and the
 * process-wide switches that say what to do about them.
 *
 *   --check-numerics   every plan step (runtime/sched/rt_sched.h) and every
 *                      node of the reference executor checks the f32 values
 *                      it wrote; the first non-finite one stops the run with
 *                      an error naming the op, its .dal line, the buffer and
 *                      the element (rt_numerics_fail). Off: one branch per
 *                      step.
 *   --allow-nonfinite  a loaded parameter file (any safetensors file:
 *                      --params, --init, --resume, a model file) or an
 *                      entry input (--in) holding non-finite values is
 *                      accepted; without it, it is an error naming the
 *                      tensor and its first bad element
 *                      (rt_numerics_check_loaded). The .npy reader itself
 *                      accepts anything: its callers decide.
 *
 * Tensors written to files with non-finite values (outputs, gradients,
 * parameters, checkpoints) get one warning each on stderr
 * (rt_numerics_warn_written), whatever the switches.
 *
 * Module prefix: rt_.
 */
#ifndef DAL_RT_NUMERICS_H
#define DAL_RT_NUMERICS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/core/rt_error.h"
#include "runtime/core/tensor.h"

/* How many of x[0 .. n) are not finite; *first (if not NULL) gets the
 * first one's index, or -1. */
int64_t rt_nonfinite_count(const float *x, int64_t n, int64_t *first);

/* Whether x[0 .. n) are all finite (stops at the first that is not). */
bool rt_all_finite(const float *x, int64_t n, int64_t *first);

void rt_numerics_set_check(bool on);
bool rt_numerics_check(void);
void rt_numerics_set_allow(bool on);
bool rt_numerics_allow(void);

/* Takes --check-numerics and --allow-nonfinite out of argv[first ..
 * *argc) (setting the switches), moving the rest down; stops at a "--"
 * (what follows it belongs to another command line). */
void rt_numerics_take_flags(int *argc, char **argv, int first);

/* The error of a non-finite value that a step made: op 'op' (a plan
 * step's or a node's name; 'detail', if not NULL, said after it in
 * parentheses) of entry 'entry', from .dal source 'src' ("file:line:col",
 * NULL if unknown; 'calls': the user-function calls it was reached
 * through, innermost first, or NULL; 'backward' when the op belongs to the
 * gradient of the op there), wrote value v at flat element 'index' of 'buf' (e.g.
 * "intermediate b12") of shape (rank, dim). Always returns -1. */
int rt_numerics_fail(RtErr *e, const char *src, const char *calls, bool backward, const char *op, const char *detail,
                     const char *entry, const char *buf, int rank, const int64_t *dim, int64_t index, float v);

/* 'what' (e.g. "x.safetensors: tensor 'enc.w'", "input 'x'") loaded as t:
 * an error naming it, the count and the first non-finite element, unless
 * t is i32, all finite, or --allow-nonfinite is on. */
int rt_numerics_check_loaded(const char *what, const RtTensor *t, RtErr *e);

/* rt_numerics_check_loaded for entry input 'name' read from 'path' (--in):
 * "input 'x' (x.npy) holds ...". */
int rt_numerics_check_input(const char *name, const char *path, const RtTensor *t, RtErr *e);

/* A warning on stderr if f32 tensor 'name' (NULL: the file's one tensor)
 * written to 'file' holds non-finite values (how many, and the first),
 * once per process for each file and name (a checkpoint rewritten every K
 * steps warns once); returns their count (0 when not warned). */
int64_t rt_numerics_warn_written(const char *file, const char *name, const RtTensor *t);

/* "[i, j, k]": flat element 'index' of a tensor of shape (rank, dim). */
char *rt_index_str(int rank, const int64_t *dim, int64_t index, char *buf, size_t size);

#endif
