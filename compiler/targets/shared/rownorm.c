/* rownorm.c - layer_norm, rms_norm and their backward ops (ops/ops_rownorm.c) on every
 * target: a loop over the rows of x [..., D] (a thread per row on CUDA), each row's mean
 * and rstd computed in float in the order of the row, so the two targets agree to the
 * rounding of their math libraries. The parameter gradients are a loop over the columns
 * (a thread per column) that adds the rows in order: no atomics, the same bits whatever
 * the thread count. */
#include "shared_emitters.h"

/* Rows of x, as a C expression ("B * 16"), and D. */
static const char *rows_expr(EmitCtx *e, int x, long long *D) {
    const Shape *s = &e->g->nodes[x].shape;
    *D = (long long)s->d[s->rank - 1];
    const char *r = "1";
    for (int i = 0; i < s->rank - 1; i++) r = i ? arena_printf(e->arena, "%s * %s", r, emit_dim(e, x, i)) : emit_dim(e, x, i);
    return r;
}

/* What a row loop does: rows x D elements. */
static const char *row_work(EmitCtx *e, const char *rows, long long D) { return arena_printf(e->arena, "(%s) * %lld", rows, D); }

static int is_centred(const Node *n) { return n->op == OP_layer_norm || (n->op != OP_rms_norm && n->iattr[0]); }

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

void emit_row_norm(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long D;
    const char *rows = rows_expr(e, n->in[0], &D), *x = emit_buf(e, n->in[0]), *w = emit_buf(e, n->in[1]);
    const char *bias = n->nin > 2 ? arena_printf(e->arena, " + %s[j]", emit_buf(e, n->in[2])) : "";
    ElemLoop l = {.rank = 1, .size = {rows}, .var = {"r"}, .par = LOOP_PARALLEL, .work = row_work(e, rows, D)};
    loop_begin(e, id, &l);
    emit_row_stats(e, x, D, is_centred(n), n->fattr[0]);
    emit(e, "for (long j = 0; j < %lld; j++) %s[r * %lld + j] = (%s[r * %lld + j] - mu) * rs * %s[j]%s;", D,
         emit_buf(e, id), D, x, D, w, bias);
    loop_end(e, id, &l);
}

void emit_row_norm_stats(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long D;
    const char *rows = rows_expr(e, n->in[0], &D), *st = emit_buf(e, id);
    ElemLoop l = {.rank = 1, .size = {rows}, .var = {"r"}, .par = LOOP_PARALLEL, .work = row_work(e, rows, D)};
    loop_begin(e, id, &l);
    emit_row_stats(e, emit_buf(e, n->in[0]), D, is_centred(n), n->fattr[0]);
    emit(e, "%s[2 * r] = mu;", st);
    emit(e, "%s[2 * r + 1] = rs;", st);
    loop_end(e, id, &l);
}

void emit_row_norm_bwd(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long D;
    const char *rows = rows_expr(e, n->in[1], &D), *dy = emit_buf(e, n->in[0]), *x = emit_buf(e, n->in[1]);
    const char *w = emit_buf(e, n->in[2]), *st = emit_buf(e, n->in[3]);
    int c = is_centred(n);
    ElemLoop l = {.rank = 1, .size = {rows}, .var = {"r"}, .par = LOOP_PARALLEL, .work = row_work(e, rows, D)};
    loop_begin(e, id, &l);
    emit(e, "const float mu = %s[2 * r], rs = %s[2 * r + 1];", st, st);
    emit(e, "float sg = 0.0f, sgx = 0.0f; /* sums of g = dy * w and of g * xhat */");
    emit(e, "for (long j = 0; j < %lld; j++) {", D);
    emit(e, "    const float gj = %s[r * %lld + j] * %s[j];", dy, D, w);
    emit(e, "    sg += gj;");
    emit(e, "    sgx += gj * (%s[r * %lld + j] - mu) * rs;", x, D);
    emit(e, "}");
    emit(e, "sg = %s, sgx /= %lld.0f;", c ? arena_printf(e->arena, "sg / %lld.0f", D) : "0.0f", D);
    emit(e, "for (long j = 0; j < %lld; j++)", D);
    emit(e, "    %s[r * %lld + j] = rs * (%s[r * %lld + j] * %s[j] - sg - (%s[r * %lld + j] - mu) * rs * sgx);", emit_buf(e, id),
         D, dy, D, w, x, D);
    loop_end(e, id, &l);
}

void emit_row_norm_param_grads(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long D;
    const char *rows = rows_expr(e, n->in[1], &D), *dy = emit_buf(e, n->in[0]), *x = emit_buf(e, n->in[1]);
    const char *st = emit_buf(e, n->in[2]), *out = emit_buf(e, id);
    int c = is_centred(n);
    ElemLoop l = {.rank = 1, .size = {arena_printf(e->arena, "%lld", D)}, .var = {"j"}, .par = LOOP_PARALLEL,
                  .work = row_work(e, rows, D)};
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
}
