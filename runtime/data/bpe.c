/* bpe.c — byte-pair encoding: training, encoding, decoding, files (see
 * bpe.h). */
#include "runtime/data/bpe.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/fileio.h"

struct RtBpe {
  int n;            /* ids */
  int vocab;        /* the vocabulary asked for, >= n */
  char **sym;       /* (n) each id's bytes, NUL-terminated */
  int *left, *right; /* (n) a merged id's parts; -1 for the unknown id and bytes */
  int nbytes;
  int byte_id[256]; /* 0 (unknown) for bytes the tokenizer has not got */
  /* (left, right) -> merged id, open addressing; key 0 = empty slot */
  uint64_t *mkey;
  int *mval;
  size_t mcap;
};

/* ---- a small hash map from u64 keys (never 0) to ints ---- */

static size_t slot_of(uint64_t key, size_t cap) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return (size_t)key & (cap - 1);
}

static uint64_t pair_key(int l, int r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

static int merged_id(const RtBpe *b, int l, int r) {
  if (!b->mcap) return -1;
  uint64_t k = pair_key(l, r);
  for (size_t s = slot_of(k, b->mcap);; s = (s + 1) & (b->mcap - 1)) {
    if (b->mkey[s] == k) return b->mval[s];
    if (b->mkey[s] == 0) return -1;
  }
}

/* Builds the (left, right) -> id index; -1 out of memory, -2 if two ids
 * merge the same pair. */
static int index_merges(RtBpe *b) {
  size_t cap = 16;
  while (cap < 2 * (size_t)b->n) cap *= 2;
  free(b->mkey);
  free(b->mval);
  b->mkey = calloc(cap, sizeof *b->mkey);
  b->mval = malloc(cap * sizeof *b->mval);
  b->mcap = cap;
  if (!b->mkey || !b->mval) return -1;
  for (int id = 0; id < b->n; id++) {
    if (b->left[id] < 0) continue;
    uint64_t k = pair_key(b->left[id], b->right[id]);
    size_t s = slot_of(k, cap);
    while (b->mkey[s] && b->mkey[s] != k) s = (s + 1) & (cap - 1);
    if (b->mkey[s]) return -2;
    b->mkey[s] = k;
    b->mval[s] = id;
  }
  return 0;
}

void rt_bpe_free(RtBpe *b) {
  if (!b) return;
  for (int i = 0; i < b->n; i++) free(b->sym[i]);
  free(b->sym);
  free(b->left);
  free(b->right);
  free(b->mkey);
  free(b->mval);
  free(b);
}

static RtBpe *bpe_new(int cap) {
  RtBpe *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->sym = calloc((size_t)cap, sizeof *b->sym);
  b->left = malloc(sizeof *b->left * (size_t)cap);
  b->right = malloc(sizeof *b->right * (size_t)cap);
  if (!b->sym || !b->left || !b->right) {
    rt_bpe_free(b);
    return NULL;
  }
  return b;
}

/* Appends id n: the unknown symbol, byte c (c >= 0, l < 0) or the merge of
 * l and r. */
static int add_symbol(RtBpe *b, int c, int l, int r) {
  char *s;
  if (l >= 0) {
    size_t a = strlen(b->sym[l]), z = strlen(b->sym[r]);
    if (!(s = malloc(a + z + 1))) return -1;
    memcpy(s, b->sym[l], a);
    memcpy(s + a, b->sym[r], z + 1);
  } else {
    if (!(s = calloc(1, 2))) return -1;
    s[0] = (char)c;
  }
  int id = b->n++;
  b->sym[id] = s;
  b->left[id] = l;
  b->right[id] = r;
  if (l < 0 && c > 0) b->byte_id[c] = id;
  return id;
}

int rt_bpe_size(const RtBpe *b) { return b->n; }

int rt_bpe_vocab(const RtBpe *b) { return b->vocab > b->n ? b->vocab : b->n; }

const char *rt_bpe_symbol(const RtBpe *b, int id) { return id >= 0 && id < b->n ? b->sym[id] : NULL; }

/* ---- words ---- */

static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* The next word of text from *at: its bytes (with the leading space unless
 * it is the first) into *w (grown as needed), its length returned; -1 at
 * the end. */
static int64_t next_word(const char **at, bool first, char **w, size_t *cap) {
  const unsigned char *p = (const unsigned char *)*at;
  while (*p && is_space(*p)) p++;
  if (!*p) return -1;
  const unsigned char *q = p;
  while (*q && !is_space(*q)) q++;
  size_t n = (size_t)(q - p) + !first;
  if (n + 1 > *cap) {
    char *more = realloc(*w, n + 64);
    if (!more) return -2;
    *w = more;
    *cap = n + 64;
  }
  if (!first) (*w)[0] = ' ';
  memcpy(*w + !first, p, (size_t)(q - p));
  (*w)[n] = 0;
  *at = (const char *)q;
  return (int64_t)n;
}

/* Merges every occurrence of the pair (l, r) in sym[0..*n) into id. */
static void merge_in(int *sym, int64_t *n, int l, int r, int id) {
  int64_t out = 0;
  for (int64_t i = 0; i < *n; i++) {
    if (i + 1 < *n && sym[i] == l && sym[i + 1] == r) {
      sym[out++] = id;
      i++;
    } else {
      sym[out++] = sym[i];
    }
  }
  *n = out;
}

/* A word as ids: its bytes, then the learned merges, lowest id first. */
static int64_t encode_word(const RtBpe *b, const char *w, int64_t len, int *sym) {
  for (int64_t i = 0; i < len; i++) sym[i] = b->byte_id[(unsigned char)w[i]];
  int64_t n = len;
  for (;;) {
    int best = -1, bl = 0, br = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
      int m = merged_id(b, sym[i], sym[i + 1]);
      if (m >= 0 && (best < 0 || m < best)) best = m, bl = sym[i], br = sym[i + 1];
    }
    if (best < 0) return n;
    merge_in(sym, &n, bl, br, best);
  }
}

