/* exe_eval_classify.c — `eval classify`: the accuracy of a classifier
 * (models/classifier.dal: the Fashion-MNIST judge) on any set of images.
 *
 *   eval classify (--data SPEC | --images IMAGES.npy) [--labels FILE [--repeat R]]
 *                 [--count N] [--params P] [--init PREFIX=FILE]... [--init-partial]
 *                 [--seed S] [--json]
 *
 * Runs the entry "predict" (images f32 [B, 3, S, S] -> i32 [B], the class
 * read from each) over the images and compares with their labels.
 * Images: --data SPEC (the examples of a dataset, exe_eval.h:
 * fashion-mnist:test, or npy:x=FILE.npy with --count) or --images
 * IMAGES.npy (f32 [N, 3, S, S] in [-1, 1]: what `generate --out-npy` and
 * `run --out` write). Labels, in this order of preference:
 *   --labels FILE.npy   integers [N] (or [N, 1])
 *   --labels FILE       a text file, one label per line: a class number
 *                       or a Fashion-MNIST caption ("an ankle boot"); with
 *                       --repeat R each line labels R images in a row
 *                       (generate's caption-major rows, --n R)
 *   the dataset's captions, each a Fashion-MNIST class caption.
 * Reported: accuracy (correct / N), and per class (the classes of the
 * "logits" entry's width, else 10) its accuracy among the images of that
 * label (JSON null for a class with none).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/exe/exe_eval.h"
#include "runtime/io/npy.h"

typedef struct {
  RtEvalCommon c;
  const char *data, *images, *labels;
  uint64_t count, repeat;
} ClsArgs;

static int parse(int argc, char **argv, ClsArgs *a, RtErr *e) {
  memset(a, 0, sizeof *a);
  const RtExeOpt opts[] = {{"--data", .str = &a->data},
                           {"--images", .str = &a->images},
                           {"--labels", .str = &a->labels},
                           {"--count", .num = &a->count, .lo = 1, .hi = UINT64_MAX},
                           {"--repeat", .num = &a->repeat, .lo = 1, .hi = 1u << 30}};
  if (rt_eval_parse(argc, argv, &a->c, opts, (int)(sizeof opts / sizeof *opts), "eval classify",
                    "--data SPEC --images IMAGES.npy --labels FILE --repeat R --count N", e))
    return -1;
  if (!a->data == !a->images)
    return rt_err(e, "eval classify needs the images: --data SPEC or --images IMAGES.npy (one of them)");
  if (a->images && !a->labels) return rt_err(e, "eval classify --images %s needs --labels FILE", a->images);
  if (a->repeat && !a->labels) return rt_err(e, "--repeat goes with --labels FILE (a text file)");
  return 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The class of a caption or class number (line 'line' of 'file' for
 * messages; file NULL: a dataset's caption), or -1 with a message. */
static int label_of(const char *text, int classes, const char *file, int64_t line, RtErr *e) {
  char *end;
  long v = strtol(text, &end, 10);
  if (end != text && *end == 0) {
    if (v < 0 || v >= classes)
      return rt_err(e, "%s:%lld: label %ld is not a class 0 .. %d", file ? file : "--labels", (long long)line, v,
                    classes - 1);
    return (int)v;
  }
  for (int c = 0; rt_fashion_caption(c); c++)
    if (strcmp(text, rt_fashion_caption(c)) == 0) return c;
  if (file) return rt_err(e, "%s:%lld: '%s' is neither a class number nor a Fashion-MNIST caption (\"a t-shirt\", ...)",
                          file, (long long)line, text);
  return rt_err(e, "eval classify: the dataset's caption '%s' is not a Fashion-MNIST class caption: give --labels FILE",
                text);
}

