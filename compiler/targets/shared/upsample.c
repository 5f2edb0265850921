/* upsample.c - bilinear upsampling and its gradient (ops/ops_upsample.c) on every target.
 * The forward is a loop over output pixels, each reading its four taps; the gradient a
 * loop over input pixels, each gathering the output pixels within a factor of it that
 * read it, so no two threads write one element and the sums run in a fixed order. */
#include "shared_emitters.h"

/* The taps of output index `o` along an axis of factor f over n input pixels, as the
 * reference computes them: s = (2o + 1 - f) / 2f clamped at 0, rows s0 = floor(s) and
 * s1 (s0 + 1, or s0 at the border), l = the weight of s1. `p` prefixes the names. */
static void emit_src(EmitCtx *e, const char *p, const char *o, long long f, long long n) {
    emit(e, "const float %ss_ = (float)(2 * %s + 1 - %lld) / %d.0f;", p, o, f, (int)(2 * f));
    emit(e, "const float %ss = %ss_ > 0.0f ? %ss_ : 0.0f;", p, p, p);
    emit(e, "const long %s0 = (long)%ss, %s1 = %s0 + (%s0 < %lld);", p, p, p, p, p, n - 1);
    emit(e, "const float %sl = %ss - (float)%s0;", p, p, p);
}

void emit_upsample_bilinear(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    const Shape *xs = &e->g->nodes[n->in[0]].shape;
    long long fh = (long long)attr_h(n, A_FACTOR), fw = (long long)attr_w(n, A_FACTOR), H = xs->d[2], W = xs->d[3];
    const char *x = emit_buf(e, n->in[0]), *y = emit_buf(e, id);
    ElemLoop l = {.rank = 1, .size = {emit_numel(e, id)}, .var = {"k"}, .par = LOOP_PARALLEL};
    loop_begin(e, id, &l);
    emit(e, "const long ox = k %% %lld, oy = k / %lld %% %lld; /* [B, C, %lld, %lld] */", W * fw, W * fw, H * fh,
         H * fh, W * fw);
    emit(e, "const float *const xp = %s + k / %lld * %lld; /* its plane [%lld, %lld] */", x, W * fw * H * fh, H * W, H,
         W);
    emit_src(e, "y", "oy", fh, H);
    emit_src(e, "x", "ox", fw, W);
    emit(e, "%s[k] = (1.0f - yl) * ((1.0f - xl) * xp[y0 * %lld + x0] + xl * xp[y0 * %lld + x1]) +", y, W, W);
    emit(e, "        yl * ((1.0f - xl) * xp[y1 * %lld + x0] + xl * xp[y1 * %lld + x1]);", W, W);
    loop_end(e, id, &l);
}

/* An output pixel o reads input i when floor(s(o)) or the next is i, which bounds o to
 * [(i - 1) f, (i + 2) f); within it the tap weights say how much. */
void emit_upsample_bilinear_bwd(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    long long fh = (long long)attr_h(n, A_FACTOR), fw = (long long)attr_w(n, A_FACTOR), H = n->shape.d[2],
              W = n->shape.d[3];
    long long Ho = H * fh, Wo = W * fw;
    const char *dy = emit_buf(e, n->in[0]), *dx = emit_buf(e, id);
    ElemLoop l = {.rank = 1, .size = {emit_numel(e, id)}, .var = {"k"}, .par = LOOP_PARALLEL};
    loop_begin(e, id, &l);
    emit(e, "const long ix = k %% %lld, iy = k / %lld %% %lld; /* [B, C, %lld, %lld] */", W, W, H, H, W);
    emit(e, "const float *const gp = %s + k / %lld * %lld; /* the gradient's plane [%lld, %lld] */", dy, H * W, Ho * Wo,
         Ho, Wo);
    emit(e, "const long oy_lo = iy > 0 ? (iy - 1) * %lld : 0, oy_hi = iy + 2 < %lld ? (iy + 2) * %lld : %lld;", fh, H,
         fh, Ho);
    emit(e, "const long ox_lo = ix > 0 ? (ix - 1) * %lld : 0, ox_hi = ix + 2 < %lld ? (ix + 2) * %lld : %lld;", fw, W,
         fw, Wo);
    emit(e, "float acc = 0.0f;");
    emit(e, "for (long oy = oy_lo; oy < oy_hi; oy++) {");
    e->indent++;
    emit_src(e, "y", "oy", fh, H);
    emit(e, "const float wy = (y0 == iy ? 1.0f - yl : 0.0f) + (y1 == iy ? yl : 0.0f);");
    emit(e, "if (wy == 0.0f) continue;");
    emit(e, "float row = 0.0f;");
    emit(e, "for (long ox = ox_lo; ox < ox_hi; ox++) {");
    e->indent++;
    emit_src(e, "x", "ox", fw, W);
    emit(e, "row += ((x0 == ix ? 1.0f - xl : 0.0f) + (x1 == ix ? xl : 0.0f)) * gp[oy * %lld + ox];", Wo);
    e->indent--;
    emit(e, "}");
    emit(e, "acc += wy * row;");
    e->indent--;
    emit(e, "}");
    emit(e, "%s[k] = acc;", dx);
    loop_end(e, id, &l);
}
