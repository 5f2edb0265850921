/* fuzz_cifar.c - libFuzzer harness for the CIFAR-10/100 binary reader: the first input
 * byte picks CIFAR-10 (1 label byte, 10 classes) or CIFAR-100 (2 label bytes, 100
 * classes) and a sample limit, the rest is one batch file. */
#include <stdint.h>
#include <string.h>

#include "data.h"
#include "fuzz_file.h"
#include "mlcrt_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    const char *path = fuzz_file(data + 1, size - 1);
    const char *paths[1] = {path};
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    memset(&ds, 0, sizeof ds);
    const int hundred = mode & 1;
    if (mlcrt_cifar_load(&ds, paths, 1, hundred ? 2 : 1, 3072, hundred ? 100 : 10, (mode >> 1) & 3, msg, sizeof msg) ==
            MLCRT_OK &&
        (ds.n < 1 || ds.sample_numel != 3072))
        abort(); /* a load that reports what it did not read */
    mlcrt_dataset_free(&ds);
    return 0;
}
