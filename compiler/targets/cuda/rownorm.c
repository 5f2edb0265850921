/* rownorm.c - the CUDA target's layer_norm, rms_norm and their backward ops
 * (ops/ops_rownorm.c): a thread per row of x [..., D], each row's mean and rstd summed in
 * float in the order of the row; the parameter gradients a thread per column adding the
 * rows in order (no atomics: the same bits on every run). The C target calls the kernel
 * library (targets/c/rownorm.c). */
#include "cuda_emitters.h"
#include "emit.h"
#include "ops.h"

static int is_centred(const Node *n) {
    return n->op == OP_layer_norm || (n->op != OP_rms_norm && attr_i(n, A_CENTRED));
}

/* The rows of node x as a C expression, and D. */
static const char *rows_of(EmitCtx *e, int x, long long *D) {
    const char *rows, *d, *inner;
    emit_axis_split(e, x, e->g->nodes[x].shape.rank - 1, &rows, &d, &inner);
    (void)d, (void)inner;
    *D = (long long)e->g->nodes[x].shape.d[e->g->nodes[x].shape.rank - 1];
    return rows;
}

/* Body lines: mu (0 when not centred) and rs of row r of x. */
static void emit_row_stats(EmitCtx *e, const char *x, long long D, int centred, double eps) {
    emit(e, "float mu = 0.0f, var = 0.0f;");
    if (centred) {
        emit(e, "for (long j = 0; j < %lld; j++) mu += %s[r * %lld + j];", D, x, D);
        emit(e, "mu /= %lld.0f;", D);
    }
    emit(e, "for (long j = 0; j < %lld; j++) {", D);
    emit(e, "    const float d = %s[r * %lld + j] - mu;", x, D);
    emit(e, "    var += d * d;");
    emit(e, "}");
    emit_math(e, "const float rs = 1.0f / sqrt(var / %lld.0f + %s);", D, emit_float(e, eps));
}

void emit_row_norm_cuda(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    int xi = n->op == OP_layer_norm || n->op == OP_rms_norm || n->op == OP_row_norm_stats ? n->in[0] : n->in[1];
    long long D;
    const char *rows = rows_of(e, xi, &D), *x = emit_buf(e, xi), *out = emit_buf(e, id);
    int c = is_centred(n);
    if (n->op == OP_row_norm_param_grads) {
        const char *dy = emit_buf(e, n->in[0]), *st = emit_buf(e, n->in[2]);
        ElemLoop l = {.rank = 1, .size = {arena_printf(e->arena, "%lld", D)}, .var = {"j"}, .par = LOOP_PARALLEL};
        loop_begin(e, id, &l);
        emit(e, "float sb = 0.0f, sw = 0.0f;");
        emit(e, "for (long r = 0; r < (long)(%s); r++) {", rows);
        emit(e, "    const float d = %s[r * %lld + j];", dy, D);
        emit(e, "    sb += d;");
        emit(e, "    sw += d * (%s[r * %lld + j] - %s[2 * r]) * %s[2 * r + 1];", x, D, st, st);
        emit(e, "}");
        if (c) emit(e, "%s[j] = sb;", out);
        else emit(e, "(void)sb;");
        emit(e, "%s[%s + j] = sw;", out, c ? arena_printf(e->arena, "%lld", D) : "0");
        loop_end(e, id, &l);
        return;
    }
    ElemLoop l = {.rank = 1, .size = {rows}, .var = {"r"}, .par = LOOP_PARALLEL};
    loop_begin(e, id, &l);
    if (n->op == OP_row_norm_bwd) {
        const char *dy = emit_buf(e, n->in[0]), *w = emit_buf(e, n->in[2]), *st = emit_buf(e, n->in[3]);
        emit(e, "const float mu = %s[2 * r], rs = %s[2 * r + 1];", st, st);
        emit(e, "float sg = 0.0f, sgx = 0.0f; /* sums of g = dy * w and of g * (x - mu) */");
        emit(e, "for (long j = 0; j < %lld; j++) {", D);
        emit(e, "    const float gj = %s[r * %lld + j] * %s[j];", dy, D, w);
        emit(e, "    sg += gj;");
        emit(e, "    sgx += gj * (%s[r * %lld + j] - mu);", x, D);
        emit(e, "}");
        emit(e, "const float mg = %s, mgx = sgx * rs / %lld.0f;",
             c ? arena_printf(e->arena, "sg / %lld.0f", D) : "0.0f", D);
        emit(e, "for (long j = 0; j < %lld; j++)", D);
        emit(e, "    %s[r * %lld + j] = rs * (%s[r * %lld + j] * %s[j] - mg - (%s[r * %lld + j] - mu) * rs * mgx);",
             out, D, dy, D, w, x, D);
    } else if (n->op == OP_row_norm_stats) {
        emit_row_stats(e, x, D, c, attr_f(n, A_EPS));
        emit(e, "%s[2 * r] = mu;", out);
        emit(e, "%s[2 * r + 1] = rs;", out);
    } else {
        const char *w = emit_buf(e, n->in[1]);
        const char *bias = n->nin > 2 ? arena_printf(e->arena, " + %s[j]", emit_buf(e, n->in[2])) : "";
        emit_row_stats(e, x, D, c, attr_f(n, A_EPS));
        emit(e, "for (long j = 0; j < %lld; j++) %s[r * %lld + j] = (%s[r * %lld + j] - mu) * rs * %s[j]%s;", D, out, D,
             x, D, w, bias);
    }
    loop_end(e, id, &l);
}
