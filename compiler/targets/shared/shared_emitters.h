/* shared_emitters.h - the emitters every target shares: the ops whose code is one
 * per-element loop (emit.h: ElemLoop), written once here with target-neutral bodies and
 * wrapped by each target's loop. Their rows appear in every target's emitter table. */
#ifndef MLC_SHARED_EMITTERS_H
#define MLC_SHARED_EMITTERS_H

#include "emit.h"

void emit_sgd(EmitCtx *e, int id);     /* optim.c */
void emit_adam(EmitCtx *e, int id);
void emit_ema(EmitCtx *e, int id);
void emit_argmax(EmitCtx *e, int id);  /* reduce.c */
void emit_transpose(EmitCtx *e, int id); /* layout.c */
void emit_one_hot(EmitCtx *e, int id); /* labels.c */
void emit_dropout(EmitCtx *e, int id); /* random.c */
void emit_bn_coef(EmitCtx *e, int id); /* norm.c */

#endif
