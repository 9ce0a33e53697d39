/* fuse_internal.h — what the fusion pass's files share: fuse.c drives the
 * rounds and builds the FusePlan, fuse_rules.c decides each producer,
 * fuse_print.c prints. Not for use outside passes/fuse*.c. */
#ifndef DAL_PASSES_FUSE_INTERNAL_H
#define DAL_PASSES_FUSE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "passes/fuse.h"

/* Consumer 'node' reads a value as its operand number 'arg'. */
typedef struct {
  int node, arg;
} FuseUse;

/* A group while it grows (members join in decreasing id order). */
typedef struct {
  FuseKind kind;
  int last;      /* its highest-id member (the first placed; after a sibling
                    merge, the highest of the merged groups') */
  bool dead;     /* merged into another group */
  int red;       /* the reduction member (the root), or -1 */
  int opq;       /* the opaque member (the root of a FUSE_OPAQUE group), or -1 */
  int pending;   /* a reduction whose row values are members already but which
                    has not joined yet (a two-pass group in the making), or -1 */
  int nrow;      /* members at FUSE_AT_ROW */
  int nshuffle;  /* ELEM members not at the loop's own index */
  int nnonepi;   /* ELEM members an opaque op's epilogue may not contain */
  int *mem, nmem, memcap;       /* members, in the order they joined */
  int nin;       /* its inputs (nodes members read, not members): rule
                    kernel-inputs (see Fuser.inmark); -1 after a sibling
                    merge: not counted */
  int *cross, ncross, crosscap; /* BROADCAST / ONEHOT members whose input is a row value */
} FuseGrowing;

typedef struct {
  int producer, consumer;
  char why[160];
  FuseRule rule;     /* the rule that refused it */
} FuseRefusal;

typedef struct {
  const IrGraph *g;
  FuseOptions opt;
  int n;
  bool oom;

  /* Facts about the graph, fixed for every round. */
  int *use_off;      /* (n + 1) node v's consumers: use[use_off[v] .. use_off[v + 1]) */
  FuseUse *use;      /* in increasing consumer id, then operand */
  bool *must_out;    /* a graph output or an update value */
  bool *freev;       /* computed from constants and indices only */
  int *rowred;       /* the reduction whose row value this is (see fuse_rules.c), or -1 */
  char **ban;        /* per BROADCAST / ONEHOT node: why an earlier round's two-pass
                        crossing there failed (malloc'd), else NULL */

  /* One round's state. */
  int *grp;          /* group of each placed node, -1 before */
  int *inmark;       /* 1 + the group node v was last counted as an input of
                        (FuseGrowing.nin): a fast path, as v may be an input
                        of several groups */
  FuseLevel *lvl;
  bool *ident;       /* evaluated at the loop's own flat index (ELEM or ROW) */
  FuseGrowing *gs;
  int ngs, gscap;
  FuseRefusal *ref;
  int nref, refcap;
  int *seen[2];      /* cycle search: visit stamps per (node, left the group) */
  int stamp;
  int *stack;        /* (2 n) node * 2 + left */
  signed char *joined_by; /* the switch that let each node join, -1: founded its group */
  FuseRule rule;     /* set with every refusal's why: the rule that refused */
  bool merging;      /* fuse_try_join is joining a sibling merge's shared node */
} Fuser;

/* fuse_rules.c */
bool fuse_is_opaque(IrOp op); /* PAT_OPAQUE and not bound (INPUT, PARAM, STATE) */
/* Fills freev and rowred (fuse_rules.c defines them). */
void fuse_graph_facts(Fuser *f);
/* Places node p (every consumer already placed): into its consumers' group
 * if the rules allow it, else into a group of its own, recording a refusal
 * for each consumer. */
void fuse_place(Fuser *f, int p);
/* A new group founded by v (kind, root, level set from v's op). */
int fuse_new_group(Fuser *f, int v);
/* The rules for p joining group gi; joins and returns true, or writes why
 * and sets f->rule to the rule that refused. */
bool fuse_try_join(Fuser *f, int p, int gi, char *why, size_t size);
/* Searches forward from the seeds for a path that leaves group gi (with
 * 'extra' counted as a member) and comes back into it. Returns the node
 * where it comes back, *from the node it comes from, or -1. */
int fuse_find_cycle(Fuser *f, const int *seed, int nseed, int gi, int extra, int *from);

/* fuse_merge.c */
/* p (a view or a free node) is read by several groups: merges them if they
 * may be one kernel and p then joins it. Returns true if p joined; else
 * everything is as before and why says what failed. */
bool fuse_merge_siblings(Fuser *f, int p, char *why, size_t size);

/* fuse.c: growable arrays (on failure they set f->oom and do nothing) */
int fuse_add_group(Fuser *f, int v); /* index of a zeroed group whose last member is v, or -1 */
void fuse_add_member(Fuser *f, int gi, int v);
void fuse_add_cross(Fuser *f, int gi, int v);
void fuse_refuse(Fuser *f, int producer, int consumer, const char *why, FuseRule rule);

#endif
