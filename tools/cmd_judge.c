/* cmd_judge.c — `dalc judge shapes`: how many images show what their
 * captions say, read by the rule-based shapes reader
 * (runtime/data/shapes_reader.h).
 *
 *   dalc judge shapes --images IMAGES.npy --captions CAPTIONS.txt [--n N]
 *                     [--holdout[=SPEC]] [--json]
 *   dalc judge shapes --data SPEC [--count N] [--size S] [--seed S]
 *                     [--holdout[=SPEC]] [--json]
 *
 * --images: f32 [C*N, 3, S, S] in [-1, 1] (what `generate --out-npy`
 * writes), the N images of caption c being rows c*N .. c*N+N-1;
 * --captions: the C captions, one per line (blank lines skipped, as
 * generate skips them); N: --n, else rows / C. --data: the first N
 * (default 1000) examples of a captioned dataset of shapes captions, at
 * S x S (default 32) from seed S (default 0): real renders, the reader's
 * own accuracy (shapes:test, shapes:test:novel, ...). --holdout: also the
 * accuracy on captions that use none of the held-out pairs (seen) and on
 * those that do (novel); SPEC as in data.h, default the default pairs.
 * Prints a table of full-caption and per-attribute accuracies with the
 * counts behind them, or with --json the same as one JSON object:
 *   {"images": R, "captions": C, "n": N, "size": S, "holdout": SPEC or null,
 *    "all": GROUP, "seen": GROUP, "novel": GROUP}     (seen, novel: with --holdout)
 *   GROUP = {"images": k, "accuracy": {"all": a, "count": a, "colour": a,
 *            "kind": a, "place": a, "size": a}, "matched": {same keys: counts}}
 * (an accuracy is null for a group of no images). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data.h"
#include "runtime/exe/exe.h"
#include "runtime/io/npy.h"
#include "runtime/data/shapes_reader.h"
#include "tools/cli.h"

static const char judge_usage[] =
    "usage: dalc judge shapes --images IMAGES.npy --captions CAPTIONS.txt [--n N] [--holdout[=SPEC]] [--json]\n"
    "       dalc judge shapes --data SPEC [--count N] [--size S] [--seed S] [--holdout[=SPEC]] [--json]\n";

typedef struct {
  const char *images, *captions, *data, *holdout;
  uint64_t n, count, size, seed; /* n: 0 = rows / captions */
  bool json;
} JudgeArgs;

/* The captions of --captions, one a line (blank lines skipped, as
 * generate skips them). */
static int read_captions(const char *path, CliTexts *c) {
  if (cli_texts_read(c, path, true)) return -1;
  if (c->n > 0) return 0;
  cli_error("--captions %s: no captions in it", path);
  return -1;
}

/* --holdout alone: the default held-out pairs; --holdout=SPEC: those. */
static bool holdout_flag(const char *arg, const char **holdout) {
  if (!strcmp(arg, "--holdout")) *holdout = RT_SHAPES_HOLDOUT_DEFAULT;
  else if (!strncmp(arg, "--holdout=", 10)) *holdout = arg + 10;
  else return false;
  return true;
}

static int parse_judge_args(int argc, char **argv, JudgeArgs *a) {
  *a = (JudgeArgs){.count = 1000, .size = 32};
  const RtExeOpt opts[] = {{"--images", .str = &a->images},
                           {"--captions", .str = &a->captions},
                           {"--data", .str = &a->data},
                           {"--json", .on = &a->json},
                           {"--n", .num = &a->n, .lo = 1, .hi = 1u << 30},
                           {"--count", .num = &a->count, .lo = 1, .hi = 1u << 30},
                           {"--size", .num = &a->size, .lo = 8, .hi = 4096},
                           {"--seed", .num = &a->seed}};
  for (int i = 0; i < argc; i++) {
    if (holdout_flag(argv[i], &a->holdout)) continue;
    RtErr e;
    int m = rt_exe_opts(argc, argv, &i, opts, (int)(sizeof opts / sizeof *opts), &e);
    if (m < 0) {
      cli_error("judge shapes: %s", e.msg);
      return -1;
    }
    if (m == 0) {
      cli_error("judge shapes: unknown option or argument '%s'", argv[i]);
      fputs(judge_usage, stderr);
      return -1;
    }
  }
  if (!a->data == !a->images || (a->images && !a->captions) || (a->data && a->captions)) {
    cli_error("judge shapes needs either --images IMAGES.npy with --captions CAPTIONS.txt, or --data SPEC");
    fputs(judge_usage, stderr);
    return -1;
  }
  return 0;
}

