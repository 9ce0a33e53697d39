/* memplan_internal.h — what the planner's files share (memplan.c places,
 * memplan_order.c orders, memplan_graph.c makes the buffers). Not for use
 * outside passes/memplan*.c. */
#ifndef DAL_PASSES_MEMPLAN_INTERNAL_H
#define DAL_PASSES_MEMPLAN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "passes/memplan.h"

/* One storage to place: a buffer, or a chain of buffers merged in place. */
typedef struct {
  int id;          /* the chain's first buffer (its MemPlan.share) */
  int64_t size;    /* rounded to MEM_ALIGN */
  int first, last; /* the union of the members' intervals */
} MemItem;

/* Writes the message 'fmt' into err (if err and size are nonzero); returns
 * -1, so a caller can 'return mem_fail(err, size, ...)'. (memplan.c) */
int mem_fail(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Fills order[0..n) with a permutation of item indices 0..n-1 in ordering
 * o. nstep bounds every item's 'last' (exclusive). Ties go to the lower
 * index (items are in increasing id order). */
void mem_order_items(const MemItem *item, int n, int nstep, MemOrder o, int *order);

#endif
