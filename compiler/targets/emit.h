/* emit.h - what the target emitters share: the emission context handed to the op rules'
 * emit hooks, and the target interface (one instance per target: emit_c.c, emit_cuda.c).
 *
 * Emitters see a scheduled program (model.h): the train-step graph and the eval graph
 * with every tensor placed in the arena or the parameter slab. */
#ifndef MLC_EMIT_H
#define MLC_EMIT_H

#include <stdio.h>

#include "ir.h"
#include "ops.h"

typedef struct EmitCtx EmitCtx;
typedef struct FusionPlan FusionPlan; /* model.h */
struct EmitCtx {
    Arena *arena;
    const Graph *g;
    TargetKind target;
    FILE *body;  /* the function being written (host code for CUDA) */
    FILE *decls; /* file-scope text before the functions: CUDA kernels, helpers */
    int indent;
    /* C expression of each node's buffer pointer (NULL: no buffer, e.g. a constant). */
    const char **buf;
    /* The shared workspace region (pointer expression), for ops with a workspace rule. */
    const char *ws;
    int nkernels; /* kernels emitted so far (CUDA), for unique names */
    const FusionPlan *fp; /* which nodes run as one loop nest / kernel */
    const char *bail;     /* C: what the function does when --check-finite finds a NaN */
    /* The train step's two calls (grad_slab.c): the function runs the nodes whose
     * phase_of[id] is `phase`; phase_of NULL: every node (inference). */
    const char *phase_of;
    int phase;
};

/* The functions a model's graphs become: the train step's two calls (grad_slab.c) and
 * inference. */
typedef enum GraphFn { FN_FORWARD_BACKWARD, FN_UPDATE, FN_EVAL } GraphFn;

/* The function being written runs node id's code (its phase, emit.h's EmitCtx). */
static inline int emit_runs(const EmitCtx *e, int id) { return !e->phase_of || e->phase_of[id] == e->phase; }

/* A line in the current function body, at the current indent. */
void emit(EmitCtx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The buffer of node id ("t12", "P->fc1_weight", ...). */
const char *emit_buf(EmitCtx *e, int id);
/* "B" or the literal size of dimension i of node id; the element count. */
const char *emit_dim(EmitCtx *e, int id, int i);
const char *emit_numel(EmitCtx *e, int id);
/* A float literal that round-trips (e.g. "0.001f"). */
const char *emit_float(EmitCtx *e, double v);
/* A comment naming the .mdl line the node came from and its op and shape. */
void emit_node_comment(EmitCtx *e, int id);
/* Splits node x's shape around `axis` into C expressions outer x n x inner. */
void emit_axis_split(EmitCtx *e, int x, int axis, const char **outer, const char **n, const char **inner);

/* A fused group's loops (emit_fused.c): the domain's dimensions, merged where every
 * access allows, outermost first; loop L covers domain dimensions first[L]..last[L] and
 * its variable is var[L]. A reduction's axis is loop `axis` (-1: not a reduction).
 * nrows: the row reductions among the members, each a loop of its own in the body. */
typedef struct FusedLoop {
    const FusionPlan *fp;
    int root, nd, axis, nrows;
    int lo; /* the group's lowest member: its members lie in lo..root */
    int first[IR_MAX_RANK], last[IR_MAX_RANK];
    const char *size[IR_MAX_RANK], *var[IR_MAX_RANK];
    const char *total; /* the domain's element count */
} FusedLoop;
/* merge_dims = 0: a loop per real dimension (a GEMM epilogue loops over rows, columns);
 * 1: merged where every access allows; FUSED_PER_SAMPLE: the same, except that the batch
 * dimension 0 keeps loop 0 to itself (a conv epilogue runs on one sample at a time). */
enum { FUSED_PER_SAMPLE = 2 };
void fused_loop(EmitCtx *e, const FusionPlan *fp, int root, int merge_dims, FusedLoop *fl);
/* The node comment of the root, then a line per member saying where its value lives. */
void fused_comment(EmitCtx *e, const FusedLoop *fl);
/* How many statements the body has before the root's (0 for a group of one). */
int fused_statements(const FusedLoop *fl, const Graph *g);
/* Writes the members' statements at the loop variables (kept members are stored; row
 * reductions are loops over their axes) and returns the root's value: an elementwise
 * root's expression, or the value a reduction accumulates. With check_bail
 * (--check-finite) each value is also checked as it is made, running check_bail at the
 * first NaN/Inf. */
const char *fused_body(EmitCtx *e, const FusedLoop *fl, const char *check_bail);
/* The root's output index at the loop variables (a reduction: without its axis). */
const char *fused_out_index(EmitCtx *e, const FusedLoop *fl);
/* Every buffer the group touches, written ones first (for kernel parameter lists). */
void fused_buffers(EmitCtx *e, const FusedLoop *fl, void (*add)(void *ctx, int node, int write), void *ctx);

/* The root of node id's epilogue (fuse.c), the group that runs with it; -1: none. */
int emit_epilogue_of(const EmitCtx *e, int id);
/* C target (emit_c.c): the code of node id, an op with OPF_SAMPLE_EPILOGUE (conv2d, its
 * input gradient), and of its epilogue (fuse.c). `prepare` runs once; then an OpenMP loop over the samples,
 * with `team` threads, runs `sample` (%0: the sample's index), which computes that sample's
 * output, and the group on that sample's slice while it is in cache. --check-finite runs
 * `whole` (the op over the batch) instead, checks its output, then the group's checked
 * variant. Each is a C expression. */
void c_sample_epilogue(EmitCtx *e, int id, const char *prepare, const char *team, const char *sample, const char *whole);

/* CUDA target (emit_cuda.c): what the op hooks use to write one kernel for node id.
 * cuda_kernel_begin prints the node comment and the kernel's signature into e->decls
 * (`const long B`, the node's buffers, then `extra_params` if not NULL) and opens a
 * grid-stride loop `for (long IVAR ...; IVAR < COUNT; ...)`; until cuda_kernel_end,
 * emit() writes the loop's body. It returns the kernel's name, which cuda_launch (in the
 * host function, after emit_node_comment) launches over COUNT work items. */
const char *cuda_kernel_begin(EmitCtx *e, int id, const char *count, const char *ivar, const char *extra_params);
void cuda_kernel_end(EmitCtx *e);
void cuda_launch(EmitCtx *e, int id, const char *kernel, const char *count, const char *extra_args);
/* The kernel of node id's epilogue (fuse.c), if it has one, launched after the op's own
 * work (a hook calls it last). */
void cuda_epilogue(EmitCtx *e, int id);

#endif
