/* random.c - the CUDA target's dropout_mask (ops/ops_random.c): the device Philox. */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

/* CUDA: a thread per element, the same Philox draw on the device (cuda_device.cuh's
 * mlc_rng_uniform_dev), so the mask is bit for bit the C target's. */
void emit_dropout_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", "const unsigned long long seed, const unsigned long long t");
    emit(e, "const float p = %s, scale = %s;", emit_float(e, n->fattr[0]), emit_float(e, 1.0 / (1.0 - n->fattr[0])));
    emit(e, "%s[i] = mlc_rng_uniform_dev(seed, %lluull, (t << 32) | (unsigned long long)i) >= p ? scale : 0.0f;",
         emit_buf(e, id), (unsigned long long)n->iattr[0]);
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, "self->seed, (unsigned long long)t");
}