int64_t rt_bpe_encode(const RtBpe *b, const char *text, int32_t *ids, int64_t cap) {
  char *w = NULL;
  size_t wcap = 0;
  int *sym = NULL;
  int64_t total = 0, len, symcap = 0;
  bool first = true;
  for (const char *at = text; (len = next_word(&at, first, &w, &wcap)) >= 0; first = false) {
    if (len > symcap) {
      int *more = realloc(sym, sizeof *sym * (size_t)len);
      if (!more) break;
      sym = more;
      symcap = len;
    }
    int64_t n = encode_word(b, w, len, sym);
    for (int64_t i = 0; i < n; i++, total++)
      if (total < cap) ids[total] = sym[i];
  }
  free(w);
  free(sym);
  return total;
}

int64_t rt_bpe_encode_padded(const RtBpe *b, const char *text, int vocab, int32_t *ids, int64_t len) {
  int64_t n = rt_bpe_encode(b, text, ids, len);
  for (int64_t p = n; p < len; p++) ids[p] = vocab + (int32_t)p;
  return n > len ? n - len : 0;
}

char *rt_bpe_decode(const RtBpe *b, const int32_t *ids, int64_t n) {
  size_t size = 1;
  for (int64_t i = 0; i < n; i++)
    if (ids[i] >= 0 && ids[i] < b->n) size += strlen(b->sym[ids[i]]);
  char *out = malloc(size), *at = out;
  if (!out) return NULL;
  for (int64_t i = 0; i < n; i++)
    if (ids[i] >= 0 && ids[i] < b->n) {
      size_t k = strlen(b->sym[ids[i]]);
      memcpy(at, b->sym[ids[i]], k);
      at += k;
    }
  *at = 0;
  return out;
}

/* ---- training ---- */

typedef struct {
  int *sym;
  int64_t n;
  int64_t count; /* occurrences in the corpus */
} Word;

