/* safetensors.c — reading and writing safetensors checkpoints (see safetensors.h). */
#include "runtime/io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/core/numerics.h"
#include "runtime/io/fileio.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors.c assumes a little-endian host");

/* The reference implementation refuses headers above 100 MB; so do we, which
 * also bounds what a corrupt length can make us allocate. */
#define ST_MAX_HEADER (100u * 1000 * 1000)
/* Integers in the JSON header come through cJSON as doubles: exact up to 2^53. */
#define ST_MAX_INT 9007199254740992.0

typedef struct {
  const char *name; /* points into the cJSON tree */
  RtDType dtype;
  int rank;
  int64_t dim[RT_MAX_RANK];
  uint64_t begin, end; /* byte range in the data buffer */
} StEntry;

static int cmp_entry_name(const void *a, const void *b) {
  return strcmp((*(const StEntry *const *)a)->name, (*(const StEntry *const *)b)->name);
}

static int cmp_entry_offset(const void *a, const void *b) {
  const StEntry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* A non-negative integer JSON number (exact in a double). */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return -1;
  double v = j->valuedouble;
  if (!(v >= 0 && v <= ST_MAX_INT) || v != (double)(uint64_t)v) return -1;
  *out = (uint64_t)v;
  return 0;
}

/* Fills 'en' from the header entry 'j' ({"dtype", "shape", "data_offsets"})
 * and checks it against the buffer of 'buf_size' bytes. */
static int parse_entry(const cJSON *j, StEntry *en, uint64_t buf_size, const char *path, RtErr *e) {
  const char *name = en->name;
  if (!cJSON_IsObject(j)) return rt_err(e, "%s: tensor '%s': header entry is not an object", path, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
  if (!cJSON_IsString(dt)) return rt_err(e, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
  if (strcmp(dt->valuestring, "F32") == 0) en->dtype = RT_F32;
  else if (strcmp(dt->valuestring, "I32") == 0) en->dtype = RT_I32;
  else
    return rt_err(e, "%s: tensor '%s': unsupported dtype \"%s\" (dal reads F32 and I32)", path, name,
                  dt->valuestring);
  if (!cJSON_IsArray(sh)) return rt_err(e, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
  int rank = cJSON_GetArraySize(sh);
  if (rank > RT_MAX_RANK)
    return rt_err(e, "%s: tensor '%s': rank %d exceeds dal's maximum of %d", path, name, rank, RT_MAX_RANK);
  en->rank = 0;
  uint64_t bytes = 4; /* F32 and I32 */
  const cJSON *d;
  cJSON_ArrayForEach(d, sh) {
    uint64_t v;
    if (json_uint(d, &v) != 0)
      return rt_err(e, "%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, en->rank);
    if (__builtin_mul_overflow(bytes, v, &bytes) || bytes > (uint64_t)INT64_MAX)
      return rt_err(e, "%s: tensor '%s': shape is too large", path, name);
    en->dim[en->rank++] = (int64_t)v;
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &en->begin) != 0 ||
      json_uint(off->child->next, &en->end) != 0)
    return rt_err(e, "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative integers", path,
                  name);
  if (en->begin > en->end)
    return rt_err(e, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path, name,
                  (unsigned long long)en->begin, (unsigned long long)en->end);
  if (en->end > buf_size)
    return rt_err(e, "%s: tensor '%s': data_offsets [%llu, %llu] go past the end of the %llu-byte data buffer",
                  path, name, (unsigned long long)en->begin, (unsigned long long)en->end,
                  (unsigned long long)buf_size);
  char sbuf[160];
  if (en->end - en->begin != bytes)
    return rt_err(e, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape %s of %s needs %llu",
                  path, name, (unsigned long long)en->begin, (unsigned long long)en->end,
                  (unsigned long long)(en->end - en->begin), rt_shape_str(en->rank, en->dim, sbuf, sizeof sbuf),
                  dt->valuestring, (unsigned long long)bytes);
  return 0;
}

static int check_metadata(const cJSON *j, const char *path, RtErr *e) {
  if (!cJSON_IsObject(j)) return rt_err(e, "%s: \"__metadata__\" is not an object", path);
  const cJSON *v;
  cJSON_ArrayForEach(v, j) {
    if (!cJSON_IsString(v)) return rt_err(e, "%s: \"__metadata__\" value \"%s\" is not a string", path, v->string);
  }
  return 0;
}

/* Checks names are unique and the entries tile [0, buf_size) exactly; sorts
 * 'en' by offset. */
static int check_layout(StEntry *en, int n, uint64_t buf_size, const char *path, RtErr *e) {
  StEntry **by_name = malloc((size_t)(n ? n : 1) * sizeof *by_name);
  if (!by_name) return rt_err(e, "%s: out of memory", path);
  for (int i = 0; i < n; i++) by_name[i] = &en[i];
  qsort(by_name, (size_t)n, sizeof *by_name, cmp_entry_name);
  for (int i = 1; i < n; i++) {
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
      rt_err(e, "%s: tensor '%s' appears twice in the header", path, by_name[i]->name);
      free(by_name);
      return -1;
    }
  }
  free(by_name);
  qsort(en, (size_t)n, sizeof *en, cmp_entry_offset);
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    if (en[i].begin < at)
      return rt_err(e, "%s: tensor '%s' overlaps tensor '%s' in the data buffer", path, en[i].name,
                    en[i - 1].name);
    if (en[i].begin > at)
      return rt_err(e, "%s: bytes %llu..%llu of the data buffer belong to no tensor (before tensor '%s')", path,
                    (unsigned long long)at, (unsigned long long)en[i].begin, en[i].name);
    at = en[i].end;
  }
  if (at != buf_size)
    return rt_err(e, "%s: bytes %llu..%llu at the end of the data buffer belong to no tensor", path,
                  (unsigned long long)at, (unsigned long long)buf_size);
  return 0;
}

/* Parses the header JSON into entries (*out_en, *out_n; names point into
 * *out_root, which the caller frees). */
static int parse_header(const char *text, size_t len, uint64_t buf_size, const char *path, cJSON **out_root,
                        StEntry **out_en, int *out_n, RtMeta *meta, RtErr *e) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    return rt_err(e, "%s: the header is not valid JSON (error near byte %zu of %zu)", path, at, len);
  }
  *out_root = root;
  /* Anything but trailing spaces after the JSON value is corruption. */
  for (const char *p = end; p && p < text + len; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
      return rt_err(e, "%s: unexpected bytes after the JSON header (at byte %zu)", path, (size_t)(p - text));
  if (!cJSON_IsObject(root)) return rt_err(e, "%s: the header is not a JSON object", path);
  int n = 0, cap = cJSON_GetArraySize(root);
  StEntry *en = calloc((size_t)(cap ? cap : 1), sizeof *en);
  if (!en) return rt_err(e, "%s: out of memory", path);
  *out_en = en;
  const cJSON *j;
  cJSON_ArrayForEach(j, root) {
    if (strcmp(j->string, "__metadata__") == 0) {
      if (check_metadata(j, path, e) != 0) return -1;
      if (meta) {
        const cJSON *v;
        cJSON_ArrayForEach(v, j) rt_meta_set(meta, v->string, v->valuestring);
      }
      continue;
    }
    en[n].name = j->string;
    if (parse_entry(j, &en[n], buf_size, path, e) != 0) return -1;
    n++;
  }
  *out_n = n;
  return check_layout(en, n, buf_size, path, e);
}

