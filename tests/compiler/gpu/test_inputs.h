/* tests/compiler/gpu/test_inputs.h - the fixed pseudo-random inputs step_compare.c and
 * batch_sizes.c give a model, the same on every target: f32 inputs in [0, 1); i32 ones
 * labels below output 0's per-sample count (i32[B]) or tokens below the size of its last
 * axis (i32[B, T]). in[k] (up to 8 inputs) holds `batch` samples of input k; free them. */
#ifndef MLC_TEST_INPUTS_H
#define MLC_TEST_INPUTS_H

#include <stdint.h>
#include <stdlib.h>

#include "mlc_model.h"

static void test_inputs(const mlc_model_api *api, int batch, unsigned seed, void *in[8]) {
    unsigned s = seed;
    for (int k = 0; k < api->n_inputs && k < 8; k++) {
        const mlc_io_desc *d = &api->inputs[k];
        size_t n = (size_t)batch * (size_t)d->numel;
        unsigned range = (unsigned)(d->rank ? api->outputs[0].dims[api->outputs[0].rank - 1] : api->outputs[0].numel);
        in[k] = malloc(4 * n);
        if (!in[k]) exit(1);
        for (size_t i = 0; i < n; i++) {
            s = s * 1103515245u + 12345u;
            if (d->dtype == MLC_I32) ((int32_t *)in[k])[i] = (int32_t)((s >> 16) % range);
            else ((float *)in[k])[i] = (float)((s >> 8) & 0xffff) / 65536.0f;
        }
    }
}

#endif
