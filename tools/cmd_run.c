/* cmd_run.c — `dalc run`: one entry function on .npy inputs, with
 * parameters from a safetensors file or their seeded initialisers, compiled
 * to native code (or on the reference executor: --backend=ref); outputs go
 * to .npy (or PNG) files and a summary to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ref/bind.h"
#include "runtime/io/checkpoint.h"
#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/core/numerics.h"
#include "runtime/io/npy.h"
#include "runtime/io/safetensors.h"
#include "tools/cli.h"

static const CliBinding *find_binding(const CliBinding *b, int n, const char *name, int only_one) {
  for (int i = 0; i < n; i++)
    if (b[i].name ? !strcmp(b[i].name, name) : only_one) return &b[i];
  return NULL;
}

/* Every --in must name an input and every --out an output. */
static int check_binding_names(const IrGraph *g, const DalcArgs *a) {
  for (int i = 0; i < a->nin; i++) {
    int found = a->in[i].name == NULL && g->ninput == 1;
    for (int k = 0; k < g->ninput && !found; k++)
      found = a->in[i].name && !strcmp(a->in[i].name, g->node[g->input[k]].name);
    if (!found) {
      fprintf(stderr, "dalc: error: %s has no input '%s'; its inputs are:", g->name,
              a->in[i].name ? a->in[i].name : a->in[i].path);
      for (int k = 0; k < g->ninput; k++) fprintf(stderr, " %s", g->node[g->input[k]].name);
      fputc('\n', stderr);
      return -1;
    }
  }
  for (int i = 0; i < a->nout; i++) {
    int found = a->out[i].name == NULL && g->noutput == 1;
    for (int k = 0; k < g->noutput && !found; k++)
      found = a->out[i].name && (!strcmp(a->out[i].name, g->output_name[k]) ||
                                 (g->noutput == 1 && !strcmp(a->out[i].name, "out")));
    if (!found) {
      cli_error("%s has no output '%s' (its output is '%s')", g->name,
                a->out[i].name ? a->out[i].name : a->out[i].path, g->output_name[0]);
      return -1;
    }
  }
  return 0;
}

/* The inputs of entry g (the program's entry en) from --in: numbers for
 * one-element inputs, else .npy files. */
static int load_inputs(const IrGraph *g, const RtEntrySpec *en, const DalcArgs *a, RtTensor **in) {
  for (int k = 0; k < g->ninput; k++) {
    const IrNode *x = &g->node[g->input[k]];
    const CliBinding *b = find_binding(a->in, a->nin, x->name, g->ninput == 1);
    char t[160];
    if (!b) {
      cli_error("%s needs --in %s=FILE.npy (%s)", g->name, x->name,
                cli_type(x->dtype == IR_I32, x->shape.d, x->shape.rank, t, sizeof t));
      return -1;
    }
    RtErr e;
    in[k] = rt_exe_number_tensor(&en->input[k], b->path, &e);
    if (!in[k] && (rt_npy_read(b->path, &in[k], &e) || rt_numerics_check_input(x->name, b->path, in[k], &e))) {
      cli_error("%s", e.msg);
      return -1;
    }
    if (cg_check_input(g, k, in[k], b->path, &e)) {
      cli_error("%s", e.msg);
      return -1;
    }
  }
  return 0;
}

/* "--out NAME=FILE.png" writes an image batch (f32 [B, 3, H, W] in
 * [-1, 1]) as a PNG grid; any other path gets a .npy file. */
static int write_output(const char *path, const RtTensor *t, RtErr *e) {
  size_t n = strlen(path);
  if (n < 4 || strcmp(path + n - 4, ".png") != 0) return rt_npy_write(path, t, e);
  if (t->dtype != RT_F32 || t->rank != 4 || t->dim[1] != 3)
    return rt_err(e, "%s: only images (f32 [B, 3, H, W]) can be written as PNG; use .npy", path);
  return rt_png_write_grid(path, t, 0, t->dim[2] < 64 ? 4 : 1, e);
}

