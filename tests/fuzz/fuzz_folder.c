/* fuzz_folder.c — the folder dataset: captions.tsv and an image
 * (runtime/data/data_folder.c, stb_image).
 *
 * Input: captions.tsv's text, a NUL byte, then the bytes of the file
 * a.png (any image format: stb_image reads them all). A captions.tsv with a
 * '/' is skipped, so the dataset reads nothing outside the harness's
 * folder, and so is one with more than two entries (lines with a tab). */
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_data.h"

#define FOLDER_MAX_INPUT 32768

int fuzz_folder(const uint8_t *data, size_t n) {
  if (n > FOLDER_MAX_INPUT) return FUZZ_SKIPPED;
  const uint8_t *tsv, *img;
  size_t tsv_n, img_n;
  fuzz_split(data, n, "", 1, &tsv, &tsv_n, &img, &img_n);
  if (memchr(tsv, '/', tsv_n)) return FUZZ_SKIPPED;
  /* Every line names a.png: more than two would only decode it again (an
   * image of up to 32 megapixels takes ~1 s; 3 lines were an AFL++ hang). */
  int entries = 0; /* lines with a tab that are not comments */
  for (size_t i = 0; i < tsv_n;) {
    size_t end = i;
    while (end < tsv_n && tsv[end] != '\n') end++;
    entries += tsv[i] != '#' && memchr(tsv + i, '\t', end - i) != NULL;
    i = end + 1;
  }
  if (entries > 2) return FUZZ_SKIPPED;
  if (!fuzz_write("captions.tsv", tsv, tsv_n) || !fuzz_write("a.png", img, img_n)) return FUZZ_SKIPPED;
  char spec[600];
  snprintf(spec, sizeof spec, "folder:%s", fuzz_dir());
  return fuzz_data_open_fill(spec);
}
