/* attention.h — the attention rewrite: the unfused attention pattern of a
 * traced graph becomes one ATTENTION node (ir/ops.def), before autodiff,
 * so the model's source and parameter names stay as they are and the
 * gradient comes from grad_attention (passes/grad_attention.c).
 *
 * The pattern (models/gpt.dal's attend):
 *   s = matmul(q, k, trans_b) [* c]            q [..., n, d], k [..., m, d]
 *   p = softmax(where(mask, s, -inf), axis=-1) mask i32, batch dims 1 before
 *                                                its broadcast to [..., n, m]
 *   y = matmul(p, v)                           v [..., m, d]
 * with c a constant (the scale; 1 if absent) and s, the scaled scores, the
 * masked scores and p used nowhere else. y becomes slice(attention(q, k, v,
 * mask [n, m], scale), [..., :d]) (the last column is the rows'
 * log-sum-exp, kept for the backward). Dead nodes are left for dce.
 *
 * Switched by the fusion rule "attention" (passes/fuse_rule_table.c):
 * dalc runs it on every entry it traces unless --fuse-rule=-attention or
 * -fno-fuse. Module prefix: pass_.
 */
#ifndef DAL_PASSES_ATTENTION_H
#define DAL_PASSES_ATTENTION_H

#include <stdio.h>

#include "ir/ir.h"

/* Rewrites every match in g; *fused (may be NULL) gets their count. With
 * 'explain' set, one line per match (its location and shapes) goes there.
 * Returns 0, or -1 with g->error set. */
int pass_attention_fuse(IrGraph *g, int *fused, FILE *explain);

/* pass_attention_fuse as a registered pass (no count, no lines). */
int pass_attention(IrGraph *g);

#endif
