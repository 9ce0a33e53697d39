/* emit_index.c — flat indices as mixed-radix digits (see Idx in emit.h).
 * Index arithmetic is i64 with no-signed-wrap flags: indices are never
 * negative and never overflow, which lets the vectoriser see consecutive
 * accesses. */
#include "codegen/llvm/emit.h"

Idx em_idx1(LLVMValueRef v, int64_t ext) {
  Idx I = {.n = 1};
  I.v[0] = v;
  I.ext[0] = ext;
  return I;
}

void em_idx_push(Idx *I, LLVMValueRef v, int64_t ext) {
  I->v[I->n] = v;
  I->ext[I->n] = ext;
  I->n++;
}

Idx em_idx_dims(LLVMValueRef *d, const IrShape *shape) {
  Idx I = {.n = 0};
  for (int k = 0; k < shape->rank; k++) em_idx_push(&I, d[k], shape->d[k]);
  return I;
}

LLVMValueRef em_idx_flat(Emit *E, const Idx *I) {
  LLVMValueRef acc = NULL;
  for (int j = 0; j < I->n; j++) {
    if (I->ext[j] == 1 && acc) { /* a size-1 digit is 0: acc * 1 + 0 */
      continue;
    }
    if (!acc) acc = I->v[j];
    else acc = LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, acc, em_i64(E, I->ext[j]), ""), I->v[j], "");
  }
  return acc ? acc : em_i64(E, 0);
}

bool em_idx_eq(const Idx *a, const Idx *b) {
  if (a->n != b->n) return false;
  for (int j = 0; j < a->n; j++)
    if (a->v[j] != b->v[j] || a->ext[j] != b->ext[j]) return false;
  return true;
}

/* d[k] = flat / prod(dims after k) % dims[k], from the flat value. */
static void unravel_flat(Emit *E, LLVMValueRef lin, const IrShape *s, LLVMValueRef *d) {
  for (int k = s->rank - 1; k >= 0; k--) {
    if (s->d[k] == 1) {
      d[k] = em_i64(E, 0);
      continue;
    }
    if (k == 0) {
      d[k] = lin;
      break;
    }
    LLVMValueRef dk = em_i64(E, s->d[k]);
    d[k] = LLVMBuildURem(E->b, lin, dk, "");
    lin = LLVMBuildUDiv(E->b, lin, dk, "");
  }
}

/* Digits are matched to dims from the right. A dim is taken off the low
 * end of the current (combined) digit with a remainder and a division, or
 * with neither when they coincide; a digit smaller than the dim is first
 * combined with the digits above it (v_hi * ext_lo + v_lo), which costs a
 * multiply-add. So an index built from loops over the same (or merged, or
 * split) dims never divides. Only digits whose extents do not line up
 * with the dims fall back to dividing the flat index. */
void em_idx_unravel(Emit *E, const Idx *I, const IrShape *s, LLVMValueRef *d) {
  for (int k = 0; k < s->rank; k++) {
    if (s->d[k] == 0) { /* an empty space: never iterated */
      for (int j = 0; j < s->rank; j++) d[j] = em_i64(E, 0);
      return;
    }
  }
  int j = I->n - 1;
  LLVMValueRef cur = NULL; /* the combined low digits; NULL = 0 */
  int64_t cx = 1;          /* its extent */
  for (int k = s->rank - 1; k >= 0; k--) {
    int64_t dk = s->d[k];
    if (dk == 1) {
      d[k] = em_i64(E, 0);
      continue;
    }
    while (cx % dk != 0) {
      if (j < 0) goto flat;
      if (I->ext[j] == 1) {
        j--;
        continue;
      }
      cur = cur ? LLVMBuildNSWAdd(E->b, LLVMBuildNSWMul(E->b, I->v[j], em_i64(E, cx), ""), cur, "") : I->v[j];
      cx *= I->ext[j];
      j--;
    }
    if (cx == dk) {
      d[k] = cur ? cur : em_i64(E, 0);
      cur = NULL;
      cx = 1;
    } else {
      d[k] = LLVMBuildURem(E->b, cur, em_i64(E, dk), "");
      cur = LLVMBuildUDiv(E->b, cur, em_i64(E, dk), "");
      cx /= dk;
    }
  }
  if (cx != 1) goto flat;
  for (; j >= 0; j--)
    if (I->ext[j] != 1) goto flat;
  return;
flat:
  unravel_flat(E, em_idx_flat(E, I), s, d);
}