/* The program's parameters (its first nparam state tensors) to a file. */
static int save_params(const RtProgram *prog, const char *path) {
  RtTensorList *l = rt_list_new();
  RtErr e;
  for (int k = 0; k < prog->nparam; k++) {
    const RtTensor *t = prog->state->tensor[k];
    RtTensor *copy = rt_tensor_new(t->dtype, t->rank, t->dim, &e);
    if (!copy) break;
    memcpy(copy->data, t->data, rt_tensor_bytes(t));
    rt_list_put(l, prog->state->name[k], copy);
  }
  int rc = l->n == prog->nparam ? rt_safetensors_write(path, l, &e) : -1;
  if (rc) cli_error("%s", e.msg);
  else printf("parameters written to %s\n", path);
  rt_list_free(l);
  return rc;
}

/* Outputs 1.. of a differentiated training entry are "grad:NAME": written
 * under NAME, the parameter's own name, so they line up with PyTorch's. */
static int write_gradients(const IrGraph *g, RtTensor **out, const char *path) {
  RtTensorList *l = rt_list_new();
  for (int k = 1; k < g->noutput; k++) {
    const char *name = g->output_name[k];
    if (!strncmp(name, "grad:", 5)) name += 5;
    rt_list_put(l, name, out[k]);
    out[k] = NULL; /* the list owns it now */
  }
  RtErr e;
  int rc = rt_safetensors_write(path, l, &e);
  if (rc) cli_error("%s", e.msg);
  else printf("gradients of %d parameters written to %s\n", l->n, path);
  rt_list_free(l);
  return rc ? 1 : 0;
}

int cmd_run(const DalcArgs *a) {
  if (!a->fn) {
    cli_error("dalc run needs --fn NAME (dalc info %s lists the entries)", a->file);
    return 1;
  }
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  IrGraph *g = cli_lower(p, a->fn, a, a->grad_out != NULL);
  int status = 1, nin = g ? g->ninput : 0, nout = g ? g->noutput : 0;
  RtTensor **in = NULL, **out = NULL;
  RtProgram *prog = NULL;
  RtErr e;
  if (!g || check_binding_names(g, a)) goto done;
  if (a->grad_out && !g->train) {
    cli_error("--grad-out needs a training entry; %s is @infer", g->name);
    goto done;
  }
  in = calloc((size_t)nin + 1, sizeof *in);
  out = calloc((size_t)nout + 1, sizeof *out);

  /* The program takes the graph over; g stays readable while it lives. */
  IrGraph *owned = g;
  prog = cli_program(&owned, 1, p, a);
  if (!prog) {
    g = NULL;
    goto done;
  }
  if (load_inputs(g, &prog->entry[0], a, in)) goto done;
  if (a->params && rt_checkpoint_load_params(a->params, prog, &e)) {
    cli_error("%s", e.msg);
    goto done;
  }
  if (a->save_params && save_params(prog, a->save_params)) goto done;
  if (prog->run(prog, 0, in, out, a->seed, 0, &e)) {
    cli_error("%s", e.msg);
    goto done;
  }
  status = a->grad_out ? write_gradients(g, out, a->grad_out) : 0;
  for (int k = 0; k < g->noutput; k++) {
    if (a->grad_out && k > 0) break; /* the gradients went to --grad-out */
    rt_exe_summarise(stdout, g->output_name[k], out[k]);
    const CliBinding *b = find_binding(a->out, a->nout, g->output_name[k], g->noutput == 1);
    if (!b && k == 0) b = find_binding(a->out, a->nout, "out", 0);
    if (b && write_output(b->path, out[k], &e)) {
      cli_error("%s", e.msg);
      status = 1;
    }
  }
done:
  if (in) cg_free_tensors(in, nin);
  if (out) cg_free_tensors(out, nout);
  free(in);
  free(out);
  if (prog) rt_program_free(prog); /* frees g */
  else if (g) ir_graph_free(g);
  fe_free(p); /* after the graphs: their locations point into it */
  return status;
}
