/* test_bpe.c — the BPE tokenizer (runtime/data/bpe.h): the merge order and its
 * tie-break, the vocabulary limit, round trips (normalised text), unknown
 * bytes, padding for the GPT, files (round trip, every malformed class,
 * determinism), and the shapes captions at the tiny and bench sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data/bpe.h"
#include "runtime/data/data.h"
#include "tests/util.h"

static RtBpe *train(const char *const *texts, int n, int vocab) {
  RtErr e;
  RtBpe *b = rt_bpe_train(texts, n, vocab, &e);
  ck_assert_msg(b != NULL, "%s", e.msg);
  return b;
}

/* decode(encode(text)) is 'want'; returns the token count. */
static int64_t round_trip(const RtBpe *b, const char *text, const char *want) {
  int32_t ids[256];
  int64_t n = rt_bpe_encode(b, text, ids, 256);
  ck_assert_int_le(n, 256);
  for (int64_t i = 0; i < n; i++) ck_assert(ids[i] >= 0 && ids[i] < rt_bpe_size(b));
  char *back = rt_bpe_decode(b, ids, n);
  ck_assert_str_eq(back, want);
  free(back);
  return n;
}

/* "ab" and "ba" are equally frequent (twice each): the pair with the
 * smaller ids, (a, b), is merged first; pairs seen once are never merged. */
START_TEST(merge_order_and_ties) {
  const char *texts[] = {"ab ab", "ba ba"};
  RtBpe *b = train(texts, 2, 100);
  /* ids: 0 unknown, 1 ' ', 2 'a', 3 'b', then the merges */
  ck_assert_str_eq(rt_bpe_symbol(b, 0), "");
  ck_assert_str_eq(rt_bpe_symbol(b, 1), " ");
  ck_assert_str_eq(rt_bpe_symbol(b, 3), "b");
  ck_assert_str_eq(rt_bpe_symbol(b, 4), "ab");
  ck_assert_str_eq(rt_bpe_symbol(b, 5), "ba");
  /* (' ', ab) and (' ', ba) occur once each: no more merges */
  ck_assert_int_eq(rt_bpe_size(b), 6);
  ck_assert_ptr_null(rt_bpe_symbol(b, 6));
  int32_t ids[8];
  ck_assert_int_eq(rt_bpe_encode(b, "ab ba ab", ids, 8), 5);
  static const int32_t want[5] = {4, 1, 5, 1, 4};
  for (int i = 0; i < 5; i++) ck_assert_int_eq(ids[i], want[i]);
  rt_bpe_free(b);
}
END_TEST

START_TEST(vocabulary_limit_and_errors) {
  const char *texts[] = {"a red circle", "a red square", "a blue circle", "a green triangle"};
  RtErr e;
  RtBpe *full = train(texts, 4, 1000);
  int bytes = 0;
  while (bytes + 1 < rt_bpe_size(full) && strlen(rt_bpe_symbol(full, bytes + 1)) == 1) bytes++;
  ck_assert_int_lt(rt_bpe_size(full), 1000); /* it ran out of pairs seen twice */
  /* every word seen twice is one token: "a", " red", " circle"; the others split */
  ck_assert_int_eq(round_trip(full, "a red circle", "a red circle"), 3);
  RtBpe *small = train(texts, 4, bytes + 1 + 3);
  ck_assert_int_eq(rt_bpe_size(small), bytes + 4);
  /* the three most frequent pairs first; a prefix of the full run's merges */
  for (int id = 0; id < rt_bpe_size(small); id++) ck_assert_str_eq(rt_bpe_symbol(small, id), rt_bpe_symbol(full, id));
  rt_bpe_free(small);
  rt_bpe_free(full);
  ck_assert_ptr_null(rt_bpe_train(texts, 4, 5, &e));
  ck_assert_msg(strstr(e.msg, "distinct bytes, more than a vocabulary of 5"), "%s", e.msg);
  const char *blank[] = {"  ", "\t\n"};
  ck_assert_ptr_null(rt_bpe_train(blank, 2, 64, &e));
  ck_assert_msg(strstr(e.msg, "empty"), "%s", e.msg);
  ck_assert_ptr_null(rt_bpe_train(texts, 4, 1, &e));
}
END_TEST

