/* memplan.h — static memory planning: one arena for a program's
 * intermediates.
 *
 * Input: buffers with a byte size and a [first, last] step interval (the
 * step that writes the buffer and the last step that reads it), some of
 * them pinned (inputs, outputs, parameters, optimizer state, constants: they
 * live outside the arena), plus in-place candidates. Output: a 64-byte
 * aligned offset for every unpinned buffer such that two buffers live at a
 * common step never overlap, the arena size, and the numbers to judge it by.
 *
 * The method (notes/compiler-design.md B7): in-place candidates that hold
 * merge into one buffer (ggml / TFLite); then every remaining buffer is
 * placed by best fit into the gaps left by the already placed buffers it
 * overlaps in time (TFLite's SimpleMemoryArena), for several orderings of
 * the buffers; the smallest arena wins (Glow's allocateAll), and the search
 * stops as soon as an arena equals the lower bound. Ties everywhere are
 * broken by buffer id, so a plan depends only on its input.
 *
 * Sizes are rounded up to 64 bytes before anything else, so the lower bound
 * is one for every 64-aligned placement.
 *
 * In-place sharing means a kernel's output and one of its inputs are the
 * same memory: the kernel must read input element i before it writes
 * output element i, and its code must not assume the two do not alias
 * (codegen/lower_inplace.c gives such a kernel one argument for both and
 * drops the output's buffer before mem_plan_rt runs). Independent of LLVM.
 * Module prefix: mem_.
 */
#ifndef DAL_PASSES_MEMPLAN_H
#define DAL_PASSES_MEMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "passes/fuse.h"
#include "runtime/sched/plan.h"

#define MEM_ALIGN 64

typedef struct {
  int64_t bytes;   /* >= 0; rounded up to MEM_ALIGN for placement */
  int first, last; /* 0 <= first <= last: written at step 'first', last read at 'last' */
  bool pinned;     /* not in the arena (input, output, parameter, state, constant) */
} MemBuffer;

/* Buffer 'out' may take the storage of buffer 'in'. The planner accepts the
 * pair only if it is safe as far as lifetimes go: 'in' is written before
 * and last read at the step that writes 'out' (in.first < out.first ==
 * in.last), both have the same byte
 * size, neither is pinned, 'in' was not already taken by another output and
 * 'out' did not already take another input. Whether the step's arithmetic
 * allows it (elementwise, element i read before element i is written) is
 * the caller's judgement. Candidates are tried in the order given. */
typedef struct {
  int out, in;
} MemInPlace;

/* Buffer orderings for placement; the order of the enum is the order they
 * are tried in (and the tie-break between equal arenas). */
typedef enum {
  MEM_ORDER_SIZE,      /* largest first (TFLite), then earliest write */
  MEM_ORDER_LENGTH,    /* longest interval first, then largest */
  MEM_ORDER_CONFLICTS, /* most time-overlapping buffers first (TVM USMP), then largest */
  MEM_ORDER_LIVE,      /* repeatedly: the largest unplaced buffer live at the step
                          with the most unplaced live bytes (Glow) */
  MEM_ORDER_COUNT
} MemOrder;

typedef struct {
  int nbuf;
  int64_t *offset;         /* [nbuf] arena offset, a multiple of MEM_ALIGN; -1 if pinned */
  int *share;              /* [nbuf] the buffer whose storage it uses: its own id unless
                              merged in place (then the first buffer of its chain) */
  int nmerged;             /* in-place candidates accepted */
  int narena;              /* distinct storages in the arena (after merging) */
  int npinned;
  int64_t arena_bytes;     /* the arena: a multiple of MEM_ALIGN */
  int64_t lower_bound;     /* max over steps of the bytes live there (after merging):
                              no placement can use less */
  int64_t no_reuse_bytes;  /* sum of all unpinned buffers (rounded, before merging):
                              the arena without any planning */
  MemOrder order;          /* the ordering that gave arena_bytes */
  int64_t order_bytes[MEM_ORDER_COUNT]; /* arena of each ordering tried; 0 = not tried
                                           (the bound was reached before it) */
} MemPlan;

/* Plans buffers buf[0..nbuf) with in-place candidates inplace[0..ninplace)
 * (may be NULL when ninplace is 0) into *plan (free with mem_plan_free).
 * Returns 0, or -1 with a message in err (which may be NULL) on a negative
 * size, an empty or negative interval, or a candidate naming a buffer that
 * does not exist; *plan is then left empty. Runs in O(n^2 log n) for n
 * buffers. */
