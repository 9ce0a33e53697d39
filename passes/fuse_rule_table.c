/* fuse_rule_table.c — the fusion rules by name: the one table that
 * --fuse-rule, `dalc fuse-rules` and --explain-fusion read (FuseRule in
 * fuse.h), and the switch logic over FuseOptions. The rules themselves are
 * code in fuse_rules.c and fuse_merge.c (and codegen/lower_inplace.c for
 * in-place), each under a comment naming it. */
#include <stdio.h>
#include <string.h>

#include "passes/fuse.h"

const FuseRuleInfo fuse_rule_info[FUSE_RULE_COUNT] = {
    [FUSE_RULE_ELEMENTWISE] = {"elementwise", true, true,
                               "elementwise and movement ops (reshape, broadcast, permute, slice, gather) join the "
                               "loop that reads them"},
    [FUSE_RULE_RECOMPUTE] = {"recompute", true, true,
                             "views, constants and scalars are recomputed inside each reader instead of stored"},
    [FUSE_RULE_SIBLINGS] = {"siblings", true, true,
                            "loops over one shape that share a view or constant merge into one multi-output kernel"},
    [FUSE_RULE_REDUCE_PROLOGUE] = {"reduce-prologue", true, true,
                                   "the elementwise work feeding a reduction or row op runs inside its row loop"},
    [FUSE_RULE_REDUCE_EPILOGUE] = {"reduce-epilogue", true, true,
                                   "a reduction or row op (sum, max, softmax, cross_entropy) takes the loop that "
                                   "reads its result"},
    [FUSE_RULE_TWO_PASS] = {"two-pass", true, true,
                            "a reduction's row value read back at its input shape (x - max(x)) is a second sweep "
                            "of the same kernel"},
    [FUSE_RULE_EPILOGUE] = {"epilogue", true, true,
                            "matmul, conv, layer/group norm and gumbel take their elementwise consumers as an "
                            "epilogue"},
    [FUSE_RULE_IN_PLACE] = {"in-place", true, true,
                            "(codegen) an elementwise kernel stores an output over an input that dies there"},
    [FUSE_RULE_ATTENTION] = {"attention", true, true,
                             "(graph rewrite before autodiff) softmax(masked scaled q k^T) v becomes one tiled "
                             "attention op that skips masked key blocks and keeps no score matrix"},
    [FUSE_RULE_REMAT] = {"remat", true, true,
                         "(training steps) cheap values (norms, activations) are recomputed after the memory peak "
                         "instead of kept across it, when that lowers the planned peak (passes/remat.c)"},
    [FUSE_RULE_LN_PROLOGUE] = {"ln-prologue", true, true,
                               "(codegen) a layer_norm read only by a GEMM of at most 32 rows (a decode step's) is "
                               "computed by the GEMM step: no kernel, no buffer"},
    [FUSE_RULE_WINO_EPILOGUE] = {"wino-epilogue", true, true,
                                 "(codegen) a Winograd convolution's output transform applies its group's "
                                 "elementwise epilogue (bias, residual, activation) before storing: no epilogue loop"},
    [FUSE_RULE_WINO_PROLOGUE] = {"wino-prologue", true, true,
                                 "(codegen) a Winograd convolution's input transform computes an elementwise input "
                                 "(relu(group_norm)) as it reads its tiles, when nothing else needs it stored"},
    [FUSE_RULE_NO_DUPLICATION] = {"no-duplication", false, true,
                                  "a node read by two kernels is computed once and stored"},
    [FUSE_RULE_OPAQUE_OPERANDS] = {"opaque-operands", false, true,
                                   "an opaque op (matmul, conv, norms) reads its operands from memory"},
    [FUSE_RULE_NO_CYCLES] = {"no-cycles", false, true, "no path may leave a kernel and come back into it"},
    [FUSE_RULE_EXPANSION] = {"expansion", false, true,
                             "what a broadcast, onehot or gather expands is recomputed per element: only cheap "
                             "values may be"},
    [FUSE_RULE_OUTS] = {"outs", false, true, "returned and updated values are stored once per element"},
    [FUSE_RULE_ONE_REDUCTION] = {"one-reduction", false, true, "at most one reduction (one row space) per kernel"},
    [FUSE_RULE_ROWS_IN_ORDER] = {"rows-in-order", false, true,
                                 "nothing evaluated per row is permuted, sliced, concatenated or gathered"},
    [FUSE_RULE_DATA_DEPENDENT] = {"data-dependent", false, true,
                                  "gather tables and indices read at run-time positions come from memory"},
    [FUSE_RULE_EPILOGUE_SHAPE] = {"epilogue-shape", false, true,
                                  "an opaque op's epilogue is elementwise at its output shape, nothing else"},
    [FUSE_RULE_KERNEL_INPUTS] = {"kernel-inputs", false, true,
                                 "a kernel grown by joins reads at most 256 buffers (compile time grows with "
                                 "the square of a kernel's loads)"},
    [FUSE_RULE_WINO_SHARE_U] = {"wino-share-u", true, false,
                                "(codegen) a Winograd F(2x2,3x3) conv reads the weight transform U of an earlier "
                                "one on the same weight (a training step's input gradient its forward's, transposed) "
                                "when keeping U alive does not grow the arena; off by default: in the dVAE's "
                                "training steps every U would cross the memory peak (none shared), and its two trial "
                                "lowerings add ~0.14 s to the paper dVAE's compile"},
};

