/* fuse_merge.c — sibling merges for a shared cheap producer.
 *
 * Under the no-duplication rule a node read by two kernels gets a kernel
 * and a buffer of its own. For a view (reshape, permute, slice, broadcast)
 * or a node computed from constants and indices that means materialising
 * something that costs nothing to recompute: a broadcast written out in
 * full. CSE makes this common: it shares one broadcast of a scalar between
 * every consumer of the same shape (the AdamW updates of same-shaped
 * parameters, for one). When the kernels reading such a node are loop
 * groups over the same domain without reductions, they can run as one
 * kernel instead (horizontal, multi-output fusion, like XLA's sibling
 * multi-output fusion): they are merged, and the node joins the merged
 * group by the ordinary rules (fuse_try_join).
 *
 * A merge is refused if a path leaves one of the merged kernels and enters
 * another (through a third kernel): the merged kernel would read its own
 * result (the reachability check, fuse_find_cycle). Merges are tried in
 * placement order (decreasing node id) and their members' levels stay as
 * they were: the domains are equal, so ELEM in one is ELEM in the other.
 * If the merge or the join fails, everything is put back. */
#include <stdio.h>
#include <stdlib.h>

#include "passes/fuse_internal.h"

/* May group G take part in a sibling merge? */
static bool mergeable(const FuseGrowing *G) {
  return !G->dead && G->kind == FUSE_LOOP && G->red < 0 && G->pending < 0 && G->nrow == 0;
}

typedef struct {
  int into;        /* the group the others were merged into */
  FuseGrowing old; /* its state before */
  int *gl, ngl;    /* the groups, gl[0] == into */
} Merge;

static void undo(Fuser *f, Merge *m) {
  FuseGrowing *into = &f->gs[m->into];
  for (int i = m->old.nmem; i < into->nmem; i++) f->grp[into->mem[i]] = -1;
  for (int k = 1; k < m->ngl; k++) {
    FuseGrowing *G = &f->gs[m->gl[k]];
    G->dead = false;
    for (int i = 0; i < G->nmem; i++) f->grp[G->mem[i]] = m->gl[k];
  }
  /* keep the (possibly grown) arrays, restore the rest */
  int *mem = into->mem, memcap = into->memcap;
  *into = m->old;
  into->mem = mem;
  into->memcap = memcap;
}

bool fuse_merge_siblings(Fuser *f, int p, char *why, size_t size) {
  const IrGraph *g = f->g;
  int b = f->use_off[p], e = f->use_off[p + 1];
  Merge m = {0};
  m.gl = malloc((size_t)(e - b + 1) * sizeof *m.gl);
  if (!m.gl) {
    f->oom = true;
    f->rule = FUSE_RULE_NO_DUPLICATION;
    snprintf(why, size, "out of memory");
    return false;
  }
  /* the distinct groups of p's consumers, in order of first use */
  for (int k = b; k < e; k++) {
    int gi = f->grp[f->use[k].node];
    bool seen = false;
    for (int i = 0; i < m.ngl; i++) seen = seen || m.gl[i] == gi;
    if (!seen) m.gl[m.ngl++] = gi;
  }
  if (m.ngl < 2) { /* callers pass a node read by two groups at least */
    f->rule = FUSE_RULE_NO_DUPLICATION;
    snprintf(why, size, "nothing to merge");
    free(m.gl);
    return false;
  }
  const IrShape *dom = &g->node[f->gs[m.gl[0]].last].shape;
  for (int i = 0; i < m.ngl; i++) {
    const FuseGrowing *G = &f->gs[m.gl[i]];
    if (!mergeable(G)) {
      f->rule = FUSE_RULE_NO_DUPLICATION;
      snprintf(why, size, "read by kernels that cannot merge (that of %%%d %s): fusing would duplicate it", G->last,
               G->kind != FUSE_LOOP ? "is not a loop" : "reduces");
      free(m.gl);
      return false;
    }
    if (!ir_shape_eq(&g->node[G->last].shape, dom)) {
      f->rule = FUSE_RULE_NO_DUPLICATION;
      snprintf(why, size, "read by kernels over different shapes (%%%d, %%%d): fusing would duplicate it",
               f->gs[m.gl[0]].last, G->last);
      free(m.gl);
      return false;
    }
  }

  m.into = m.gl[0];
  m.old = f->gs[m.into];
  for (int k = 1; k < m.ngl && !f->oom; k++) {
    FuseGrowing *G = &f->gs[m.gl[k]];
    for (int i = 0; i < G->nmem; i++) {
      fuse_add_member(f, m.into, G->mem[i]);
      f->grp[G->mem[i]] = m.into;
    }
    FuseGrowing *into = &f->gs[m.into];
    into->nshuffle += G->nshuffle;
    into->nnonepi += G->nnonepi;
    if (G->last > into->last) into->last = G->last;
    G->dead = true;
  }
  bool ok = !f->oom;
  if (ok) {
    int from, at = fuse_find_cycle(f, f->gs[m.into].mem, f->gs[m.into].nmem, m.into, -1, &from);
    if (at >= 0) {
      f->rule = FUSE_RULE_NO_CYCLES;
      snprintf(why, size, "the kernels reading it cannot merge: a path leaves them at %%%d and comes back at %%%d (a cycle)",
               from, at);
      ok = false;
    }
  }
  /* Rule kernel-inputs does not count a merged kernel's inputs (nin -1):
   * it bounds chains of joins, and leaves sibling merges as they were. */
  f->gs[m.into].nin = -1;
  if (ok) {
    f->merging = true; /* the join is the merge's: rule siblings allows it */
    ok = fuse_try_join(f, p, m.into, why, size);
    f->merging = false;
  }
  if (!ok) undo(f, &m);
  free(m.gl);
  return ok;
}