static int st_read_file(FILE *f, const char *path, RtTensorList **out, RtMeta *meta, RtErr *e) {
  struct stat st;
  if (fstat(fileno(f), &st) != 0) return rt_err(e, "%s: cannot stat: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return rt_err(e, "%s: not a regular file", path);
  uint64_t fsize = (uint64_t)st.st_size;
  unsigned char lenb[8];
  if (fsize < 8 || fread(lenb, 1, 8, f) != 8)
    return rt_err(e, "%s: not a safetensors file (%llu bytes, shorter than the 8-byte header length)", path,
                  (unsigned long long)fsize);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
  if (hlen > fsize - 8)
    return rt_err(e, "%s: header length %llu exceeds the %llu bytes after the length field (truncated or not a "
                  "safetensors file)", path, (unsigned long long)hlen, (unsigned long long)(fsize - 8));
  if (hlen > ST_MAX_HEADER)
    return rt_err(e, "%s: header length %llu is larger than the 100 MB limit", path, (unsigned long long)hlen);
  char *text = malloc(hlen + 1);
  if (!text) return rt_err(e, "%s: out of memory", path);
  if (fread(text, 1, hlen, f) != hlen) {
    free(text);
    return rt_err(e, "%s: read error in the header", path);
  }
  text[hlen] = 0;
  uint64_t buf_size = fsize - 8 - hlen;
  cJSON *root = NULL;
  StEntry *en = NULL;
  int n = 0;
  int rc = parse_header(text, hlen, buf_size, path, &root, &en, &n, meta, e);
  RtTensorList *l = NULL;
  if (rc == 0) {
    /* Names are unique (checked), so fill the list directly rather than
     * through rt_list_put's linear search. */
    l = rt_list_new();
    l->name = calloc((size_t)(n ? n : 1), sizeof *l->name);
    l->tensor = calloc((size_t)(n ? n : 1), sizeof *l->tensor);
    if (!l->name || !l->tensor) rc = rt_err(e, "%s: out of memory", path);
    else l->cap = n;
  }
  /* The buffer is read front to back (en is sorted by offset). */
  for (int i = 0; rc == 0 && i < n; i++) {
    RtTensor *x = rt_tensor_new(en[i].dtype, en[i].rank, en[i].dim, e);
    if (!x) {
      if (e) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        rt_err(e, "%s: tensor '%s': %s", path, en[i].name, msg);
      }
      rc = -1;
      break;
    }
    size_t name_len = strlen(en[i].name) + 1;
    l->name[i] = malloc(name_len);
    l->tensor[i] = x;
    l->n = i + 1;
    if (!l->name[i]) {
      rc = rt_err(e, "%s: out of memory", path);
      break;
    }
    memcpy(l->name[i], en[i].name, name_len);
    size_t bytes = rt_tensor_bytes(x);
    if (fread(x->data, 1, bytes, f) != bytes)
      rc = rt_err(e, "%s: tensor '%s': read error in the data: %s", path, en[i].name,
                  ferror(f) ? strerror(errno) : "unexpected end of file");
  }
  free(text);
  free(en);
  cJSON_Delete(root);
  if (rc != 0) {
    rt_list_free(l);
    return -1;
  }
  *out = l;
  return 0;
}