/* Text is normalised (whitespace runs -> one space, ends trimmed); bytes
 * the training never saw are the unknown id 0, which decodes to nothing. */
START_TEST(round_trips_and_unknown_bytes) {
  const char *texts[] = {"a small red circle at the top left", "a blue square above a green triangle"};
  RtBpe *b = train(texts, 2, 64);
  round_trip(b, texts[0], texts[0]);
  round_trip(b, "  a green\tcircle \n above  ", "a green circle above");
  round_trip(b, "", "");
  int32_t ids[64];
  int64_t n = rt_bpe_encode(b, "a RED circle", ids, 64);
  int unknown = 0;
  for (int64_t i = 0; i < n; i++) unknown += ids[i] == 0;
  ck_assert_int_eq(unknown, 3); /* R, E, D */
  char *back = rt_bpe_decode(b, ids, n);
  ck_assert_str_eq(back, "a  circle");
  free(back);
  /* encode reports the full count even past the buffer */
  ck_assert_int_eq(rt_bpe_encode(b, texts[1], ids, 2), rt_bpe_encode(b, texts[1], ids, 64));
  rt_bpe_free(b);
}
END_TEST

/* MODELS.md: text ids [Lt] in [0, Vt), a padded position p holds Vt + p. */
START_TEST(padding_for_the_gpt) {
  const char *texts[] = {"a red circle", "a red square"};
  RtBpe *b = train(texts, 2, 64);
  int32_t ids[8], tok[8];
  int64_t n = rt_bpe_encode(b, "a red", tok, 8);
  ck_assert_int_eq(n, 2); /* "a", " red": both seen twice */
  ck_assert_int_eq(rt_bpe_encode_padded(b, "a red", 64, ids, 8), 0);
  for (int p = 0; p < 8; p++) ck_assert_int_eq(ids[p], p < n ? tok[p] : 64 + p);
  char *back = rt_bpe_decode(b, ids, 8); /* pads decode to nothing */
  ck_assert_str_eq(back, "a red");
  free(back);
  /* too long: cut at Lt, the overflow counted */
  int64_t all = rt_bpe_encode(b, "a red square a red circle a red square", NULL, 0);
  ck_assert_int_eq(rt_bpe_encode_padded(b, "a red square a red circle a red square", 64, ids, 4), all - 4);
  for (int p = 0; p < 4; p++) ck_assert_int_lt(ids[p], 64);
  rt_bpe_free(b);
}
END_TEST

