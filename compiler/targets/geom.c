/* geom.c - the geometry constants a convolution's or a pooling's call takes, printed the
 * same way by every target (the runtime's mlc_conv_geom / mlc_pool_geom). */
#include "emit.h"
#include "ops_attrs.h"

void emit_conv_geom(EmitCtx *e, const Geom *q) {
    emit(e, "static const mlc_conv_geom geom = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, "
            "%lld, %lld, %lld};",
         (long long)q->C, (long long)q->H, (long long)q->W, (long long)q->O, (long long)q->KH, (long long)q->KW,
         (long long)q->sh, (long long)q->sw, (long long)q->ph, (long long)q->pw, (long long)q->dh, (long long)q->dw,
         (long long)q->G, (long long)q->Ho, (long long)q->Wo);
}

void emit_pool_geom(EmitCtx *e, const PGeom *q) {
    emit(e, "static const mlc_pool_geom geom = {%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld};",
         (long long)q->H, (long long)q->W, (long long)q->KH, (long long)q->KW, (long long)q->sh, (long long)q->sw,
         (long long)q->ph, (long long)q->pw, (long long)q->Ho, (long long)q->Wo);
}
