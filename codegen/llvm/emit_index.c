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

/* Digits are matched to dims from the right: a digit of extent X covers
 * the trailing dims whose sizes multiply to X, each found by a division
 * and a remainder (none at all when a digit is exactly one dim). A digit
 * that ends inside a dim falls back to dividing the flat index. */
void em_idx_unravel(Emit *E, const Idx *I, const IrShape *s, LLVMValueRef *d) {
  for (int k = 0; k < s->rank; k++) {
    if (s->d[k] == 0) { /* an empty space: never iterated */
      for (int j = 0; j < s->rank; j++) d[j] = em_i64(E, 0);
      return;
    }
  }
  int k = s->rank - 1;
  for (int j = I->n - 1; j >= 0; j--) {
    int64_t X = I->ext[j], prod = 1;
    LLVMValueRef val = I->v[j];
    if (X == 1) continue;
    while (k >= 0 && prod < X) {
      int64_t dk = s->d[k];
      if (dk == 1) {
        d[k--] = em_i64(E, 0);
        continue;
      }
      if (X % (prod * dk) != 0) break;
      LLVMValueRef q = prod == 1 ? val : LLVMBuildUDiv(E->b, val, em_i64(E, prod), "");
      d[k] = prod * dk == X ? q : LLVMBuildURem(E->b, q, em_i64(E, dk), "");
      prod *= dk;
      k--;
    }
    if (prod != X) {
      unravel_flat(E, em_idx_flat(E, I), s, d);
      return;
    }
  }
  for (; k >= 0; k--) {
    if (s->d[k] != 1) {
      unravel_flat(E, em_idx_flat(E, I), s, d);
      return;
    }
    d[k] = em_i64(E, 0);
  }
}