START_TEST(files) {
  const char *texts[] = {"a small red circle at the top left", "a blue square above a green triangle"};
  RtErr e;
  RtBpe *b = train(texts, 2, 50), *again = train(texts, 2, 50);
  char *p1 = tu_path("bpe1.json"), *p2 = tu_path("bpe2.json");
  ck_assert_msg(rt_bpe_save(b, p1, &e) == 0, "%s", e.msg);
  ck_assert_msg(rt_bpe_save(again, p2, &e) == 0, "%s", e.msg);
  char *t1 = tu_read_file(p1, NULL), *t2 = tu_read_file(p2, NULL);
  ck_assert_str_eq(t1, t2); /* training is deterministic */
  ck_assert_ptr_nonnull(strstr(t1, "\"format\":\"dal-bpe\""));
  RtBpe *l = rt_bpe_load(p1, &e);
  ck_assert_msg(l != NULL, "%s", e.msg);
  ck_assert_int_eq(rt_bpe_size(l), rt_bpe_size(b));
  ck_assert_int_eq(rt_bpe_vocab(b), 50); /* the vocabulary asked for, kept in the file */
  ck_assert_int_eq(rt_bpe_vocab(l), 50);
  for (int id = 0; id < rt_bpe_size(b); id++) ck_assert_str_eq(rt_bpe_symbol(l, id), rt_bpe_symbol(b, id));
  int32_t x[64], y[64];
  const char *probe = "a green circle above a small blue triangle";
  int64_t nx = rt_bpe_encode(b, probe, x, 64), ny = rt_bpe_encode(l, probe, y, 64);
  ck_assert_int_eq(nx, ny);
  ck_assert(memcmp(x, y, sizeof *x * (size_t)nx) == 0);
  rt_bpe_free(l);
  free(t1);
  free(t2);

  static const struct {
    const char *json, *msg;
  } bad[] = {
      {"{not json", "not JSON"},
      {"{\"format\":\"gpt2\",\"version\":1,\"bytes\":[],\"merges\":[]}", "\"format\" is not \"dal-bpe\""},
      {"{\"format\":\"dal-bpe\",\"version\":2,\"bytes\":[],\"merges\":[]}", "\"version\" is not 1"},
      {"{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":[97,97],\"merges\":[]}", "ascending integers"},
      {"{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":[97,98],\"merges\":[[1,3]]}", "both ids made before it"},
      {"{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":[97,98],\"merges\":[[1,2],[1,2]]}", "merged twice"},
      {"{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":7,\"merges\":[]}", "must be arrays"},
      {"{\"format\":\"dal-bpe\",\"version\":1,\"vocab\":2,\"bytes\":[97,98],\"merges\":[]}", "at least the number of ids"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tu_write_file(p2, bad[i].json);
    ck_assert_ptr_null(rt_bpe_load(p2, &e));
    ck_assert_msg(strstr(e.msg, bad[i].msg) && strstr(e.msg, p2), "case %zu: %s", i, e.msg);
  }
  tu_write_file(p2, "{\"format\":\"dal-bpe\",\"version\":1,\"bytes\":[97,98],\"merges\":[[1,2]]}");
  l = rt_bpe_load(p2, &e); /* no "vocab": the ids it has */
  ck_assert_msg(l != NULL, "%s", e.msg);
  ck_assert_int_eq(rt_bpe_vocab(l), 4);
  rt_bpe_free(l);
  ck_assert_ptr_null(rt_bpe_load("/nonexistent/bpe.json", &e));
  ck_assert_msg(strstr(e.msg, "cannot open"), "%s", e.msg);
  rt_bpe_free(b);
  rt_bpe_free(again);
  free(p1);
  free(p2);
}
END_TEST

/* 2000 shapes captions at the GPT's tiny and bench vocabularies (64 and
 * 1024 text ids): every caption round-trips; the bigger vocabulary needs
 * no more tokens than words. */
START_TEST(shapes_captions) {
  enum { N = 2000 };
  static char caps[N][96];
  const char *texts[N];
  for (int i = 0; i < N; i++) {
    RtShapesScene sc;
    rt_shapes_scene(1, (uint64_t)i, 16, &sc);
    memcpy(caps[i], sc.caption, sizeof caps[i]);
    texts[i] = caps[i];
  }
  int vocab[2] = {64, 1024};
  for (int v = 0; v < 2; v++) {
    RtBpe *b = train(texts, N, vocab[v]);
    ck_assert_int_le(rt_bpe_size(b), vocab[v]);
    int64_t tokens = 0, words = 0;
    for (int i = 0; i < N; i++) {
      tokens += round_trip(b, texts[i], texts[i]);
      words += 1;
      for (const char *c = texts[i]; *c; c++) words += *c == ' ';
    }
    printf("shapes captions, vocabulary %d (%d ids): %.2f tokens per caption, %.2f words\n", vocab[v],
           rt_bpe_size(b), (double)tokens / N, (double)words / N);
    if (v == 1) ck_assert_int_le(tokens, words);
    else ck_assert_int_lt(tokens, words * 4); /* far fewer than bytes */
    rt_bpe_free(b);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("bpe");
  TCase *tc = tcase_create("bpe");
  tcase_add_test(tc, merge_order_and_ties);
  tcase_add_test(tc, vocabulary_limit_and_errors);
  tcase_add_test(tc, round_trips_and_unknown_bytes);
  tcase_add_test(tc, padding_for_the_gpt);
  tcase_add_test(tc, files);
  tcase_add_test(tc, shapes_captions);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
