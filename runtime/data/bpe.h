/* bpe.h — the byte-pair-encoding tokenizer for captions (stage 2's text).
 *
 * Text is normalised first: runs of whitespace become one space, leading
 * and trailing whitespace goes. It is then split into words, each word but
 * the first carrying its leading space (" red"), and every word is a
 * sequence of symbols, starting from single bytes. Training counts the
 * adjacent symbol pairs inside words over a corpus and merges the most
 * frequent pair into a new symbol (ties: the pair whose ids are smallest,
 * left first), again and again, until the vocabulary has the size asked
 * for or no pair occurs twice. Encoding applies the learned merges to each
 * word in the order they were learned (lowest rank first), as GPT-2 does.
 *
 * Ids: 0 is the unknown symbol (a byte the training text never had), then
 * the training text's bytes in ascending order, then the merges in the
 * order they were learned. So decode(encode(t)) is normalise(t) whenever t
 * uses only known bytes.
 *
 * For the GPT (MODELS.md section 2) a caption becomes Lt ids in [0, Vt):
 * its tokens, cut at Lt, and then one pad token per position: position p
 * holds Vt + p (rt_bpe_encode_padded).
 *
 * A tokenizer is saved as JSON (cJSON), atomically:
 *   {"format": "dal-bpe", "version": 1, "vocab": V, "bytes": [...the base
 *    bytes...], "merges": [[left, right], ...]}     ("vocab" optional)
 * Loading refuses a file whose merges spell more than RT_BPE_MAX_SPELLED
 * bytes in all (each merge's symbol is its two parts' bytes: 40 merges of
 * a symbol with itself would spell 2^40 bytes from a 1 KB file).
 * Module prefix: rt_bpe_.
 */
#ifndef DAL_RT_BPE_H
#define DAL_RT_BPE_H

#include <stdint.h>

#include "runtime/core/rt_error.h"

typedef struct RtBpe RtBpe;

#define RT_BPE_MAX_SPELLED (64 << 20) /* bytes of all symbols of a loaded tokenizer */

/* Learns a tokenizer of at most 'vocab' ids (>= 2: the unknown id and at
 * least one byte) from texts[0..n). NULL with a message if the texts are
 * empty or have more distinct bytes than the vocabulary can hold. */
RtBpe *rt_bpe_train(const char *const *texts, int64_t n, int vocab, RtErr *e);
void rt_bpe_free(RtBpe *b); /* NULL is a no-op */

/* The number of ids (<= the vocabulary asked for). */
int rt_bpe_size(const RtBpe *b);
/* The vocabulary it was made for (the model's Vt: pads start there), at
 * least rt_bpe_size; a file without one: rt_bpe_size. */
int rt_bpe_vocab(const RtBpe *b);
/* The bytes of symbol 'id' ("" for the unknown id), NULL if out of range. */
const char *rt_bpe_symbol(const RtBpe *b, int id);

/* The ids of 'text': writes the first 'cap' into ids[] and returns how
 * many there are in all (which may be more than cap). */
int64_t rt_bpe_encode(const RtBpe *b, const char *text, int32_t *ids, int64_t cap);
/* ids[0..len) for a model with 'vocab' text ids (>= rt_bpe_size): the
 * tokens of 'text', cut at len, then position p holds vocab + p. Returns
 * the number of tokens that did not fit (0 if the caption fits). */
int64_t rt_bpe_encode_padded(const RtBpe *b, const char *text, int vocab, int32_t *ids, int64_t len);
/* The text of ids[0..n) (malloc'd): ids outside [0, size) (pads) and the
 * unknown id contribute nothing. */
char *rt_bpe_decode(const RtBpe *b, const int32_t *ids, int64_t n);

int rt_bpe_save(const RtBpe *b, const char *path, RtErr *e);
/* The file's JSON text (malloc'd; NULL if out of memory): what model
 * files embed. */
char *rt_bpe_json(const RtBpe *b);
/* A tokenizer from JSON text; 'what' names it in messages. */
RtBpe *rt_bpe_parse(const char *json, const char *what, RtErr *e);
/* NULL with a message naming the file and what is wrong with it. */
RtBpe *rt_bpe_load(const char *path, RtErr *e);

#endif