/* --labels into a new array of *n labels. */
static int32_t *read_labels(const ClsArgs *a, int classes, int64_t *n, RtErr *e) {
  int32_t *out = NULL;
  if (ends_with(a->labels, ".npy")) {
    if (a->repeat) {
      rt_err(e, "--repeat goes with a text file of labels, not %s", a->labels);
      return NULL;
    }
    RtTensor *t = NULL;
    if (rt_npy_read(a->labels, &t, e)) return NULL;
    if (t->dtype != RT_I32 || t->rank < 1 || t->rank > 2 || (t->rank == 2 && t->dim[1] != 1) || t->dim[0] < 1) {
      char buf[160];
      rt_err(e, "%s: labels must be integers [N] or [N, 1], not %s%s", a->labels, rt_dtype_name(t->dtype),
             rt_shape_str(t->rank, t->dim, buf, sizeof buf));
    } else if ((out = malloc(sizeof *out * (size_t)t->dim[0]))) {
      *n = t->dim[0];
      memcpy(out, t->data, sizeof *out * (size_t)*n);
      for (int64_t i = 0; i < *n; i++)
        if (out[i] < 0 || out[i] >= classes) {
          rt_err(e, "%s: label %d (row %lld) is not a class 0 .. %d", a->labels, out[i], (long long)i, classes - 1);
          free(out);
          out = NULL;
          break;
        }
    } else {
      rt_err(e, "out of memory");
    }
    rt_tensor_free(t);
    return out;
  }
  FILE *f = fopen(a->labels, "r");
  if (!f) {
    rt_err(e, "%s: cannot open the labels file", a->labels);
    return NULL;
  }
  uint64_t R = a->repeat ? a->repeat : 1;
  int64_t cap = 0, lines = 0;
  *n = 0;
  char line[1024];
  while (fgets(line, sizeof line, f)) {
    lines++;
    size_t len = strlen(line);
    while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = 0;
    if (len == 0) continue;
    int c = label_of(line, classes, a->labels, lines, e);
    if (c < 0) goto fail;
    if (*n + (int64_t)R > cap) {
      cap = (*n + (int64_t)R) * 2;
      int32_t *more = realloc(out, sizeof *out * (size_t)cap);
      if (!more) {
        rt_err(e, "out of memory");
        goto fail;
      }
      out = more;
    }
    for (uint64_t r = 0; r < R; r++) out[(*n)++] = c;
  }
  fclose(f);
  if (*n == 0) {
    free(out);
    rt_err(e, "%s: no labels in it", a->labels);
    return NULL;
  }
  return out;
fail:
  fclose(f);
  free(out);
  return NULL;
}

typedef struct {
  int classes;
  int64_t count, correct;
  int64_t *seen, *right; /* (classes) */
} Acc;

static int report(const RtProgram *p, const ClsArgs *a, const Acc *s, RtErr *e) {
  char title[2048], params[1200], label[160], value[96];
  snprintf(title, sizeof title, "eval classify: %s (config %s), %lld images of %s, parameters from %s", p->model,
           p->config, (long long)s->count, a->images ? a->images : a->data,
           rt_eval_params_str(&a->c, params, sizeof params));
  RtEvalReport *r = rt_eval_report_new("classify", title);
  rt_eval_report_str(r, "model", NULL, p->model);
  rt_eval_report_str(r, "config", NULL, p->config);
  rt_eval_report_str(r, "data", NULL, a->images ? a->images : a->data);
  if (a->labels) rt_eval_report_str(r, "labels", NULL, a->labels);
  rt_eval_report_str(r, "params", NULL, params);
  rt_eval_report_int(r, "count", "images", s->count);
  rt_eval_report_int(r, "correct", "read correctly", s->correct);
  rt_eval_report_num(r, "accuracy", "accuracy", (double)s->correct / (double)s->count, "%.4f", "");
  double *per = malloc(sizeof *per * (size_t)s->classes);
  for (int c = 0; c < s->classes; c++) {
    double acc = s->seen[c] ? (double)s->right[c] / (double)s->seen[c] : NAN;
    if (per) per[c] = acc;
    const char *name = rt_fashion_caption(c);
    snprintf(label, sizeof label, "  class %d%s%s%s", c, name ? " (" : "", name ? name : "", name ? ")" : "");
    if (s->seen[c]) snprintf(value, sizeof value, "%.4f of %lld", acc, (long long)s->seen[c]);
    else snprintf(value, sizeof value, "- (no images)");
    /* a row of the table only: the per-class figures go to JSON as arrays */
    char row[300];
    snprintf(row, sizeof row, "%-32s %s", label, value);
    rt_eval_report_note(r, row);
  }
  if (per) rt_eval_report_array(r, "per_class_accuracy", per, s->classes);
  double *seen = malloc(sizeof *seen * (size_t)s->classes);
  for (int c = 0; seen && c < s->classes; c++) seen[c] = (double)s->seen[c];
  if (seen) rt_eval_report_array(r, "per_class_count", seen, s->classes);
  free(per);
  free(seen);
  return rt_eval_report_print(r, a->c.json, stdout, e);
}

/* One batch of predictions against labels[0 .. rows). */
static int score(Acc *s, const int32_t *pred, const int32_t *label, int64_t rows, RtErr *e) {
  for (int64_t j = 0; j < rows; j++) {
    if (pred[j] < 0) return rt_err(e, "eval classify: entry 'predict' gave class %d", pred[j]);
    s->seen[label[j]]++;
    bool ok = pred[j] == label[j];
    s->right[label[j]] += ok;
    s->correct += ok;
  }
  s->count += rows;
  return 0;
}

