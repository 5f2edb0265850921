/* fuzz_ckpt.c - libFuzzer harness for the checkpoint reader (mlcrt_ckpt_load_state and
 * the --resume checks), against the small model of fuzz_model.h. The CRC would stop
 * almost every mutation at the checksum, so when the first input byte is odd the
 * harness recomputes the file's CRC first: the fuzzer then reaches the model and
 * training-state checks behind it, as a forged file would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt.h"
#include "fuzz_file.h"
#include "fuzz_model.h"
#include "mlcrt_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    uint8_t *f = malloc(size);
    if (!f) abort();
    size_t n = size - 1;
    memcpy(f, data + 1, n);
    if ((mode & 1) && n >= 4) {
        uLong c = crc32(crc32(0L, Z_NULL, 0), f, (uInt)(n - 4));
        for (int i = 0; i < 4; i++) f[n - 4 + i] = (uint8_t)(c >> (8 * i));
    }
    const char *path = fuzz_file(f, n);
    free(f);
    char msg[MLCRT_MSG_SIZE];
    fz_model m, before;
    memset(&m, 0x5a, sizeof m);
    before = m;
    mlcrt_train_state st;
    int rc = mlcrt_ckpt_load_state(&fz_api, &m, &st, path, msg, sizeof msg);
    if (rc != MLCRT_OK) {
        if (memcmp(&m, &before, sizeof m) != 0 || !msg[0])
            abort(); /* a refused file modified the model, or said nothing */
        return 0;
    }
    mlcrt_ckpt_check_resume(&st, m.step, st.train_samples, (mode >> 1) & 7, path, msg, sizeof msg);
    return 0;
}