/* Non-finite values in a loaded file are an error unless --allow-nonfinite
 * (runtime/core/numerics.h). */
static int check_finite(const char *path, const RtTensorList *l, RtErr *e) {
  for (int i = 0; i < l->n; i++) {
    char what[1200];
    snprintf(what, sizeof what, "%s: tensor '%s'", path, l->name[i]);
    if (rt_numerics_check_loaded(what, l->tensor[i], e)) return -1;
  }
  return 0;
}

int rt_safetensors_read(const char *path, RtTensorList **out, RtErr *e) {
  return rt_safetensors_read_meta(path, out, NULL, e);
}

int rt_safetensors_read_meta(const char *path, RtTensorList **out, RtMeta **meta, RtErr *e) {
  *out = NULL;
  if (meta) *meta = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return rt_err(e, "%s: cannot open: %s", path, strerror(errno));
  RtMeta *m = meta ? rt_meta_new() : NULL;
  int rc = st_read_file(f, path, out, m, e);
  fclose(f);
  if (rc == 0 && (rc = check_finite(path, *out, e)) != 0) {
    rt_list_free(*out);
    *out = NULL;
  }
  if (rc != 0) rt_meta_free(m);
  else if (meta) *meta = m;
  return rc;
}

/* ---- metadata ---- */

static void *meta_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "dal runtime: out of memory\n");
    abort();
  }
  return q;
}

static char *meta_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(meta_xrealloc(NULL, n), s, n);
}

RtMeta *rt_meta_new(void) {
  RtMeta *m = meta_xrealloc(NULL, sizeof *m);
  memset(m, 0, sizeof *m);
  return m;
}

void rt_meta_set(RtMeta *m, const char *key, const char *value) {
  for (int i = 0; i < m->n; i++)
    if (strcmp(m->key[i], key) == 0) {
      free(m->value[i]);
      m->value[i] = meta_strdup(value);
      return;
    }
  m->key = meta_xrealloc(m->key, (size_t)(m->n + 1) * sizeof *m->key);
  m->value = meta_xrealloc(m->value, (size_t)(m->n + 1) * sizeof *m->value);
  m->key[m->n] = meta_strdup(key);
  m->value[m->n] = meta_strdup(value);
  m->n++;
}

const char *rt_meta_get(const RtMeta *m, const char *key) {
  for (int i = 0; m && i < m->n; i++)
    if (strcmp(m->key[i], key) == 0) return m->value[i];
  return NULL;
}

void rt_meta_free(RtMeta *m) {
  if (!m) return;
  for (int i = 0; i < m->n; i++) {
    free(m->key[i]);
    free(m->value[i]);
  }
  free(m->key);
  free(m->value);
  free(m);
}

/* ---- writing ---- */

typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} StrBuf;

