/* fuzz_fashion.c — the Fashion-MNIST idx reader (runtime/data/data_fashion.c).
 *
 * Input: a 2-byte little-endian length L, L bytes of the labels file
 * (t10k-labels-idx1-ubyte.gz), then the images file
 * (t10k-images-idx3-ubyte.gz); zlib reads a file that is not gzip'd as it
 * is, so the seeds are plain idx files. The dataset is opened as
 * fashion-mnist:test with DAL_FASHION_MNIST set to the harness's folder. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_data.h"

#define FASHION_MAX_INPUT 32768

int fuzz_fashion(const uint8_t *data, size_t n) {
  if (n > FASHION_MAX_INPUT || n < 2) return FUZZ_SKIPPED;
  size_t len = (size_t)data[0] | (size_t)data[1] << 8;
  if (len > n - 2) len = n - 2;
  if (!fuzz_write("t10k-labels-idx1-ubyte.gz", data + 2, len) ||
      !fuzz_write("t10k-images-idx3-ubyte.gz", data + 2 + len, n - 2 - len))
    return FUZZ_SKIPPED;
  setenv("DAL_FASHION_MNIST", fuzz_dir(), 1);
  return fuzz_data_open_fill("fashion-mnist:test");
}
