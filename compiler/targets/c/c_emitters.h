/* c_emitters.h - the C target's emitters, one file per op family (conv.c, norm.c, ...),
 * gathered into its emitter table (emitters.c), and what they share with emit_c.c. */
#ifndef MLC_C_EMITTERS_H
#define MLC_C_EMITTERS_H

#include "shared_emitters.h"
#include "target.h"

/* Loops below this many elements run on one thread: waking the team costs more.
 * OMP_MIN_WORK: the same number as the generated code spells it. */
#define OMP_MIN_WORK_N 32768
#define OMP_STR_(x) #x
#define OMP_STR(x) OMP_STR_(x)
#define OMP_MIN_WORK OMP_STR(OMP_MIN_WORK_N)

extern const OpEmitter c_emitters[OP_COUNT];
extern const TargetBuild c_build; /* toolchain.c */
extern const MathName c_math[];   /* the spelling of op_math_names */

/* emit_c.c: the code of node id, an op with OPF_SAMPLE_EPILOGUE (conv2d, its
 * input gradient), and of its epilogue (fuse.c). `prepare` runs once; then an OpenMP loop over the samples,
 * with `team` threads, runs `sample` (%0: the sample's index), which computes that sample's
 * output, and the group on that sample's slice while it is in cache. With `step` (a C
 * expression, not NULL: the samples a call computes, known when the step runs) the loop
 * runs over pieces of `step` samples, `sample` (%0: the piece's first sample) computes a
 * piece and the group runs on each of its samples; `team` may use `pieces`, their count.
 * A checked function (--check-finite's copy) runs `whole` (the op over the batch)
 * instead, checks its output, then the group's checked variant. Each is a C expression. */
void c_sample_epilogue(EmitCtx *e, int id, const char *prepare, const char *team, const char *sample, const char *whole,
                       const char *step);

void emit_conv_c(EmitCtx *e, int id);
void ws_conv_c(const Graph *g, const Node *n, Workspace *w);
/* --report: conv node n's kernel variant with vw-float vectors, in words (conv.c) */
void c_conv_variant(const Graph *g, const Node *n, int vw, char *buf, size_t cap);
/* The vector width libmlckernels gets from -march=native on this machine (its cpuid), and
 * the instruction set's name (toolchain.c) */
int c_native_vec_width(const char **isa);
void emit_pool_c(EmitCtx *e, int id);
void emit_norm_c(EmitCtx *e, int id);
void emit_slice_c(EmitCtx *e, int id);
void emit_pad_c(EmitCtx *e, int id);
void emit_concat_c(EmitCtx *e, int id);
void emit_sgd_c(EmitCtx *e, int id); /* optim.c */
void emit_sgd_plain_c(EmitCtx *e, int id);
void emit_adam_c(EmitCtx *e, int id);
/* At node id of the update function: where a run of optimizer updates the kernel library
 * does begins (big enough for a team), opens one OpenMP team around all of them and
 * returns the node after the run's last; else -1. c_optim_team_end closes it. */
int c_optim_team_begin(EmitCtx *e, int id);
void c_optim_team_end(EmitCtx *e);
const char *c_shared_const(EmitCtx *e, int id, const char *type, const char *prefix, const char *init,
                           const char *comment);
void emit_row_norm_c(EmitCtx *e, int id);  /* rownorm.c */
void emit_embedding_c(EmitCtx *e, int id); /* embedding.c */
void emit_attention_c(EmitCtx *e, int id); /* attention.c */

/* loop.c: the per-element loop (emit.h: ElemLoop). */
void c_loop_begin(EmitCtx *e, int id, ElemLoop *l);
void c_loop_end(EmitCtx *e, int id, ElemLoop *l);

#endif
