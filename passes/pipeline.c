/* pipeline.c — the pass registry and the by-name pipeline runner. */
#include <stdio.h>
#include <string.h>

#include "passes/autodiff.h"
#include "passes/passes.h"
#include "passes/simplify.h"

static const Pass passes[] = {
    {"dce", "drop nodes that no output depends on", pass_dce},
    {"grad", "append the gradient of a training entry's loss w.r.t. every parameter; outputs [loss, grad:<param>...]",
     ad_grad_pass},
    {"cse", "merge nodes with the same op, attributes and inputs", pass_cse},
    {"fold", "evaluate ops over constants into constant splats", pass_fold},
    {"algebra", "apply algebraic identities (x*1, x+0, permute/reshape chains...)", pass_algebra},
};

const Pass *pass_list(int *n) {
  *n = (int)(sizeof passes / sizeof passes[0]);
  return passes;
}

const Pass *pass_find(const char *name) {
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
    if (!strcmp(passes[i].name, name)) return &passes[i];
  return NULL;
}

int pass_run_pipeline(IrGraph *g, const char *names) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", names);
  for (char *save = NULL, *name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    const Pass *p = pass_find(name);
    if (!p) {
      snprintf(g->error, sizeof g->error, "unknown pass '%s'", name);
      return -1;
    }
    if (p->run(g)) return -1;
    char why[400];
    if (!ir_verify(g, why, sizeof why)) {
      snprintf(g->error, sizeof g->error, "graph invalid after pass '%s': %s", name, why);
      return -1;
    }
  }
  return 0;
}