/* Judges generated images against their captions file. */
static int judge_files(const JudgeArgs *a, uint32_t holdout, RtShapesTally t[3], int64_t *ncap, int64_t *n,
                       int *size) {
  RtErr e;
  RtTensor *img = NULL;
  CliTexts c = {0};
  int rc = -1;
  if (rt_npy_read(a->images, &img, &e)) {
    cli_error("--images %s", e.msg);
    goto done;
  }
  if (img->dtype != RT_F32 || img->rank != 4 || img->dim[1] != 3 || img->dim[2] != img->dim[3] || img->dim[2] < 8) {
    char buf[128];
    cli_error("--images %s: expected images f32[R, 3, S, S] (S >= 8), got %s%s", a->images, rt_dtype_name(img->dtype),
              rt_shape_str(img->rank, img->dim, buf, sizeof buf));
    goto done;
  }
  if (read_captions(a->captions, &c)) goto done;
  int64_t rows = img->dim[0];
  *ncap = c.n;
  *n = a->n ? (int64_t)a->n : rows / c.n;
  *size = (int)img->dim[2];
  if (*n < 1 || rows != c.n * *n) {
    cli_error("--images %s has %lld images, not %s%lld per caption for the %lld captions of %s", a->images,
              (long long)rows, a->n ? "" : "the same number ", (long long)*n, (long long)c.n,
              a->captions);
    goto done;
  }
  if (rt_shapes_judge(rt_f32(img), *size, (const char *const *)c.text, c.n, *n, holdout, t, &e)) {
    cli_error("--captions %s: %s", a->captions, e.msg);
    goto done;
  }
  rc = 0;
done:
  rt_tensor_free(img);
  cli_texts_free(&c);
  return rc;
}

/* Judges the first a->count examples of a dataset (real renders). */
static int judge_data(const JudgeArgs *a, uint32_t holdout, RtShapesTally t[3]) {
  enum { B = 64 };
  const RtArgSpec x = {.name = "x", .dtype = RT_F32, .rank = 4, .dim = {B, 3, a->size, a->size}};
  const RtEntrySpec entry = {.name = "judge", .ninput = 1, .input = &x};
  RtErr e;
  RtDataset *d = rt_data_open(a->data, &entry, (uint64_t)a->seed, &e);
  if (!d) {
    cli_error("--data %s", e.msg);
    return -1;
  }
  RtTensor *img = rt_tensor_new(RT_F32, 4, x.dim, &e);
  int rc = img ? 0 : -1;
  if (rc == 0 && !rt_data_has_captions(d)) {
    cli_error("--data %s: this dataset has no captions", a->data);
    rc = -2;
  }
  int64_t count = (int64_t)a->count;
  for (int64_t step = 0; rc == 0 && step * B < count; step++) {
    int64_t k = count - step * B < B ? count - step * B : B;
    const char *cap[B];
    if (rt_data_fill(d, (uint64_t)step, &img, &e)) {
      rc = -1;
      break;
    }
    for (int64_t j = 0; j < k; j++) cap[j] = rt_data_caption(d, j);
    if (rt_shapes_judge(rt_f32(img), (int)a->size, cap, k, 1, holdout, t, &e)) rc = -1;
  }
  if (rc == -1) cli_error("--data %s: %s", a->data, e.msg);
  rt_tensor_free(img);
  rt_data_free(d);
  return rc ? -1 : 0;
}

