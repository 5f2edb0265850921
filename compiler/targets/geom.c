/* geom.c - the geometry constants a convolution's or a pooling's call takes, printed the
 * same way by every target (mlc_conv_geom / mlc_pool_geom in runtime/kernels/mlc_geom.h, as designated
 * initialisers). */
#include "emit.h"
#include "ops_attrs.h"

void emit_conv_geom(EmitCtx *e, const Geom *q) {
    emit(e,
         "static const mlc_conv_geom geom = {.C = %lld, .H = %lld, .W = %lld, .O = %lld, .KH = %lld, .KW = %lld, "
         ".sh = %lld, .sw = %lld, .ph = %lld, .pw = %lld, .dh = %lld, .dw = %lld, .G = %lld, .Ho = %lld, .Wo = %lld};",
         (long long)q->C, (long long)q->H, (long long)q->W, (long long)q->O, (long long)q->KH, (long long)q->KW,
         (long long)q->sh, (long long)q->sw, (long long)q->ph, (long long)q->pw, (long long)q->dh, (long long)q->dw,
         (long long)q->G, (long long)q->Ho, (long long)q->Wo);
}

void emit_pool_geom(EmitCtx *e, const PGeom *q) {
    emit(e,
         "static const mlc_pool_geom geom = {.H = %lld, .W = %lld, .KH = %lld, .KW = %lld, .sh = %lld, .sw = %lld, "
         ".ph = %lld, .pw = %lld, .Ho = %lld, .Wo = %lld};",
         (long long)q->H, (long long)q->W, (long long)q->KH, (long long)q->KW, (long long)q->sh, (long long)q->sw,
         (long long)q->ph, (long long)q->pw, (long long)q->Ho, (long long)q->Wo);
}
