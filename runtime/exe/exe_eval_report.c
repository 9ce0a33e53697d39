/* exe_eval_report.c — an evaluation's results as an aligned table or as one
 * JSON object (cJSON), from the same calls (exe_eval.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/exe/exe_eval.h"

#define REPORT_ROWS 64

struct RtEvalReport {
  cJSON *json;
  char *title;
  int n;
  char *label[REPORT_ROWS], *value[REPORT_ROWS]; /* value NULL: a note line */
};

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

RtEvalReport *rt_eval_report_new(const char *kind, const char *title) {
  RtEvalReport *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->json = cJSON_CreateObject();
  r->title = dup_str(title);
  cJSON_AddStringToObject(r->json, "eval", kind);
  return r;
}

static void add_row(RtEvalReport *r, const char *label, const char *value) {
  if (!r || !label || r->n == REPORT_ROWS) return;
  r->label[r->n] = dup_str(label);
  r->value[r->n] = value ? dup_str(value) : NULL;
  r->n++;
}

void rt_eval_report_num(RtEvalReport *r, const char *key, const char *label, double v, const char *fmt,
                        const char *unit) {
  if (!r) return;
  if (isfinite(v)) cJSON_AddNumberToObject(r->json, key, v);
  else cJSON_AddNullToObject(r->json, key);
  char buf[96];
  if (isfinite(v)) snprintf(buf, sizeof buf, fmt, v);
  else snprintf(buf, sizeof buf, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
  size_t at = strlen(buf);
  if (unit && *unit) snprintf(buf + at, sizeof buf - at, " %s", unit);
  add_row(r, label, buf);
}

void rt_eval_report_int(RtEvalReport *r, const char *key, const char *label, int64_t v) {
  if (!r) return;
  cJSON_AddNumberToObject(r->json, key, (double)v);
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  add_row(r, label, buf);
}

void rt_eval_report_str(RtEvalReport *r, const char *key, const char *label, const char *v) {
  if (!r) return;
  cJSON_AddStringToObject(r->json, key, v);
  add_row(r, label, v);
}

void rt_eval_report_array(RtEvalReport *r, const char *key, const double *v, int64_t n) {
  if (!r) return;
  cJSON *a = cJSON_AddArrayToObject(r->json, key);
  for (int64_t i = 0; a && i < n; i++)
    cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
}

void rt_eval_report_note(RtEvalReport *r, const char *text) { add_row(r, text, NULL); }

int rt_eval_report_print(RtEvalReport *r, bool json, FILE *f, RtErr *e) {
  if (!r || !r->json || !r->title) {
    if (r) cJSON_Delete(r->json);
    free(r ? r->title : NULL);
    free(r);
    return rt_err(e, "eval: out of memory");
  }
  int rc = 0;
  if (json) {
    char *text = cJSON_PrintUnformatted(r->json);
    if (text) fprintf(f, "%s\n", text);
    else rc = rt_err(e, "eval: out of memory");
    free(text);
  } else {
    size_t width = 0;
    for (int i = 0; i < r->n; i++)
      if (r->value[i] && strlen(r->label[i]) > width) width = strlen(r->label[i]);
    fprintf(f, "%s\n", r->title);
    for (int i = 0; i < r->n; i++) {
      if (r->value[i]) fprintf(f, "  %-*s  %s\n", (int)width, r->label[i], r->value[i]);
      else fprintf(f, "  %s\n", r->label[i]);
    }
  }
  for (int i = 0; i < r->n; i++) {
    free(r->label[i]);
    free(r->value[i]);
  }
  cJSON_Delete(r->json);
  free(r->title);
  free(r);
  return rc;
}
