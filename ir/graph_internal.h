/* graph_internal.h — helpers shared by the files of ir/ (graph.c, builder.c,
 * print.c, dot.c); not part of the IR's public interface (that is ir.h). */
#ifndef DAL_IR_GRAPH_INTERNAL_H
#define DAL_IR_GRAPH_INTERNAL_H

#include "ir/ir.h"

/* Drops nodes n.. (their names, and their entries in g->input / g->param),
 * undoing a composite builder that failed part-way. Leaves g->error alone. */
void ir_graph_truncate(IrGraph *g, int n);

/* True if 'id' names a node of g. */
static inline bool ir_graph_has(const IrGraph *g, int id) { return id >= 0 && id < g->n; }

/* The attributes node n's op reads, as text ("stride=2 pad=1"); "" for an op
 * with none (the result type already shows RESHAPE/BROADCAST/leaf shapes).
 * Returns buf. Defined in print.c, used by the text and Graphviz dumps. */
char *ir_attr_str(const IrNode *n, char *buf, size_t size);

#endif
