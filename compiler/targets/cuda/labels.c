/* labels.c - the CUDA target's one_hot (ops/ops_labels.c). */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

/* CUDA: a thread per output element. */
void emit_one_hot_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    long long c = (long long)n->iattr[0];
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", NULL);
    emit(e, "%s[i] = %s[i / %lld] == (int)(i %% %lld) ? 1.0f : 0.0f;", y, x, c, c);
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}
