/* fuzz_idx.c - libFuzzer harness for the IDX reader (raw or gzipped: zlib reads both): the
 * first input byte picks images or labels, the expected image size and a sample limit,
 * the rest is the file. A clean error or a load is fine; a crash, a sanitizer report, a
 * hang or an allocation the file's own size does not justify is a finding. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "idx.h"
#include "mlcrt_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    const char *path = fuzz_file(data + 1, size - 1);
    char msg[MLCRT_MSG_SIZE];
    const int64_t limit = (mode >> 2) & 3; /* 0: all */
    if (mode & 1) {
        int32_t *y = NULL;
        int64_t n = 0, in_file = 0;
        if (mlcrt_idx_load_labels(path, limit, (mode & 2) ? 10 : 0, &y, &n, &in_file, msg, sizeof msg) == MLCRT_OK &&
            (n < 1 || in_file < n))
            abort(); /* a load that reports what it did not read */
        free(y);
    } else {
        float *x = NULL;
        int64_t n = 0, in_file = 0, rows = 0, cols = 0;
        if (mlcrt_idx_load_images(path, limit, (mode & 2) ? 4 : 0, &x, &n, &in_file, &rows, &cols, msg, sizeof msg) ==
                MLCRT_OK &&
            (n < 1 || in_file < n || rows < 1 || cols < 1))
            abort();
        free(x);
    }
    return 0;
}