typedef struct {
  Word *w;
  int64_t n, cap;
  char **text;      /* (cap) each unique word's bytes, for lookups */
  int64_t *slot;    /* hash of text -> index, -1 empty */
  size_t scap;
} Words;

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void words_free(Words *ws) {
  for (int64_t i = 0; i < ws->n; i++) {
    free(ws->w[i].sym);
    free(ws->text[i]);
  }
  free(ws->w);
  free(ws->text);
  free(ws->slot);
}

/* Counts word w (len bytes), adding it if new. */
static int words_add(Words *ws, const char *w, int64_t len) {
  if (2 * (size_t)(ws->n + 1) > ws->scap) { /* grow and rehash */
    size_t cap = ws->scap ? 2 * ws->scap : 256;
    int64_t *slot = malloc(cap * sizeof *slot);
    if (!slot) return -1;
    for (size_t s = 0; s < cap; s++) slot[s] = -1;
    for (int64_t i = 0; i < ws->n; i++) {
      size_t s = (size_t)str_hash(ws->text[i]) & (cap - 1);
      while (slot[s] >= 0) s = (s + 1) & (cap - 1);
      slot[s] = i;
    }
    free(ws->slot);
    ws->slot = slot;
    ws->scap = cap;
  }
  size_t s = (size_t)str_hash(w) & (ws->scap - 1);
  for (; ws->slot[s] >= 0; s = (s + 1) & (ws->scap - 1))
    if (strcmp(ws->text[ws->slot[s]], w) == 0) {
      ws->w[ws->slot[s]].count++;
      return 0;
    }
  if (ws->n == ws->cap) {
    int64_t cap = ws->cap ? 2 * ws->cap : 256;
    Word *nw = realloc(ws->w, sizeof *nw * (size_t)cap);
    if (nw) ws->w = nw;
    char **nt = realloc(ws->text, sizeof *nt * (size_t)cap);
    if (nt) ws->text = nt;
    if (!nw || !nt) return -1;
    ws->cap = cap;
  }
  Word *x = &ws->w[ws->n];
  x->sym = malloc(sizeof *x->sym * (size_t)len);
  ws->text[ws->n] = strdup(w);
  if (!x->sym || !ws->text[ws->n]) return -1;
  x->n = len;
  x->count = 1;
  for (int64_t i = 0; i < len; i++) x->sym[i] = (unsigned char)w[i]; /* bytes for now; ids once known */
  ws->slot[s] = ws->n++;
  return 0;
}

/* The most frequent adjacent pair over all words (ties: smallest ids, left
 * first); its count in *count (0 if there is none). */
static void best_pair(const Words *ws, int *bl, int *br, int64_t *count) {
  size_t need = 16;
  for (int64_t i = 0; i < ws->n; i++) need += (size_t)ws->w[i].n;
  size_t cap = 16;
  while (cap < 2 * need) cap *= 2;
  uint64_t *key = calloc(cap, sizeof *key);
  int64_t *val = calloc(cap, sizeof *val);
  *count = 0;
  for (int64_t i = 0; key && val && i < ws->n; i++) {
    const Word *x = &ws->w[i];
    for (int64_t j = 0; j + 1 < x->n; j++) {
      uint64_t k = pair_key(x->sym[j], x->sym[j + 1]);
      size_t s = slot_of(k, cap);
      while (key[s] && key[s] != k) s = (s + 1) & (cap - 1);
      key[s] = k;
      int64_t c = val[s] += x->count;
      int l = x->sym[j], r = x->sym[j + 1];
      if (c > *count || (c == *count && (l < *bl || (l == *bl && r < *br)))) *count = c, *bl = l, *br = r;
    }
  }
  free(key);
  free(val);
}