static void sb_add(StrBuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void sb_str(StrBuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_u64(StrBuf *b, uint64_t v) {
  char num[32];
  int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
  sb_add(b, num, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void sb_json_string(StrBuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      sb_add(b, esc, 2);
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      sb_add(b, esc, 6);
    } else {
      sb_add(b, s, 1);
    }
  }
  sb_add(b, "\"", 1);
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Rejects lists that would not make a valid file. */
static int check_list(const RtTensorList *l, const char *path, RtErr *e) {
  if (!l) return rt_err(e, "%s: no tensor list to write", path);
  for (int i = 0; i < l->n; i++) {
    const char *name = l->name[i];
    const RtTensor *t = l->tensor[i];
    if (!name) return rt_err(e, "%s: tensor %d has no name", path, i);
    if (strcmp(name, "__metadata__") == 0) return rt_err(e, "%s: \"__metadata__\" is not a valid tensor name", path);
    if (!t || rt_dtype_size(t->dtype) == 0 || t->rank < 0 || t->rank > RT_MAX_RANK)
      return rt_err(e, "%s: tensor '%s' is missing or invalid", path, name);
  }
  const char **names = malloc((size_t)(l->n ? l->n : 1) * sizeof *names);
  if (!names) return rt_err(e, "%s: out of memory", path);
  for (int i = 0; i < l->n; i++) names[i] = l->name[i];
  qsort(names, (size_t)l->n, sizeof *names, cmp_str_ptr);
  int rc = 0;
  for (int i = 1; i < l->n && rc == 0; i++)
    if (strcmp(names[i - 1], names[i]) == 0) rc = rt_err(e, "%s: tensor '%s' appears twice in the list", path, names[i]);
  free(names);
  return rc;
}

int rt_safetensors_write(const char *path, const RtTensorList *l, RtErr *e) {
  return rt_safetensors_write_meta(path, l, NULL, e);
}

int rt_safetensors_write_meta(const char *path, const RtTensorList *l, const RtMeta *meta, RtErr *e) {
  if (check_list(l, path, e) != 0) return -1;
  StrBuf h = {0};
  sb_str(&h, "{\"__metadata__\":{\"format\":");
  const char *format = rt_meta_get(meta, "format");
  sb_json_string(&h, format ? format : "pt");
  for (int i = 0; meta && i < meta->n; i++) {
    if (strcmp(meta->key[i], "format") == 0) continue;
    sb_str(&h, ",");
    sb_json_string(&h, meta->key[i]);
    sb_str(&h, ":");
    sb_json_string(&h, meta->value[i]);
  }
  sb_str(&h, "}");
  uint64_t at = 0;
  for (int i = 0; i < l->n; i++) {
    const RtTensor *t = l->tensor[i];
    sb_str(&h, ",");
    sb_json_string(&h, l->name[i]);
    sb_str(&h, t->dtype == RT_F32 ? ":{\"dtype\":\"F32\",\"shape\":[" : ":{\"dtype\":\"I32\",\"shape\":[");
    for (int k = 0; k < t->rank; k++) {
      if (k) sb_str(&h, ",");
      sb_u64(&h, (uint64_t)t->dim[k]);
    }
    sb_str(&h, "],\"data_offsets\":[");
    sb_u64(&h, at);
    sb_str(&h, ",");
    at += rt_tensor_bytes(t);
    sb_u64(&h, at);
    sb_str(&h, "]}");
  }
  sb_str(&h, "}");
  /* Spaces up to a multiple of 8 so the data buffer starts aligned. */
  while (!h.oom && (8 + h.len) % 8 != 0) sb_str(&h, " ");
  if (h.oom) {
    free(h.s);
    return rt_err(e, "%s: out of memory", path);
  }
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)h.len >> (8 * i));

  RtAtomicFile *f = rt_atomic_open(path, e);
  int rc = f ? 0 : -1;
  if (rc == 0) rc = rt_atomic_write(f, lenb, 8, e);
  if (rc == 0) rc = rt_atomic_write(f, h.s, h.len, e);
  for (int i = 0; rc == 0 && i < l->n; i++) rc = rt_atomic_write(f, l->tensor[i]->data, rt_tensor_bytes(l->tensor[i]), e);
  free(h.s);
  if (rc != 0) {
    rt_atomic_abort(f);
    return -1;
  }
  if (rt_atomic_commit(f, e)) return -1;
  for (int i = 0; i < l->n; i++) rt_numerics_warn_written(path, l->name[i], l->tensor[i]);
  return 0;
}
