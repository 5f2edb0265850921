/* fuzz_text.c - libFuzzer harness for the token-corpus reader (text_data.c). Four header
 * bytes pick what is read and by which model, the rest is the corpus:
 *   byte 0  bit 0: a directory of train.bin + val.bin (uint16 ids), else a text file;
 *           bit 1: the validation split, else training; bits 2-3: a window limit (0: all)
 *   byte 1  the window T, 1 + b % 32
 *   byte 2, 3  the vocabulary: a text model 1 + b2; a token model 1 + (b2 | b3 << 8)
 * For a directory, byte 4 says where the rest is cut between train.bin and val.bin.
 * A load then gathers windows at both ends of the split: every token must be below the
 * vocabulary and every target the next token, or it is a finding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fuzz_file.h"
#include "mlcrt_error.h"
#include "text_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Gathers windows [start, start + n) and checks them against the model's shape. */
static void check_windows(const mlc_dataset *ds, const mlcrt_lm_shape *s, int64_t start, int n) {
    int64_t T = s->window;
    int32_t *bx = malloc((size_t)(n * T) * sizeof *bx), *by = malloc((size_t)(n * T) * sizeof *by);
    if (!bx || !by) abort();
    mlcrt_text_gather(ds->text, NULL, start, n, bx, by, 42, 3);
    for (int64_t k = 0; k < n * T; k++)
        if (bx[k] < 0 || bx[k] >= s->vocab || by[k] < 0 || by[k] >= s->vocab || (k % T + 1 < T && by[k] != bx[k + 1]))
            abort(); /* a window outside the vocabulary, or targets not shifted by one */
    free(bx);
    free(by);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 5) return 0;
    const uint8_t mode = data[0];
    const int dir = mode & 1, val = (mode >> 1) & 1;
    const int64_t limits[4] = {0, 1, 3, 100};
    mlcrt_lm_shape s = {1 + data[1] % 32, dir ? 1 + (data[2] | data[3] << 8) : 1 + data[2], 0};
    const char *path;
    if (dir) {
        const size_t rest = size - 5, cut = rest * data[4] / 255;
        fuzz_dir_file(0, "train.bin", data + 5, cut);
        path = fuzz_dir_file(1, "val.bin", data + 5 + cut, rest - cut);
    } else {
        path = fuzz_file(data + 4, size - 4);
    }
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    if (mlcrt_text_load(&ds, path, val, &s, limits[(mode >> 2) & 3], msg, sizeof msg) != MLCRT_OK) return 0;
    if (ds.n < 1 || ds.sample_numel != s.window || !ds.text || (val && ds.n > MLCRT_VAL_WINDOWS))
        abort(); /* a load that reports what it did not read */
    const int n = ds.n < 4 ? (int)ds.n : 4;
    check_windows(&ds, &s, 0, n);
    check_windows(&ds, &s, ds.n - n, n);
    mlcrt_dataset_free(&ds);
    return 0;
}