RtBpe *rt_bpe_train(const char *const *texts, int64_t n, int vocab, RtErr *e) {
  if (vocab < 2) {
    rt_err(e, "bpe: a vocabulary of %d ids is too small (the unknown id and at least one byte)", vocab);
    return NULL;
  }
  Words ws = {0};
  char *w = NULL;
  size_t wcap = 0;
  bool seen[256] = {false}, oom = false;
  for (int64_t t = 0; t < n && !oom; t++) {
    int64_t len;
    bool first = true;
    for (const char *at = texts[t]; (len = next_word(&at, first, &w, &wcap)) >= 0; first = false) {
      for (int64_t i = 0; i < len; i++) seen[(unsigned char)w[i]] = true;
      if (words_add(&ws, w, len)) oom = true;
    }
    if (len == -2) oom = true;
  }
  free(w);
  int nbytes = 0;
  for (int c = 1; c < 256; c++) nbytes += seen[c];
  RtBpe *b = oom ? NULL : bpe_new(vocab);
  if (!b) {
    words_free(&ws);
    rt_err(e, "bpe: out of memory");
    return NULL;
  }
  if (ws.n == 0 || nbytes + 1 > vocab) {
    if (ws.n == 0) rt_err(e, "bpe: the training text is empty");
    else
      rt_err(e, "bpe: the training text has %d distinct bytes, more than a vocabulary of %d ids holds", nbytes,
             vocab);
    words_free(&ws);
    rt_bpe_free(b);
    return NULL;
  }
  bool ok = add_symbol(b, 0, -1, -1) == 0; /* the unknown id */
  for (int c = 1; c < 256 && ok; c++)
    if (seen[c]) ok = add_symbol(b, c, -1, -1) >= 0;
  b->nbytes = nbytes;
  for (int64_t i = 0; i < ws.n; i++)
    for (int64_t j = 0; j < ws.w[i].n; j++) ws.w[i].sym[j] = b->byte_id[ws.w[i].sym[j]];
  while (ok && b->n < vocab) {
    int l = 0, r = 0;
    int64_t count;
    best_pair(&ws, &l, &r, &count);
    if (count < 2) break;
    int id = add_symbol(b, -1, l, r);
    ok = id >= 0;
    for (int64_t i = 0; ok && i < ws.n; i++) merge_in(ws.w[i].sym, &ws.w[i].n, l, r, id);
  }
  words_free(&ws);
  b->vocab = vocab;
  if (!ok || index_merges(b)) {
    rt_bpe_free(b);
    rt_err(e, "bpe: out of memory");
    return NULL;
  }
  return b;
}

/* ---- files ---- */

char *rt_bpe_json(const RtBpe *b) {
  cJSON *root = cJSON_CreateObject(), *bytes = cJSON_CreateArray(), *merges = cJSON_CreateArray();
  cJSON_AddStringToObject(root, "format", "dal-bpe");
  cJSON_AddNumberToObject(root, "version", 1);
  cJSON_AddNumberToObject(root, "vocab", rt_bpe_vocab(b));
  cJSON_AddItemToObject(root, "bytes", bytes);
  cJSON_AddItemToObject(root, "merges", merges);
  for (int id = 1; id < b->n; id++) {
    if (b->left[id] < 0) {
      cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)b->sym[id][0]));
    } else {
      cJSON *m = cJSON_CreateArray();
      cJSON_AddItemToArray(m, cJSON_CreateNumber(b->left[id]));
      cJSON_AddItemToArray(m, cJSON_CreateNumber(b->right[id]));
      cJSON_AddItemToArray(merges, m);
    }
  }
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!json) return NULL;
  char *text = strdup(json); /* the caller frees it with free() */
  cJSON_free(json);
  return text;
}

int rt_bpe_save(const RtBpe *b, const char *path, RtErr *e) {
  char *text = rt_bpe_json(b);
  if (!text) return rt_err(e, "%s: out of memory", path);
  RtChunk c[2] = {{text, strlen(text)}, {"\n", 1}};
  int rc = rt_write_file_atomic(path, c, 2, e);
  free(text);
  return rc;
}

static RtBpe *load_fail(RtBpe *b, cJSON *root, char *text, RtErr *e, const char *path, const char *what) {
  rt_err(e, "%s: not a dal BPE tokenizer: %s", path, what);
  rt_bpe_free(b);
  cJSON_Delete(root);
  free(text);
  return NULL;
}

static RtBpe *parse_owned(char *text, const char *path, RtErr *e);

