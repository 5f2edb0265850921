/* shared_emitters.h - the emitters every target shares: the ops whose code is one
 * per-element loop (emit.h: ElemLoop), written once here with target-neutral bodies and
 * wrapped by each target's loop. Their rows appear in every target's emitter table. */
#ifndef MLC_SHARED_EMITTERS_H
#define MLC_SHARED_EMITTERS_H

#include "emit.h"

void emit_sgd(EmitCtx *e, int id); /* optim.c */
void emit_adam(EmitCtx *e, int id);
void emit_ema(EmitCtx *e, int id);
void emit_param_ema(EmitCtx *e, int id); /* train { ema } */
/* Adam node n's step size lr / (1 - b1^t) and 1 / (1 - b2^t): host expressions in double,
 * rounded to float, of the step function's lr and t (every target's Adam takes them). */
void adam_bias_corrections(EmitCtx *e, const Node *n, const char **step, const char **inv_bc2);
/* Its moments' weights 1 - b1 and 1 - b2 (float literals, from the betas in double) and
 * AdamW's host expression 1 - lr * wd */
void adam_moment_weights(EmitCtx *e, const Node *n, const char **w1, const char **w2);
const char *adam_decay(EmitCtx *e, const Node *n);
void emit_argmax(EmitCtx *e, int id);      /* reduce.c */
void emit_transpose(EmitCtx *e, int id);   /* layout.c */
void emit_one_hot(EmitCtx *e, int id);     /* labels.c */
void emit_dropout(EmitCtx *e, int id);     /* random.c */
void emit_bn_coef(EmitCtx *e, int id);     /* norm.c */
void emit_causal_mask(EmitCtx *e, int id); /* mask.c */
/* lang (issue 14) */
void emit_argmax_index(EmitCtx *e, int id);      /* reduce.c */
void emit_upsample_bilinear(EmitCtx *e, int id); /* upsample.c */
void emit_upsample_bilinear_bwd(EmitCtx *e, int id);

#endif
