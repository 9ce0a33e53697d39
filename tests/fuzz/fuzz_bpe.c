/* fuzz_bpe.c — a BPE tokenizer's JSON (runtime/data/bpe.c).
 *
 * Input: the JSON text. An accepted tokenizer must keep bpe.h's promises:
 * its JSON parses back to the same JSON, and a text made of its own
 * symbols decodes back to itself (normalised) after encoding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "tests/fuzz/fuzz.h"

#define BPE_MAX_INPUT 16384
#define TEXT_MAX 4096

static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* bpe.h's normalisation: whitespace runs to one space, none at the ends. */
static void normalise(const char *s, char *out) {
  size_t n = 0;
  bool gap = false;
  for (; *s; s++) {
    if (is_space((unsigned char)*s)) {
      gap = n > 0;
      continue;
    }
    if (gap) out[n++] = ' ';
    gap = false;
    out[n++] = *s;
  }
  out[n] = 0;
}

/* The text of the tokenizer's first symbols, if every byte of it (once
 * normalised) is one the tokenizer knows; else "". */
static void symbol_text(const RtBpe *b, char *text, char *norm) {
  size_t n = 0;
  for (int id = 1; id < rt_bpe_size(b); id++) {
    const char *s = rt_bpe_symbol(b, id);
    size_t len = strlen(s);
    if (n + len + 1 >= TEXT_MAX) break;
    memcpy(text + n, s, len);
    n += len;
  }
  text[n] = 0;
  normalise(text, norm);
  for (const char *c = norm; *c; c++) {
    char one[2] = {*c, 0};
    int32_t id;
    if (rt_bpe_encode(b, one, &id, 1) != 1 || id == 0) {
      text[0] = norm[0] = 0;
      return;
    }
  }
}

static void check(const RtBpe *b) {
  char *json = rt_bpe_json(b);
  RtErr e;
  RtBpe *b2 = json ? rt_bpe_parse(json, "round trip", &e) : NULL;
  char *json2 = b2 ? rt_bpe_json(b2) : NULL;
  if (!json2 || strcmp(json, json2) != 0) {
    fputs("fuzz_bpe: the tokenizer's JSON does not parse back to itself\n", stderr);
    abort();
  }
  static char text[TEXT_MAX], norm[TEXT_MAX];
  static int32_t ids[TEXT_MAX + 64];
  symbol_text(b, text, norm);
  int64_t k = rt_bpe_encode(b, text, ids, TEXT_MAX + 64);
  if (k < 0 || k > TEXT_MAX) abort();
  char *dec = rt_bpe_decode(b, ids, k);
  if (!dec || strcmp(dec, norm) != 0) {
    fprintf(stderr, "fuzz_bpe: decode(encode(t)) is not normalise(t) for t = \"%s\"\n", text);
    abort();
  }
  int32_t pad[16];
  int vocab = rt_bpe_vocab(b);
  rt_bpe_encode_padded(b, text, vocab, pad, 16);
  for (int i = 0; i < 16; i++)
    if (pad[i] < 0 || pad[i] >= vocab + 16) abort();
  free(dec);
  free(json);
  free(json2);
  rt_bpe_free(b2);
}

int fuzz_bpe(const uint8_t *data, size_t n) {
  if (n > BPE_MAX_INPUT) return FUZZ_SKIPPED;
  char *json = fuzz_strndup(data, n);
  RtErr e = {{0}};
  RtBpe *b = rt_bpe_parse(json, "fuzz.json", &e);
  free(json);
  if (!b) return fuzz_refused(e.msg);
  check(b);
  rt_bpe_free(b);
  return FUZZ_ACCEPTED;
}