int mem_plan(const MemBuffer *buf, int nbuf, const MemInPlace *inplace, int ninplace, MemPlan *plan,
             char *err, size_t errsize);
void mem_plan_free(MemPlan *plan);

/* The in-place merges of mem_plan alone, without placing anything: writes
 * share[0..nbuf) as MemPlan.share and returns the number of candidates
 * accepted, or -1 with a message in err on the inputs mem_plan rejects.
 * O(nbuf + ninplace); for callers that need only the lifetimes (the lower
 * bound), such as the rematerialisation pass, which plans many trial graphs. */
int mem_plan_share(const MemBuffer *buf, int nbuf, const MemInPlace *inplace, int ninplace, int *share, char *err,
                   size_t errsize);

/* "size", "length", "conflicts", "live". */
const char *mem_order_name(MemOrder o);

/* The statistics dalc --stats prints, one per line: the arena, the lower
 * bound, the efficiency (lower bound / arena), the no-reuse sum, and the
 * counts of buffers, merged and pinned ones. */
void mem_print_stats(const MemPlan *plan, FILE *out);

/* ---- buffers of a graph ---- */

/* The buffers of graph g under fusion plan fp: one buffer per group output
 * (FusePlan.out) and per leaf (INPUT, PARAM, STATE, CONST). Kernel groups
 * (not FUSE_LEAF), in the plan's order, are steps 0..nstep-1: a group's
 * outputs are written at its step and read at the steps of the groups that
 * consume them. Graph outputs and update values are read at step nstep,
 * after the last kernel (where outputs are returned and state updates
 * copied). Leaves, graph outputs, parameters and state are pinned; update
 * values are not (they are arena buffers copied into the state at the end).
 *
 * fp may be NULL: then every node other than a leaf is its own step (no
 * fusion). order, if not NULL, is the execution order to plan for: a
 * permutation of the group indices 0..fp->ngroup-1 (of the node ids
 * 0..g->n-1 when fp is NULL) in which every group comes after the groups
 * whose outputs it reads; NULL means the plan's own order.
 *
 * In-place candidates: for a FUSE_LOOP group (without fusion: an
 * elementwise node), each pair (output o, input x) of the same byte size
 * and shape where every member that depends on x is elementwise and o is
 * among them, so element i of o reads only element i of x. */
typedef struct {
  int nbuf;
  MemBuffer *buf;      /* [nbuf] */
  int *node;           /* [nbuf] the node whose value the buffer holds */
  int *buf_of_node;    /* [g->n] the node's buffer, -1 if it has none (fused away) */
  int nstep;           /* kernel steps */
  int *step_group;     /* [nstep] the fusion group of each step (the node without fusion) */
  int ninplace;
  MemInPlace *inplace; /* [ninplace] */
} MemGraphBuffers;

/* Fills *out (free with mem_graph_buffers_free). Returns 0, or -1 with a
 * message in err if fp or order is inconsistent with g (a group reads a
 * node that no earlier group outputs, or order is not a permutation). */
int mem_graph_buffers(const IrGraph *g, const FusePlan *fp, const int *order, MemGraphBuffers *out, char *err,
                      size_t errsize);
void mem_graph_buffers_free(MemGraphBuffers *b);

/* ---- buffers of a runtime plan ---- */

/* Places the RT_BUF_ARENA buffers among buf[0..nbuf) used by steps
 * step[0..nstep) (runtime/sched/plan.h), as codegen's final pass: each is live
 * from the first step that names it to the last one (a buffer no step
 * names is live at step 0 only). Other buffers are pinned. Writes
 * buf[i].offset for the arena buffers and *arena_bytes; leaves everything
 * else alone. inplace holds pairs of buffer ids (see MemInPlace; the caller
 * vouches for the arithmetic). If stats is not NULL it receives the plan
 * (free with mem_plan_free), e.g. for mem_print_stats. Returns 0, or -1
 * with a message (a step naming a buffer that does not exist, or as
 * mem_plan). */
int mem_plan_rt(RtBuffer *buf, int nbuf, const RtStep *step, int nstep, const MemInPlace *inplace, int ninplace,
                int64_t *arena_bytes, MemPlan *stats, char *err, size_t errsize);

#endif
