/* fuzz_model.h - the smallest model a checkpoint can belong to, for the checkpoint
 * harness and its seed maker: "fz" with a parameter "w" f32 [2, 3], an i32 state tensor
 * "n" [2] and a scalar "s" (rank 0), so every header path (ranks 0..2, both dtypes) is
 * reachable in a file of a few hundred bytes. Header-only. */
#ifndef MLC_FUZZ_MODEL_H
#define MLC_FUZZ_MODEL_H

#include <stdint.h>
#include <string.h>

#include "mlc_model.h"

typedef struct fz_model {
    uint32_t t[3][6];
    int64_t step;
} fz_model;

static const mlc_tensor_desc fz_tensors[3] = {
    {"w", MLC_F32, 2, {2, 3}, 6, 1, -1},
    {"n", MLC_I32, 1, {2}, 2, 0, -1},
    {"s", MLC_F32, 0, {0}, 1, 0, -1},
};

static void fz_read(void *m, int i, void *dst) { memcpy(dst, ((fz_model *)m)->t[i], 4 * (size_t)fz_tensors[i].numel); }
static void fz_write(void *m, int i, const void *src) {
    memcpy(((fz_model *)m)->t[i], src, 4 * (size_t)fz_tensors[i].numel);
}
static int64_t fz_get_step(void *m) { return ((fz_model *)m)->step; }
static void fz_set_step(void *m, int64_t s) { ((fz_model *)m)->step = s; }

static const mlc_model_api fz_api = {
    .api_version = MLC_API_VERSION,
    .name = "fz",
    .target = "c",
    .n_tensors = 3,
    .tensors = fz_tensors,
    .read_tensor = fz_read,
    .write_tensor = fz_write,
    .get_step = fz_get_step,
    .set_step = fz_set_step,
};

#endif
