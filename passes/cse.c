/* cse.c — common-subexpression elimination by hash-consing.
 *
 * Nodes are copied in id order; before a node is copied, a hash table over
 * the nodes already in the new graph is asked for one with the same op,
 * inputs and attributes, and if there is one the node becomes it. Inputs are
 * compared after mapping, so chains of duplicates collapse in one sweep.
 *
 * Never merged: INPUT, PARAM and STATE (each is its own tensor, named).
 * GUMBEL nodes merge only with the same salt and shape (Philox(seed, salt,
 * step, index) then gives the very same noise). ADD and MUL match with their
 * inputs in either order: IEEE addition and multiplication are commutative
 * bit for bit. Attributes are compared field by field, floats by their bits
 * (so 0.0 and -0.0 stay apart, and a NaN constant matches itself).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "passes/rewrite.h"
#include "passes/simplify.h"

typedef struct {
  int *slot;      /* (cap): dst node id, or -1 for empty */
  uint64_t *hash; /* (cap): the hash of the slot's node (so growing rehashes nothing) */
  int cap;        /* a power of two, at least twice the number of entries */
  int count;
} CseTable;

/* One 64-bit word into h (a multiply-xorshift step; node_hash finishes
 * with a full avalanche, so the table's low bits see every input bit).
 * The table holds at most one node of each kind, so which hash is used
 * changes only the speed, never the result. */
static uint64_t mix_int(uint64_t h, int64_t v) {
  h = (h ^ (uint64_t)v) * 0x9e3779b97f4a7c15u;
  return h ^ (h >> 29);
}

static uint64_t mix_double(uint64_t h, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  return mix_int(h, (int64_t)bits);
}

/* splitmix64's finaliser */
static uint64_t avalanche(uint64_t h) {
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
  return h ^ (h >> 31);
}

static bool commutes(IrOp op) { return op == OP_ADD || op == OP_MUL; }

/* The node's inputs in the order used for matching (sorted for ADD and MUL). */
static void key_inputs(const IrNode *n, int *in) {
  for (int k = 0; k < n->nin; k++) in[k] = n->in[k];
  if (commutes(n->op) && in[0] > in[1]) {
    int t = in[0];
    in[0] = in[1];
    in[1] = t;
  }
}

static uint64_t attr_hash(uint64_t h, const IrAttr *a) {
  h = mix_int(h, a->shape.rank);
  for (int i = 0; i < a->shape.rank && i < IR_MAX_RANK; i++) h = mix_int(h, a->shape.d[i]);
  h = mix_int(h, a->dtype);
  h = mix_double(h, a->value);
  h = mix_int(h, a->axis);
  h = mix_int(h, a->axes);
  h = mix_int(h, a->keepdim);
  for (int i = 0; i < IR_MAX_RANK; i++) {
    h = mix_int(h, a->perm[i]);
    h = mix_int(h, a->start[i]);
    h = mix_int(h, a->stop[i]);
  }
  h = mix_int(h, a->depth);
  h = mix_int(h, a->stride);
  h = mix_int(h, a->pad);
  h = mix_int(h, a->groups);
  h = mix_double(h, a->eps);
  h = mix_int(h, a->trans_a);
  h = mix_int(h, a->trans_b);
  h = mix_int(h, a->salt);
  h = mix_int(h, a->init);
  h = mix_double(h, a->init_a);
  return mix_double(h, a->init_b);
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static bool attr_eq(const IrAttr *a, const IrAttr *b) {
  if (a->shape.rank != b->shape.rank) return false;
  for (int i = 0; i < a->shape.rank && i < IR_MAX_RANK; i++)
    if (a->shape.d[i] != b->shape.d[i]) return false;
  for (int i = 0; i < IR_MAX_RANK; i++)
    if (a->perm[i] != b->perm[i] || a->start[i] != b->start[i] || a->stop[i] != b->stop[i]) return false;
  return a->dtype == b->dtype && same_bits(a->value, b->value) && a->axis == b->axis && a->axes == b->axes &&
         a->keepdim == b->keepdim && a->depth == b->depth && a->stride == b->stride && a->pad == b->pad &&
         a->groups == b->groups && same_bits(a->eps, b->eps) && a->trans_a == b->trans_a &&
         a->trans_b == b->trans_b && a->salt == b->salt && a->init == b->init && same_bits(a->init_a, b->init_a) &&
         same_bits(a->init_b, b->init_b);
}

static uint64_t node_hash(const IrNode *n) {
  int in[IR_MAX_IN];
  key_inputs(n, in);
  uint64_t h = mix_int(1469598103934665603u, n->op);
  h = mix_int(h, n->nin);
  for (int k = 0; k < n->nin; k++) h = mix_int(h, in[k]);
  return avalanche(attr_hash(h, &n->attr));
}

static bool node_eq(const IrNode *a, const IrNode *b) {
  if (a->op != b->op || a->nin != b->nin || a->dtype != b->dtype || !ir_shape_eq(&a->shape, &b->shape))
    return false;
  int ia[IR_MAX_IN], ib[IR_MAX_IN];
  key_inputs(a, ia);
  key_inputs(b, ib);
  for (int k = 0; k < a->nin; k++)
    if (ia[k] != ib[k]) return false;
  return attr_eq(&a->attr, &b->attr);
}

static bool mergeable(IrOp op) { return op != OP_INPUT && op != OP_PARAM && op != OP_STATE; }

/* Doubles the table and re-inserts every entry; false if out of memory. */
static bool grow(CseTable *t) {
  int cap = t->cap ? 2 * t->cap : 256;
  int *slot = malloc((size_t)cap * sizeof *slot);
  uint64_t *hash = malloc((size_t)cap * sizeof *hash);
  if (!slot || !hash) {
    free(slot);
    free(hash);
    return false;
  }
  for (int i = 0; i < cap; i++) slot[i] = -1;
  for (int i = 0; i < t->cap; i++) {
    if (t->slot[i] < 0) continue;
    uint64_t j = t->hash[i] & (uint64_t)(cap - 1);
    while (slot[j] >= 0) j = (j + 1) & (uint64_t)(cap - 1);
    slot[j] = t->slot[i];
    hash[j] = t->hash[i];
  }
  free(t->slot);
  free(t->hash);
  t->slot = slot;
  t->hash = hash;
  t->cap = cap;
  return true;
}

/* The new graph's id for n: an equal node already there, or a fresh copy
 * (which is then entered in the table). */
static int visit(PassRewrite *rw, const IrNode *n, void *ctx) {
  CseTable *t = ctx;
  if (!mergeable(n->op)) return pass_rw_copy(rw, n);
  if (2 * (t->count + 1) > t->cap && !grow(t)) {
    snprintf(rw->dst->error, sizeof rw->dst->error, "out of memory");
    return -1;
  }
  uint64_t mask = (uint64_t)(t->cap - 1), h = node_hash(n), j = h & mask;
  for (; t->slot[j] >= 0; j = (j + 1) & mask)
    if (t->hash[j] == h && node_eq(pass_rw_node(rw, t->slot[j]), n)) return t->slot[j];
  int id = pass_rw_copy(rw, n);
  if (id < 0) return -1;
  t->slot[j] = id;
  t->hash[j] = h;
  t->count++;
  return id;
}

int pass_cse(IrGraph *g) {
  CseTable t = {0};
  int rc = pass_rewrite(g, "cse", visit, &t);
  free(t.slot);
  free(t.hash);
  return rc;
}
