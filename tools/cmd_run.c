/* cmd_run.c — `dalc run`: one entry function on .npy inputs, with
 * parameters from a safetensors file or their seeded initialisers, compiled
 * to native code (or on the reference executor: --backend=ref); outputs go
 * to .npy (or PNG) files and a summary to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/ref/bind.h"
#include "ir/ref/ref_program.h"
#include "runtime/core/init.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/fileio.h"
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

/* Two of b[0..n) for the same argument: the same name, two bare paths, or
 * any two when there is one argument (flag: "--in" or "--out"). */
static int check_twice(const CliBinding *b, int n, int nargs, const char *flag) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < i; j++)
      if (nargs == 1 || (!b[i].name && !b[j].name) || (b[i].name && b[j].name && !strcmp(b[i].name, b[j].name))) {
        cli_error("%s: two values for the same %s ('%s' and '%s')", flag, flag[2] == 'i' ? "input" : "output",
                  b[j].path, b[i].path);
        return -1;
      }
  return 0;
}

/* Every --in must name an input and every --out an output, once. */
static int check_binding_names(const IrGraph *g, const DalcArgs *a) {
  if (check_twice(a->in, a->nin, g->ninput, "--in") || check_twice(a->out, a->nout, g->noutput, "--out")) return -1;
  for (int i = 0; i < a->nin; i++) {
    int found = a->in[i].name == NULL && g->ninput == 1;
    for (int k = 0; k < g->ninput && !found; k++)
      found = a->in[i].name && !strcmp(a->in[i].name, g->node[g->input[k]].name);
    if (!found) {
      if (a->in[i].name)
        fprintf(stderr, "dalc: error: %s has no input '%s'; its inputs are:", g->name, a->in[i].name);
      else
        fprintf(stderr, "dalc: error: --in %s: name the input: the form is --in NAME=FILE.npy (or NAME=NUMBER); "
                "the inputs of %s are:", a->in[i].path, g->name);
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
    if (!in[k] && !b->name && access(b->path, F_OK) != 0) {
      cli_error("--in %s: cannot open: no such file (the form is --in NAME=FILE.npy or NAME=NUMBER; "
                "FILE.npy alone for an entry of one input)", b->path);
      return -1;
    }
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

/* Parameter row s's values into t: the program's own (as loaded or
 * initialised), else --params' (from, if it has it), else its initialiser
 * under --seed, as a program of every entry would start. */
static int param_values(const RtStateSpec *s, const RtProgram *prog, const RtTensorList *from, const DalcArgs *a,
                        RtTensor *t, RtErr *e) {
  const RtTensor *src = rt_list_get(prog->state, s->name);
  const char *where = "the program";
  if (!src && from && (src = rt_list_get(from, s->name))) where = a->params;
  if (!src) {
    rt_init_fill(rt_f32(t), rt_tensor_numel(t), s->init, s->init_a, s->init_b, a->seed, s->name);
    return 0;
  }
  if (src->dtype != RT_F32 || src->rank != t->rank || memcmp(src->dim, t->dim, sizeof *t->dim * (size_t)t->rank)) {
    char want[160], got[160];
    return rt_err(e, "%s: tensor '%s' is %s%s but the model's is f32%s", where, s->name, rt_dtype_name(src->dtype),
                  rt_shape_str(src->rank, src->dim, got, sizeof got), rt_shape_str(t->rank, t->dim, want, sizeof want));
  }
  memcpy(t->data, src->data, rt_tensor_bytes(t));
  return 0;
}

/* Every parameter of the model to a file, whichever entry ran (so the
 * file loads for any entry): the union over all entries, in their order. */
static int save_params(FeProgram *p, const RtProgram *prog, const DalcArgs *a) {
  int n = fe_entry_count(p), rc = -1;
  IrGraph **g = calloc((size_t)n + 1, sizeof *g);
  RtPlanProgramDesc d = {0};
  RtTensorList *l = rt_list_new(), *from = NULL;
  RtErr e = {{0}};
  for (int i = 0; i < n; i++)
    if (!(g[i] = cli_lower_entry(p, i, a))) goto done; /* (cannot fail: the program's entry traced) */
  if (cg_program_spec(g, n, a->file, &d, &e) || (a->params && rt_safetensors_read(a->params, &from, &e))) goto fail;
  for (int k = 0; k < d.nstate; k++) {
    if (!d.state[k].param) continue;
    RtTensor *t = rt_tensor_new(RT_F32, d.state[k].rank, d.state[k].dim, &e);
    if (!t) goto fail;
    rt_list_put(l, d.state[k].name, t);
    if (param_values(&d.state[k], prog, from, a, t, &e)) goto fail;
  }
  if (rt_safetensors_write(a->save_params, l, &e)) goto fail;
  printf("parameters written to %s (%d tensors: the whole model)\n", a->save_params, l->n);
  rc = 0;
  goto done;
fail:
  cli_error("%s", e.msg);
done:
  rt_list_free(l);
  rt_list_free(from);
  cg_program_spec_free(&d);
  for (int i = 0; i < n; i++)
    if (g[i]) ir_graph_free(g[i]);
  free(g);
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

/* Before compiling: every file the run will write can be written. */
static int check_outputs(const DalcArgs *a) {
  RtErr e;
  int rc = 0;
  for (int i = 0; i < a->nout && rc == 0; i++) rc = rt_check_writable("--out", a->out[i].path, &e);
  if (rc == 0 && a->save_params) rc = rt_check_writable("--save-params", a->save_params, &e);
  if (rc == 0 && a->grad_out) rc = rt_check_writable("--grad-out", a->grad_out, &e);
  if (rc) cli_error("%s", e.msg);
  return rc;
}

int cmd_run(const DalcArgs *a) {
  if (check_outputs(a)) return 1;
  FeProgram *p = cli_load(a);
  if (!p) return 1;
  if (!a->fn) {
    fprintf(stderr, "dalc: error: dalc run needs --fn NAME (or -- COMMAND); the entries of %s are:", a->file);
    for (int k = 0; k < fe_entry_count(p); k++) fprintf(stderr, " %s", fe_entry_name(p, k));
    fputc('\n', stderr);
    fe_free(p);
    return 1;
  }
  IrGraph *g = cli_lower(p, a->fn, a, a->grad_out != NULL);
  int status = 1, nin = g ? g->ninput : 0, nout = g ? g->noutput : 0;
  RtTensor **in = NULL, **out = NULL;
  RtProgram *prog = NULL;
  RtErr e;
  if (!g || check_binding_names(g, a) || cli_check_params(&g, 1, a)) goto done;
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
  if (a->save_params && save_params(p, prog, a)) goto done;
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
