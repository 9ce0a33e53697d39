/* exe_data.c — `data`: one batch of a dataset as the training step would
 * see it: one line per example on stdout (its caption, and the rows of
 * every i32 input the dataset fills: the text ids with --tokenizer, a
 * token cache's text and image tokens) and the images as a PNG grid (or,
 * for an --out path ending in .npy, as the f32 array the entry takes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"

typedef struct {
  const char *spec, *fn, *out, *tokenizer;
  uint64_t batch, size, step, seed, scale;
} DataArgs;

static int parse(int argc, char **argv, DataArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  const RtExeOpt opts[] = {{"--data", .str = &a->spec},
                           {"--fn", .str = &a->fn},
                           {"--tokenizer", .str = &a->tokenizer},
                           {"--out", .str = &a->out},
                           {"--batch", .num = &a->batch, .lo = 1, .hi = 4096},
                           {"--size", .num = &a->size, .lo = 8, .hi = 4096},
                           {"--step", .num = &a->step},
                           {"--seed", .num = &a->seed},
                           {"--scale", .num = &a->scale, .lo = 1, .hi = 64}};
  for (int i = 0; i < argc; i++) {
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), e);
    if (m < 0) return -1;
    if (!m)
      return rt_err(e,
                    "data: unknown option '%s' (options: --data SPEC --tokenizer TOK.json --fn NAME "
                    "--out grid.png|batch.npy --batch B --size S --step K --seed S --scale N)",
                    argv[i]);
  }
  return 0;
}

static bool is_image(const RtArgSpec *s) {
  return s->dtype == RT_F32 && s->rank == 4 && s->dim[1] == 3 && s->dim[2] == s->dim[3];
}

int rt_exe_data(RtProgram *p, int argc, char **argv, RtErr *e) {
  DataArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  /* The entry the batch is for: the training entry's inputs with --batch and
   * --size applied, or a lone image input "x" if the program has none. */
  RtEntrySpec en = {.name = "data"};
  RtArgSpec *spec = NULL;
  int train = -1;
  for (int i = 0; i < p->nentry && !a.fn; i++) train = p->entry[i].train && train < 0 ? i : train;
  if (a.fn && (train = rt_exe_train_entry(p, a.fn, e)) < 0) return -1;
  if (train >= 0) {
    en = p->entry[train];
    spec = malloc((size_t)(en.ninput + 1) * sizeof *spec);
    if (!spec) return rt_err(e, "out of memory");
    memcpy(spec, en.input, (size_t)en.ninput * sizeof *spec);
  } else {
    spec = calloc(1, sizeof *spec);
    if (!spec) return rt_err(e, "out of memory");
    *spec = (RtArgSpec){.name = "x", .dtype = RT_F32, .rank = 4, .dim = {16, 3, 32, 32}};
    en.ninput = 1;
  }
  for (int i = 0; i < en.ninput; i++) {
    if (a.batch && spec[i].rank >= 1) spec[i].dim[0] = (int64_t)a.batch;
    if (a.size && is_image(&spec[i])) spec[i].dim[2] = spec[i].dim[3] = (int64_t)a.size;
  }
  en.input = spec;
  RtTensor **in = calloc((size_t)en.ninput + 1, sizeof *in);
  RtDataset *d = NULL;
  int rc = -1, image = -1;
  if (!in) {
    rt_err(e, "out of memory");
    goto done;
  }
  d = rt_data_open(a.spec ? a.spec : "shapes", &en, a.seed, e);
  if (!d || (a.tokenizer && rt_data_set_tokenizer(d, a.tokenizer, e))) goto done;
  for (int i = 0; i < en.ninput; i++) {
    in[i] = rt_tensor_new(spec[i].dtype, spec[i].rank, spec[i].dim, e);
    if (!in[i]) goto done;
    if (rt_data_fills(d, i) && is_image(&spec[i]) && image < 0) image = i;
  }
  if (rt_data_fill(d, a.step, in, e)) goto done;
  bool rows = rt_data_caption(d, 0) != NULL;
  for (int i = 0; i < en.ninput; i++) rows |= rt_data_fills(d, i) && spec[i].dtype == RT_I32 && spec[i].rank >= 2;
  for (int64_t j = 0; rows && j < rt_data_batch(d); j++) {
    const char *c = rt_data_caption(d, j);
    printf("%lld", (long long)j);
    if (c) printf("\t%s", c);
    for (int i = 0; i < en.ninput; i++) {
      if (!rt_data_fills(d, i) || spec[i].dtype != RT_I32 || spec[i].rank < 2) continue;
      int64_t n = rt_tensor_numel(in[i]) / spec[i].dim[0];
      printf("\t%s:", spec[i].name);
      for (int64_t k = 0; k < n; k++) printf(" %d", rt_i32(in[i])[j * n + k]);
    }
    printf("\n");
  }
  for (int i = 0; i < en.ninput; i++) {
    char buf[256];
    if (rt_data_fills(d, i) && !rows) printf("%s\n", rt_exe_arg_str(&spec[i], buf, sizeof buf));
  }
  if (a.out) {
    if (image < 0) {
      rt_err(e, "--out %s: dataset '%s' gives no images f32[B, 3, S, S] for entry '%s'", a.out,
             a.spec ? a.spec : "shapes", en.name);
      goto done;
    }
    int64_t side = spec[image].dim[2];
    int scale = a.scale ? (int)a.scale : side >= 128 ? 1 : (int)(128 / side);
    size_t n = strlen(a.out);
    bool npy = n >= 4 && strcmp(a.out + n - 4, ".npy") == 0; /* the batch itself, for `run --in` */
    if (npy ? rt_npy_write(a.out, in[image], e) : rt_png_write_grid(a.out, in[image], 0, scale, e)) goto done;
    printf("%s written to %s\n", spec[image].name, a.out);
  }
  rc = 0;
done:
  for (int i = 0; in && i < en.ninput; i++) rt_tensor_free(in[i]);
  free(in);
  rt_data_free(d);
  free(spec);
  return rc;
}
