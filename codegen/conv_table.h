/* conv_table.h — the measured convolution table: for each convolution
 * shape it holds, the time of each algorithm that can compute it, as
 * `dalc tune-conv` (tools/cmd_tune.c) measured them on this machine, one
 * conv alone in a one-op plan. Under -fconv=auto, cg_conv_pick
 * (conv_choice.c) takes the fastest measured algorithm the accuracy rules
 * allow (no F(4x4,3x3) in a training step) for a shape the table holds,
 * and its fixed rules for the rest.
 *
 * The table is a text file, by default conv-table.tsv in the compile
 * cache's directory ($DAL_CACHE_DIR, else $XDG_CACHE_HOME/dal, else
 * ~/.cache/dal; `make bench` refreshes it first):
 *
 *   # dal conv table 1
 *   # cpu: Intel(R) Xeon(R) Processor; threads: 2
 *   conv2d  16 64 64 64  64 3 3  1 1  im2col=2.104 winograd=1.201 direct=- winograd4=0.950
 *
 * (op, N C H W of x, O KH KW, stride, pad, then milliseconds per
 * algorithm, '-' where it does not apply). A table measured on another CPU
 * or thread count is ignored (a note says so); a malformed one is an
 * error naming the line. Module prefix: cg_conv_table_. */
#ifndef DAL_CODEGEN_CONV_TABLE_H
#define DAL_CODEGEN_CONV_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* Algorithms timed per row, in CgConvAlgo order (slot 0, AUTO, unused). */
#define CG_CONV_TABLE_NALGO 5

typedef struct {
  IrOp op; /* OP_CONV2D, OP_CONV_TRANSPOSE2D or OP_CONV2D_BACKWARD_WEIGHT */
  int64_t N, C, H, W, O, KH, KW;
  int stride, pad;
  double ms[CG_CONV_TABLE_NALGO]; /* by CgConvAlgo; < 0: not measured */
} CgConvTableRow;

/* Conv node v of g as a row (its op and geometry), times unmeasured. */
void cg_conv_table_key(const IrGraph *g, int v, CgConvTableRow *row);
/* Whether two rows are of the same shape (op and geometry). */
bool cg_conv_table_same(const CgConvTableRow *a, const CgConvTableRow *b);
/* The row of the table in use for conv node v of g, or NULL. The default
 * table is read at the first call (if it exists and is this machine's). */
const CgConvTableRow *cg_conv_table_find(const IrGraph *g, int v);

/* The default table's path into path[size]; -1 if no cache directory can
 * be named. */
int cg_conv_table_path(char *path, size_t size);
/* This machine as a table's "cpu" line names it: /proc/cpuinfo's model
 * name and the thread count the runtime uses. */
void cg_conv_table_machine(char *buf, size_t size);
/* Reads the table at path into *rows (malloc'd) and *n. 1 if it exists and
 * is this machine's, 0 if missing or another machine's (why says which),
 * -1 if malformed (why names the line). */
int cg_conv_table_read(const char *path, CgConvTableRow **rows, int *n, char *why, size_t size);
/* Writes n rows to path with this machine's header, atomically (a
 * temporary file renamed into place). 0, or -1 with why. */
int cg_conv_table_write(const char *path, const CgConvTableRow *rows, int n, char *why, size_t size);
/* Makes rows[0..n) the table in use (copied; n = 0: none, rules only),
 * instead of the default file. Not thread-safe: call before compiling. */
void cg_conv_table_set(const CgConvTableRow *rows, int n);

#endif