static const char *const attr_names[6] = {"all", "count", "colour", "kind", "place", "size"};

static void tally_values(const RtShapesTally *t, int64_t v[6]) {
  v[0] = t->all, v[1] = t->count, v[2] = t->colour, v[3] = t->kind, v[4] = t->place, v[5] = t->size;
}

static cJSON *group_json(const RtShapesTally *t) {
  cJSON *g = cJSON_CreateObject(), *acc = cJSON_CreateObject(), *matched = cJSON_CreateObject();
  int64_t v[6];
  tally_values(t, v);
  cJSON_AddNumberToObject(g, "images", (double)t->images);
  for (int k = 0; k < 6; k++) {
    if (t->images) cJSON_AddNumberToObject(acc, attr_names[k], (double)v[k] / (double)t->images);
    else cJSON_AddNullToObject(acc, attr_names[k]);
    cJSON_AddNumberToObject(matched, attr_names[k], (double)v[k]);
  }
  cJSON_AddItemToObject(g, "accuracy", acc);
  cJSON_AddItemToObject(g, "matched", matched);
  return g;
}

static void print_row(const char *name, const RtShapesTally *t) {
  int64_t v[6];
  tally_values(t, v);
  printf("%-7s %7lld", name, (long long)t->images);
  for (int k = 0; k < 6; k++) {
    if (t->images) printf("  %6.2f%% %6lld", 100.0 * (double)v[k] / (double)t->images, (long long)v[k]);
    else printf("  %7s %6s", "-", "-");
  }
  putchar('\n');
}

int cmd_judge(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    fputs(judge_usage, stdout);
    return 0;
  }
  if (argc < 1 || strcmp(argv[0], "shapes")) {
    if (argc >= 1) cli_error("judge: unknown judge '%s' (there is one: shapes)", argv[0]);
    fputs(judge_usage, stderr);
    return 1;
  }
  JudgeArgs a;
  if (parse_judge_args(argc - 1, argv + 1, &a)) return 1;
  uint32_t holdout = 0;
  RtErr e;
  if (a.holdout && rt_shapes_holdout_parse(a.holdout, &holdout, &e)) {
    cli_error("--holdout: %s", e.msg);
    return 1;
  }
  RtShapesTally t[3] = {{0}};
  int64_t ncap = a.count, n = 1;
  int size = (int)a.size;
  if (a.images ? judge_files(&a, holdout, t, &ncap, &n, &size) : judge_data(&a, holdout, t)) return 1;
  char spec[256] = "";
  if (holdout) rt_shapes_holdout_str(holdout, spec, sizeof spec);
  static const char *const groups[3] = {"all", "seen", "novel"};
  if (a.json) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "images", (double)t[0].images);
    cJSON_AddNumberToObject(root, "captions", (double)ncap);
    cJSON_AddNumberToObject(root, "n", (double)n);
    cJSON_AddNumberToObject(root, "size", size);
    if (holdout) cJSON_AddStringToObject(root, "holdout", spec);
    else cJSON_AddNullToObject(root, "holdout");
    for (int g = 0; g < (holdout ? 3 : 1); g++) cJSON_AddItemToObject(root, groups[g], group_json(&t[g]));
    char *s = cJSON_PrintUnformatted(root);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(root);
    return s ? 0 : 1;
  }
  printf("shapes judge: %lld images of %lld captions (%lld each), %dx%d, from %s%s%s\n", (long long)t[0].images,
         (long long)ncap, (long long)n, size, size, a.images ? a.images : a.data, holdout ? "; held-out pairs " : "",
         spec);
  printf("%-7s %7s", "", "images");
  for (int k = 0; k < 6; k++) printf("  %14s", attr_names[k]);
  putchar('\n');
  for (int g = 0; g < (holdout ? 3 : 1); g++) print_row(groups[g], &t[g]);
  return 0;
}