int rt_eval_classify(RtProgram *p, int argc, char **argv, RtErr *e) {
  ClsArgs a;
  if (parse(argc, argv, &a, e)) return -1;
  int pr = rt_eval_entry(p, "predict", "eval classify", e);
  if (pr < 0) return -1;
  const RtEntrySpec *en = &p->entry[pr];
  const RtArgSpec *x = en->ninput == 1 ? &en->input[0] : NULL, *o = en->noutput >= 1 ? &en->output[0] : NULL;
  if (!x || !o || x->dtype != RT_F32 || x->rank != 4 || x->dim[1] != 3 || o->dtype != RT_I32 || o->rank != 1 ||
      o->dim[0] != x->dim[0])
    return rt_err(e, "eval classify: entry 'predict' of %s must take images f32[B, 3, S, S] and return i32[B]",
                  p->model);
  int lg = rt_program_entry(p, "logits");
  Acc s = {.classes = lg >= 0 && p->entry[lg].noutput >= 1 && p->entry[lg].output[0].rank == 2
                          ? (int)p->entry[lg].output[0].dim[1]
                          : 10};
  int64_t B = x->dim[0], row = 3 * x->dim[2] * x->dim[3], nlabels = 0, n = 0;
  int32_t *labels = NULL, batch_labels[4096];
  RtTensor *images = NULL, **in = NULL, **out = NULL;
  RtEvalStream st = {0};
  int rc = -1;
  s.seen = calloc((size_t)s.classes, sizeof *s.seen);
  s.right = calloc((size_t)s.classes, sizeof *s.right);
  if (!s.seen || !s.right) {
    rt_err(e, "out of memory");
    goto done;
  }
  if (B > 4096) {
    rt_err(e, "eval classify: a batch of %lld is more than 4096", (long long)B);
    goto done;
  }
  if (a.labels && !(labels = read_labels(&a, s.classes, &nlabels, e))) goto done;
  if (a.images) {
    if (rt_npy_read(a.images, &images, e)) goto done;
    char want[160], got[160];
    bool ok = images->dtype == RT_F32 && images->rank == 4 && images->dim[0] >= 1;
    for (int k = 1; ok && k < 4; k++) ok = images->dim[k] == x->dim[k];
    if (!ok) {
      rt_err(e, "%s: images must be f32[N, %s] for %s's 'predict', not %s%s", a.images,
             rt_shape_str(3, x->dim + 1, want, sizeof want) + 1, p->model, rt_dtype_name(images->dtype),
             rt_shape_str(images->rank, images->dim, got, sizeof got));
      goto done;
    }
    n = images->dim[0];
    if (a.count > (uint64_t)n) {
      rt_err(e, "--count %llu: %s has %lld images", (unsigned long long)a.count, a.images, (long long)n);
      goto done;
    }
    if (a.count) n = (int64_t)a.count;
    if (!(in = rt_eval_inputs_new(en, e))) goto done;
  } else {
    if (rt_eval_stream_open(&st, a.data, en, a.c.seed, a.count, "--count", e)) goto done;
    n = st.count;
    if (!a.labels && !rt_data_has_captions(st.d)) {
      rt_err(e, "eval classify --data %s: the dataset has no captions to take labels from: give --labels FILE", a.data);
      goto done;
    }
    if (!(in = rt_eval_inputs_new(en, e))) goto done;
  }
  if (labels && nlabels < n) {
    rt_err(e, "%s: %lld labels for %lld images", a.labels, (long long)nlabels, (long long)n);
    goto done;
  }
  if (labels && nlabels > n && !a.count) {
    rt_err(e, "%s: %lld labels for %lld images (use --count N to score only the first N)", a.labels,
           (long long)nlabels, (long long)n);
    goto done;
  }
  if (rt_eval_state(p, &a.c, e) || rt_program_prepare(p, pr, e)) goto done;
  for (int64_t done = 0; done < n;) {
    int64_t rows = n - done < B ? n - done : B;
    if (images) {
      for (int64_t j = 0; j < B; j++)
        memcpy(rt_f32(in[0]) + j * row, rt_f32(images) + (done + (j < rows ? j : rows - 1)) * row,
               sizeof(float) * (size_t)row);
    } else if (rt_eval_stream_next(&st, in, e) != rows) {
      goto done;
    }
    for (int64_t j = 0; j < rows; j++) {
      int c = labels ? labels[done + j] : label_of(rt_data_caption(st.d, j), s.classes, NULL, 0, e);
      if (c < 0) goto done;
      batch_labels[j] = c;
    }
    if (rt_eval_run(p, pr, in, &out, a.c.seed, e) || score(&s, rt_i32(out[0]), batch_labels, rows, e)) goto done;
    rt_eval_outputs_free(p, pr, out);
    out = NULL;
    done += rows;
  }
  rc = report(p, &a, &s, e);
done:
  rt_eval_outputs_free(p, pr, out);
  rt_eval_inputs_free(en, in);
  rt_tensor_free(images);
  rt_eval_stream_close(&st);
  free(labels);
  free(s.seen);
  free(s.right);
  return rc;
}
