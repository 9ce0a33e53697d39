/* data_tokens.c — token caches: `tokenize`'s file of text ids and image
 * tokens per example, written here, and the `tokens:FILE` dataset that
 * serves them in the order the source dataset would have (see data.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/data_impl.h"
#include "runtime/io/safetensors.h"

#define CACHE_KIND "token-cache"

typedef struct {
  char *path;
  RtTensorList *list;  /* "text" [N, Lt], "image" [N, T] */
  RtMeta *meta;
  const RtTensor *text, *image;
  int text_input, image_input;
  int64_t count;       /* N */
  char source[512];    /* dal.data */
} Tokens;

static void tokens_free(void *impl) {
  Tokens *t = impl;
  if (!t) return;
  rt_list_free(t->list);
  rt_meta_free(t->meta);
  free(t->path);
  free(t);
}

static int tokens_load(RtDataset *d, int64_t j, uint64_t k, RtTensor *const *inputs, RtErr *e) {
  const Tokens *t = d->impl;
  if (k >= (uint64_t)t->count)
    return rt_err(e, "tokens:%s: the batch needs example %llu of %s, but the cache holds examples 0 .. %lld only "
                     "(make one with more: tokenize --count)", t->path, (unsigned long long)k, t->source,
                  (long long)t->count - 1);
  int64_t lt = t->text->dim[1], T = t->image->dim[1];
  memcpy(rt_i32(inputs[t->text_input]) + j * lt, rt_i32(t->text) + (int64_t)k * lt, sizeof(int32_t) * (size_t)lt);
  memcpy(rt_i32(inputs[t->image_input]) + j * T, rt_i32(t->image) + (int64_t)k * T, sizeof(int32_t) * (size_t)T);
  return 0;
}

static int tokens_check_steps(RtDataset *d, uint64_t first, uint64_t last, RtErr *e) {
  const Tokens *t = d->impl;
  uint64_t B = (uint64_t)d->batch, n = (uint64_t)t->count;
  if (last > UINT64_MAX / B) return rt_err(e, "dataset tokens: %llu steps are too many", (unsigned long long)last);
  if (d->size == 0) { /* example i is row i */
    if (last * B <= n) return 0;
    uint64_t step = n / B > first ? n / B : first;
    return rt_err(e, "tokens:%s: step %llu needs examples %llu .. %llu of %s, but the cache holds examples 0 .. %llu "
                     "only (%llu steps of batch %llu need tokenize --count %llu)", t->path, (unsigned long long)step,
                  (unsigned long long)(step * B), (unsigned long long)(step * B + B - 1), t->source,
                  (unsigned long long)n - 1, (unsigned long long)last, (unsigned long long)B,
                  (unsigned long long)(last * B));
  }
  if (n == (uint64_t)d->size) return 0;
  for (uint64_t i = first * B; i < last * B; i++) {
    uint64_t k = (uint64_t)rt_epoch_order_pick(&d->order, d->seed, i);
    if (k >= n)
      return rt_err(e, "tokens:%s: step %llu needs example %llu of %s, but the cache holds examples 0 .. %llu only "
                       "(make it with all %lld: tokenize without --count)", t->path, (unsigned long long)(i / B),
                    (unsigned long long)k, t->source, (unsigned long long)n - 1, (long long)d->size);
  }
  return 0;
}

static int tokens_check_tokenizer(RtDataset *d, const RtBpe *tok, const char *path, RtErr *e) {
  const Tokens *t = d->impl;
  char fp[17];
  rt_bpe_fingerprint(tok, fp);
  const char *want = rt_meta_get(t->meta, "dal.tokenizer.hash");
  if (want && strcmp(want, fp) != 0) {
    const char *made = rt_meta_get(t->meta, "dal.tokenizer");
    return rt_err(e, "--tokenizer %s (fingerprint %s) is not the tokenizer the text ids of %s were made with (%s, "
                     "fingerprint %s)", path, fp, t->path, made ? made : "?", want);
  }
  return 0;
}

