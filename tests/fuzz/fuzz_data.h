/* fuzz_data.h — what the dataset harnesses share: an entry with the
 * inputs a captioned image dataset fills, and opening + filling two steps. */
#ifndef DAL_FUZZ_DATA_H
#define DAL_FUZZ_DATA_H

#include "runtime/data/data.h"

/* Opens 'spec' for an entry with inputs image f32 [2, 3, 8, 8] and label
 * i32 [2], fills the batches of steps 0 and 1, and returns FUZZ_ACCEPTED
 * or FUZZ_REFUSED (with the message checked). */
int fuzz_data_open_fill(const char *spec);

#endif