_Static_assert(FUSE_RULE_NSWITCH <= 32, "the switches are bits of a uint32_t");

bool fuse_rule_on(const FuseOptions *o, FuseRule r) {
  const FuseRuleInfo *info = &fuse_rule_info[r];
  if (!info->is_switch) return true;
  if (!o) return info->default_on;
  uint32_t bit = 1u << r;
  if (o->rules_off & bit) return false;
  if (r == FUSE_RULE_TWO_PASS && o->single_pass) return false;
  return info->default_on || (o->rules_on & bit);
}

int fuse_rule_find(const char *name) {
  for (int r = 0; r < FUSE_RULE_COUNT; r++)
    if (strcmp(fuse_rule_info[r].name, name) == 0) return r;
  return -1;
}

/* "a, b, c" of the switches into buf. */
static const char *switch_names(char *buf, size_t size) {
  size_t n = 0;
  buf[0] = 0;
  for (int r = 0; r < FUSE_RULE_NSWITCH && n < size; r++)
    n += (size_t)snprintf(buf + n, size - n, "%s%s", r ? ", " : "", fuse_rule_info[r].name);
  return buf;
}

/* Switches that are not about grouping nodes: -fno-fuse leaves them be. */
static bool not_fusion(int r) {
  return r == FUSE_RULE_IN_PLACE || r == FUSE_RULE_REMAT || r == FUSE_RULE_WINO_SHARE_U;
}

int fuse_rule_apply(FuseOptions *o, const char *spec, char *err, size_t size) {
  FuseOptions t = *o;
  char names[512];
  const char *s = spec;
  for (;;) {
    size_t len = strcspn(s, ",");
    char item[64];
    if (len == 0 || len >= sizeof item) {
      snprintf(err, size, "--fuse-rule expects +NAME or -NAME (comma lists allowed), got '%s'", spec);
      return -1;
    }
    memcpy(item, s, len);
    item[len] = 0;
    char sign = item[0];
    if (sign != '+' && sign != '-') {
      snprintf(err, size, "--fuse-rule: '%s' needs a sign: +%s switches the rule on, -%s off", item, item, item);
      return -1;
    }
    int r = fuse_rule_find(item + 1);
    if (r < 0) {
      snprintf(err, size, "unknown fusion rule '%s' (the rules that can be switched: %s; `dalc fuse-rules` lists them)",
               item + 1, switch_names(names, sizeof names));
      return -1;
    }
    if (!fuse_rule_info[r].is_switch) {
      snprintf(err, size, "fusion rule '%s' is a correctness constraint and cannot be switched (switches: %s)",
               item + 1, switch_names(names, sizeof names));
      return -1;
    }
    uint32_t bit = 1u << r;
    if (sign == '-') {
      t.rules_off |= bit;
      t.rules_on &= ~bit;
      if (r == FUSE_RULE_TWO_PASS) t.single_pass = true;
    } else {
      if (!t.enabled && !not_fusion(r)) {
        /* after -fno-fuse: fusion again, with this switch alone */
        t.enabled = true;
        for (int k = 0; k < FUSE_RULE_NSWITCH; k++)
          if (!not_fusion(k)) t.rules_off |= 1u << k;
      }
      t.rules_off &= ~bit;
      t.rules_on |= bit;
      if (r == FUSE_RULE_TWO_PASS) t.single_pass = false;
    }
    s += len;
    if (!*s) break;
    s++;
  }
  *o = t;
  return 0;
}

void fuse_rule_print(FILE *out) {
  int width = 0;
  for (int r = 0; r < FUSE_RULE_COUNT; r++)
    if ((int)strlen(fuse_rule_info[r].name) > width) width = (int)strlen(fuse_rule_info[r].name);
  fprintf(out, "fusion rules that can be switched (--fuse-rule=-NAME off, +NAME on; -fno-fuse: every fusion rule off):\n");
  for (int r = 0; r < FUSE_RULE_NSWITCH; r++)
    fprintf(out, "  %-*s  %-3s  %s\n", width, fuse_rule_info[r].name, fuse_rule_info[r].default_on ? "on" : "off",
            fuse_rule_info[r].help);
  fprintf(out, "constraints (always on; --explain-fusion names them when they refuse an edge):\n");
  for (int r = FUSE_RULE_NSWITCH; r < FUSE_RULE_COUNT; r++)
    fprintf(out, "  %-*s       %s\n", width, fuse_rule_info[r].name, fuse_rule_info[r].help);
}