/* Metadata 'key' as a decimal u64; absent or malformed is an error. */
static int meta_u64(const Tokens *t, const char *key, uint64_t *out, RtErr *e) {
  const char *s = rt_meta_get(t->meta, key);
  char *end;
  if (!s || *s < '0' || *s > '9' || (*out = strtoull(s, &end, 10), *end))
    return rt_err(e, "%s: the token cache's metadata \"%s\" is %s%s%s, not a non-negative integer", t->path, key,
                  s ? "\"" : "missing", s ? s : "", s ? "\"" : "");
  return 0;
}

/* The cache's tensor 'name': i32 [N, cols]. */
static const RtTensor *cache_tensor(const Tokens *t, const char *name, RtErr *e) {
  const RtTensor *x = rt_list_get(t->list, name);
  char buf[160];
  if (!x) {
    rt_err(e, "%s: the token cache has no tensor '%s' (it needs \"text\" i32[N, Lt] and \"image\" i32[N, g*g])",
           t->path, name);
    return NULL;
  }
  if (x->dtype != RT_I32 || x->rank != 2 || x->dim[0] < 1) {
    rt_err(e, "%s: the token cache's '%s' must be i32[N, ...] with N >= 1, not %s%s", t->path, name,
           rt_dtype_name(x->dtype), rt_shape_str(x->rank, x->dim, buf, sizeof buf));
    return NULL;
  }
  return x;
}

/* The entry's input 'name' fed by rows of 'x' [N, cols]: i32 [B, cols]
 * (or, for the image, [B, g, g] with g*g = cols). */
static int entry_input(RtDataset *d, const Tokens *t, const char *name, const RtTensor *x, RtErr *e) {
  const RtEntrySpec *en = d->entry;
  int i = rt_entry_input(en, name);
  char names[512], want[160], got[160];
  if (i < 0)
    return rt_err(e, "dataset tokens:%s fills the inputs 'text' and 'image', but entry '%s' has no input '%s' (its "
                     "inputs: %s)", t->path, en->name, name, rt_data_input_names(en, names, sizeof names));
  const RtArgSpec *a = &en->input[i];
  int64_t per_row = 1;
  for (int k = 1; k < a->rank; k++) per_row *= a->dim[k];
  bool ok = a->dtype == RT_I32 && (a->rank == 2 || (a->rank == 3 && strcmp(name, "image") == 0)) && per_row == x->dim[1];
  if (!ok)
    return rt_err(e, "tokens:%s: input '%s' of entry '%s' is %s%s, but the cache's rows are i32%s", t->path, name,
                  en->name, rt_dtype_name(a->dtype), rt_shape_str(a->rank, a->dim, got, sizeof got),
                  rt_shape_str(1, &x->dim[1], want, sizeof want));
  if (d->batch && a->dim[0] != d->batch)
    return rt_err(e, "tokens:%s: inputs 'text' and 'image' of entry '%s' have different batch sizes", t->path, en->name);
  d->batch = a->dim[0];
  d->fills[i] = true;
  return i;
}

