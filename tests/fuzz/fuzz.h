/* fuzz.h — the fuzz harnesses: one function per parser, each taking one
 * input (bytes, any content) through that parser as dal reads a file.
 *
 * Every harness returns FUZZ_ACCEPTED when the parser took the input,
 * FUZZ_REFUSED when it refused it with a message (never an empty one), and
 * FUZZ_SKIPPED when the harness did not run it (over the target's size cap,
 * or a .dal source that would read files outside the harness's folder). A
 * broken invariant (say a round trip that changes the data) abort()s, which
 * AFL++ reports as a crash. The same functions run under AFL++
 * (tests/fuzz/afl_main.c, `make fuzz`) and in the corpus replay test
 * (tests/test_fuzz_corpus.c, `make test`).
 *
 * Files a parser reads are written into one private temporary folder per
 * process (fuzz_dir), under $TMPDIR, removed at exit.
 * Module prefix: fuzz_.
 */
#ifndef DAL_FUZZ_H
#define DAL_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { FUZZ_REFUSED = 0, FUZZ_ACCEPTED = 1, FUZZ_SKIPPED = 2 };

typedef int (*FuzzFn)(const uint8_t *data, size_t n);

int fuzz_dal(const uint8_t *data, size_t n);         /* .dal source (+ an imported file) to verified IR */
int fuzz_safetensors(const uint8_t *data, size_t n); /* a .safetensors file with its metadata */
int fuzz_npy(const uint8_t *data, size_t n);         /* a .npy file */
int fuzz_bpe(const uint8_t *data, size_t n);         /* a BPE tokenizer's JSON */
int fuzz_folder(const uint8_t *data, size_t n);      /* folder dataset: captions.tsv + one image */
int fuzz_fashion(const uint8_t *data, size_t n);     /* Fashion-MNIST idx files (labels + images) */
int fuzz_model(const uint8_t *data, size_t n);       /* a model file's / checkpoint's metadata */

/* ---- shared by the harnesses (fuzz_util.c) ---- */

/* The process's private folder (made on first use; NULL if it cannot be). */
const char *fuzz_dir(void);
/* dir/name; the string lives until the next call. */
const char *fuzz_path(const char *name);
/* Writes data[0..n) to dir/name; returns the path, or NULL. */
const char *fuzz_write(const char *name, const void *data, size_t n);
/* A malloc'd NUL-terminated copy of data[0..n). */
char *fuzz_strndup(const uint8_t *data, size_t n);
/* Splits data at the first occurrence of 'sep' (seplen bytes): *a, *an the
 * part before it, *b, *bn the part after (empty if there is no separator). */
void fuzz_split(const uint8_t *data, size_t n, const char *sep, size_t seplen, const uint8_t **a, size_t *an,
                const uint8_t **b, size_t *bn);
/* FUZZ_REFUSED, checking that 'msg' (the parser's error) is not empty. */
int fuzz_refused(const char *msg);

#endif
