/* layout.c - the CUDA target's slice, pad and concat (ops/ops_layout.c): a thread per
 * output element. */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"
#include "ops_attrs.h"

/* CUDA (slice, pad, concat): a thread per output element, its index split into o (outer)
 * x j (along the axis) x in (inner), reading its source's row o. */
void emit_rows_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const char *outer, *len, *inner;
    emit_axis_split(e, id, (int)attr_i(n, A_AXIS), &outer, &len, &inner);
    (void)outer;
    const char *count = emit_numel(e, id);
    const char *k = cuda_kernel_begin(e, id, count, "i", NULL);
    emit(e, "const long in = i %% (long)(%s), j = (i / (long)(%s)) %% (long)(%s), o = i / ((long)(%s) * (long)(%s));",
         inner, inner, len, inner, len);
    const char *y = emit_buf(e, id);
    int ax = (int)attr_i(n, A_AXIS);
    if (n->op == OP_concat) {
        int a = n->in[0], b = n->in[1];
        int64_t na = e->g->nodes[a].shape.d[ax], nb = e->g->nodes[b].shape.d[ax];
        emit(e, "%s[i] = j < %lld ? %s[(o * %lld + j) * (%s) + in] : %s[(o * %lld + j - %lld) * (%s) + in];", y,
             (long long)na, emit_buf(e, a), (long long)na, inner, emit_buf(e, b), (long long)nb, (long long)na, inner);
    } else {
        int x = n->in[0];
        int64_t ns = e->g->nodes[x].shape.d[ax];
        if (n->op == OP_slice) {
            emit(e, "%s[i] = %s[(o * %lld + j + %lld) * (%s) + in];", y, emit_buf(e, x), (long long)ns,
                 (long long)attr_i(n, A_START), inner);
        } else {
            emit(e, "const long sj = j - %lld;", (long long)attr_i(n, A_BEFORE));
            emit(e, "%s[i] = sj >= 0 && sj < %lld ? %s[(o * %lld + sj) * (%s) + in] : 0;", y, (long long)ns,
                 emit_buf(e, x), (long long)ns, inner);
        }
    }
    cuda_kernel_end(e);
    cuda_launch(e, id, k, count, NULL);
}