int rt_data_open_tokens(RtDataset *d, const char *args, RtErr *e) {
  if (!*args) return rt_err(e, "dataset tokens needs a file: tokens:FILE (a token cache made by `tokenize`)");
  Tokens *t = calloc(1, sizeof *t);
  if (!t || !(t->path = strdup(args))) {
    free(t);
    return rt_err(e, "dataset tokens: out of memory");
  }
  d->impl = t;
  d->free_impl = tokens_free;
  d->load = tokens_load;
  d->check_tokenizer = tokens_check_tokenizer;
  d->check_steps = tokens_check_steps;
  if (rt_safetensors_read_meta(args, &t->list, &t->meta, e)) return -1;
  const char *kind = rt_meta_get(t->meta, "dal.kind"), *source = rt_meta_get(t->meta, "dal.data");
  if (!kind || strcmp(kind, CACHE_KIND) != 0)
    return rt_err(e, "%s: not a token cache (its metadata has no dal.kind \"%s\"; `tokenize` makes them)", args,
                  CACHE_KIND);
  if (!source || !*source) return rt_err(e, "%s: the token cache does not say what dataset it was made from (dal.data)", args);
  snprintf(t->source, sizeof t->source, "%s", source);
  uint64_t count, size, seed;
  if (meta_u64(t, "dal.count", &count, e) || meta_u64(t, "dal.data.size", &size, e) || meta_u64(t, "dal.seed", &seed, e))
    return -1;
  if (!(t->text = cache_tensor(t, "text", e)) || !(t->image = cache_tensor(t, "image", e))) return -1;
  t->count = t->text->dim[0];
  if (t->image->dim[0] != t->count || (uint64_t)t->count != count)
    return rt_err(e, "%s: the token cache's 'text' has %lld rows and 'image' %lld, its metadata says %llu", args,
                  (long long)t->text->dim[0], (long long)t->image->dim[0], (unsigned long long)count);
  if ((t->text_input = entry_input(d, t, "text", t->text, e)) < 0 ||
      (t->image_input = entry_input(d, t, "image", t->image, e)) < 0)
    return -1;
  if (size == 0) {
    /* A generated stream: example i is scene i of the cache's seed. */
    if (seed != d->seed)
      return rt_err(e, "tokens:%s was made from %s with seed %llu, and that stream depends on the seed: this run's "
                       "seed is %llu (run with --seed %llu, or make a cache with tokenize --seed %llu)", args, source,
                    (unsigned long long)seed, (unsigned long long)d->seed, (unsigned long long)seed,
                    (unsigned long long)d->seed);
    return 0;
  }
  /* Stored examples: the source's shuffle over all of them, by the same code. */
  d->order_tag = rt_data_kind_tag(source);
  if (d->order_tag == 0)
    return rt_err(e, "%s: the token cache was made from '%s', which has no stored examples to shuffle", args, source);
  if (count > size)
    return rt_err(e, "%s: the token cache holds %llu examples of '%s', which has only %llu", args,
                  (unsigned long long)count, source, (unsigned long long)size);
  d->size = (int64_t)size;
  return 0;
}

int rt_token_cache_write(const char *path, const RtTensor *text, const RtTensor *image, const RtTokenCacheInfo *info,
                         RtErr *e) {
  if (text->dtype != RT_I32 || text->rank != 2 || image->dtype != RT_I32 || image->rank != 2 ||
      text->dim[0] != image->dim[0])
    return rt_err(e, "%s: a token cache holds text i32[N, Lt] and image i32[N, T]", path);
  RtMeta *m = rt_meta_new();
  char num[32], fp[17];
  const RtBpe *b = rt_text_encoder_bpe(info->text);
  rt_meta_set(m, "dal.kind", CACHE_KIND);
  rt_meta_set(m, "dal.data", info->data);
  snprintf(num, sizeof num, "%" PRId64, info->size);
  rt_meta_set(m, "dal.data.size", num);
  snprintf(num, sizeof num, "%" PRId64, text->dim[0]);
  rt_meta_set(m, "dal.count", num);
  snprintf(num, sizeof num, "%" PRIu64, info->seed);
  rt_meta_set(m, "dal.seed", num);
  rt_meta_set(m, "dal.tokenizer", rt_text_encoder_path(info->text));
  snprintf(num, sizeof num, "%d", rt_bpe_vocab(b));
  rt_meta_set(m, "dal.tokenizer.vocab", num);
  rt_bpe_fingerprint(b, fp);
  rt_meta_set(m, "dal.tokenizer.hash", fp);
  rt_meta_set(m, "dal.model", info->model ? info->model : "");
  rt_meta_set(m, "dal.config", info->config ? info->config : "");
  rt_meta_set(m, "dal.fn", info->fn ? info->fn : "");
  rt_meta_set(m, "dal.params", info->params ? info->params : "");
  rt_meta_set(m, "dal.init", info->init ? info->init : "");
  char *names[2] = {"text", "image"};
  RtTensor *tensors[2] = {(RtTensor *)text, (RtTensor *)image};
  RtTensorList l = {.n = 2, .cap = 2, .name = names, .tensor = tensors};
  int rc = rt_safetensors_write_meta(path, &l, m, e);
  rt_meta_free(m);
  return rc;
}