RtBpe *rt_bpe_load(const char *path, RtErr *e) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_err(e, "%s: cannot open", path);
    return NULL;
  }
  char *text = NULL;
  size_t n = 0, cap = 0;
  for (size_t got = 1; got > 0;) {
    if (n + 4096 > cap) {
      char *more = realloc(text, cap = 2 * cap + 4096);
      if (!more) break;
      text = more;
    }
    got = fread(text + n, 1, cap - n - 1, f);
    n += got;
  }
  fclose(f);
  if (!text) {
    rt_err(e, "%s: out of memory", path);
    return NULL;
  }
  text[n] = 0;
  return parse_owned(text, path, e);
}

RtBpe *rt_bpe_parse(const char *json, const char *what, RtErr *e) {
  char *text = strdup(json ? json : "");
  if (!text) {
    rt_err(e, "%s: out of memory", what);
    return NULL;
  }
  return parse_owned(text, what, e);
}

/* A tokenizer from JSON 'text' (malloc'd; freed here), 'path' naming it in messages. */
static RtBpe *parse_owned(char *text, const char *path, RtErr *e) {
  cJSON *root = cJSON_Parse(text);
  if (!root) return load_fail(NULL, NULL, text, e, path, "not JSON");
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(root, "bytes");
  const cJSON *merges = cJSON_GetObjectItemCaseSensitive(root, "merges");
  if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "dal-bpe") != 0)
    return load_fail(NULL, root, text, e, path, "\"format\" is not \"dal-bpe\"");
  if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
    return load_fail(NULL, root, text, e, path, "\"version\" is not 1");
  if (!cJSON_IsArray(bytes) || !cJSON_IsArray(merges))
    return load_fail(NULL, root, text, e, path, "\"bytes\" and \"merges\" must be arrays");
  int nb = cJSON_GetArraySize(bytes), nm = cJSON_GetArraySize(merges);
  RtBpe *b = bpe_new(1 + nb + nm);
  if (!b || add_symbol(b, 0, -1, -1) < 0) return load_fail(b, root, text, e, path, "out of memory");
  int prev = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, bytes) {
    double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
    if (v <= prev || v > 255 || v != (int)v) /* range first: (int) of a huge double is undefined */
      return load_fail(b, root, text, e, path, "\"bytes\" must be ascending integers in 1..255");
    prev = (int)v;
    if (add_symbol(b, prev, -1, -1) < 0) return load_fail(b, root, text, e, path, "out of memory");
  }
  b->nbytes = nb;
  size_t spelled = 0;
  cJSON_ArrayForEach(it, merges) {
    const cJSON *l = cJSON_GetArrayItem(it, 0), *r = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(l) || !cJSON_IsNumber(r) ||
        l->valuedouble < 1 || r->valuedouble < 1 || l->valuedouble >= b->n || r->valuedouble >= b->n ||
        l->valuedouble != (int)l->valuedouble || r->valuedouble != (int)r->valuedouble)
      return load_fail(b, root, text, e, path, "each merge must be [left, right], both ids made before it");
    spelled += strlen(b->sym[(int)l->valuedouble]) + strlen(b->sym[(int)r->valuedouble]);
    if (spelled > RT_BPE_MAX_SPELLED)
      return load_fail(b, root, text, e, path, "its merges spell more than 64 MiB of symbols");
    if (add_symbol(b, -1, (int)l->valuedouble, (int)r->valuedouble) < 0)
      return load_fail(b, root, text, e, path, "out of memory");
  }
  int rc = index_merges(b);
  if (rc) return load_fail(b, root, text, e, path, rc == -2 ? "a pair is merged twice" : "out of memory");
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(root, "vocab");
  if (vocab && (!cJSON_IsNumber(vocab) || vocab->valuedouble < b->n || vocab->valuedouble > (1 << 30) ||
                vocab->valuedouble != (int)vocab->valuedouble))
    return load_fail(b, root, text, e, path, "\"vocab\" must be an integer, at least the number of ids");
  b->vocab = vocab ? (int)vocab->valuedouble : b->n;
  cJSON_Delete(root);
  free(text);
  return b;
}
