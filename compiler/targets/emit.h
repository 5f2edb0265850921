/* emit.h - what the target emitters share: the emission context handed to every emitter,
 * the row of a target's per-op emitter table, and the printing helpers.
 *
 * Emitters see a scheduled program (model.h): the train-step graph and the eval graph
 * with every tensor placed in the arena or the parameter slab. */
#ifndef MLC_EMIT_H
#define MLC_EMIT_H

#include <stdio.h>

#include "ir.h"
#include "ops.h"
#include "passes.h"

typedef struct EmitCtx EmitCtx;
typedef struct FusionPlan FusionPlan; /* model.h */
typedef struct Target Target;         /* target.h */
struct EmitCtx {
    Arena *arena;
    const Graph *g;
    const Target *target; /* whose emitters write the nodes */
    FILE *body;           /* the function being written (host code for CUDA) */
    FILE *decls;          /* file-scope text before the functions: CUDA kernels, helpers */
    int indent;
    int host_indent; /* CUDA: the host function's indent while a kernel is being written */
    /* C expression of each node's buffer pointer (NULL: no buffer, e.g. a constant). */
    const char **buf;
    /* 1: node id's buffer holds bfloat16 values, an array of mlc_bf16 (MemPlan.half, a
     * view's too); set with buf by emit_name_buffers. */
    const char *half;
    /* The shared workspace region (pointer expression), for ops with a workspace rule. */
    const char *ws;
    int nkernels; /* kernels emitted so far (CUDA), for unique names */
    /* CUDA: the host work of a call that must precede its launches and that a CUDA graph
     * cannot repeat (copying the inputs in, each call's scalars into the table), written
     * into `prep`; nscalars: slots of the scalar table (mlc_scalar) taken so far. */
    FILE *prep;
    int nscalars;
    struct HostSlot { /* the slots this graph function has filled, by value */
        const char *type, *value;
        int slot;
    } host_slot[64];
    int nhost_slots;
    /* CUDA, while an update's emitter runs: the run of updates alike (multi[0] the one
     * being emitted) that its loop covers in one kernel, a table of their buffers. */
    const int *multi;
    int nmulti;
    const FusionPlan *fp; /* which nodes run as one loop nest / kernel */
    /* C: what a --check-finite copy of a graph function does when it finds a NaN; NULL in
     * the fast functions, which check nothing. */
    const char *bail;
    /* The train step's two calls (grad_slab.c): the function runs the nodes whose
     * phase_of[id] is `phase`; phase_of NULL: every node (inference). */
    const char *phase_of;
    int phase;
    /* The function ends by copying the graph's outputs out (emit_copy_outputs), so their
     * buffers are named even when no node reads them (an output that is an input). */
    int copies_outputs;
    /* Constants the function has declared at its top level, by initialiser text, so that
     * nodes with the same ones share a declaration (C: an optimizer's step constants). */
    /* mlc --debug (C): every line emit() writes is preceded by `#line line "line_file"`,
     * the .mdl line of the node being written (line_file NULL: no directives; escaped
     * already, c_str); mdl_lines counts the lines written so. */
    const char *line_file;
    int line, mdl_lines;
    /* C, a --check-finite copy of a graph function: emit() drops comment lines (the fast
     * function carries them once). */
    int no_comments;
    struct SharedConst {
        const char *init, *name;
    } shared[16];
    int nshared;
};

/* The functions a model's graphs become: the train step's two calls (both from the train
 * graph, split by grad_slab.c), inference (the eval graph) and the loss in evaluation
 * mode (the eval-loss graph). */
typedef enum GraphFn { FN_FORWARD_BACKWARD, FN_UPDATE, FN_FORWARD, FN_EVAL_LOSS } GraphFn;
#define GRAPH_FN_COUNT 4

/* The function being written runs node id's code (its phase, emit.h's EmitCtx). */
static inline int emit_runs(const EmitCtx *e, int id) { return !e->phase_of || e->phase_of[id] == e->phase; }
/* Node id has code of its own in the function being written (emit_node_by_kind writes
 * some): not fused into another node's, of this function's phase, no source or view. */
int emit_has_code(const EmitCtx *e, int id);
/* text with every occurrence of `from` replaced by `to`. */
const char *text_replace(Arena *a, const char *text, const char *from, const char *to);

/* A target's code for one op with code of its own (K_SPECIAL, K_UPDATE): a row of its
 * emitter table (targets/<target>/emitters.c), indexed by Op. */
typedef struct OpEmitter {
    /* Prints the code of node `id`. */
    void (*emit)(EmitCtx *e, int id);
    /* Scratch floats it needs while it runs (NULL: none). The memory plan gives all nodes
     * one shared workspace region (EmitCtx.ws). */
    void (*workspace)(const Graph *g, const Node *n, Workspace *w);
} OpEmitter;

/* Scalar text (ops.h) with the math functions it calls by their neutral names ("exp(")
 * spelled as e->target spells them ("expf(" on C). */
const char *target_math(EmitCtx *e, const char *text);

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
/* The base name of the .mdl a node came from ("?" when none), as comments and checks name it;
 * raw text: pass it through c_str or c_comment before it goes into the output. */
const char *emit_mdl_name(const Node *n);
/* User-controlled text (a .mdl path, a layer or model name) made safe to print, for the
 * C and CUDA targets alike. c_str: the inside of a C string literal ('"' and '\' escaped,
 * control and non-ASCII bytes as three-digit octal escapes, "??" kept from being a
 * trigraph). c_comment: text inside a block comment ("*" "/" and "/" "*" broken by a
 * space, a newline as the two characters \n, other control bytes as \ooo). Both return
 * s itself when nothing needs escaping. */
const char *c_str(Arena *a, const char *s);
const char *c_comment(Arena *a, const char *s);
/* The `static const mlc_conv_geom geom = {...};` / `mlc_pool_geom` line both targets'
 * conv and pooling calls take (geom.c). */
typedef struct Geom Geom;
typedef struct PGeom PGeom;
void emit_conv_geom(EmitCtx *e, const Geom *q);
void emit_pool_geom(EmitCtx *e, const PGeom *q);
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

/* A per-element loop, each target's one primitive for the ops whose code is a loop over
 * elements with a body of scalar statements (optimizer updates, argmax_mask, transpose,
 * one_hot, dropout_mask, batch-norm coefficients: targets/shared/). The body is written
 * once, between loop_begin and loop_end, with emit() (emit_math where it calls math): C
 * syntax on floats and longs that every target reads, using the loop variables, the
 * scalars and the buffers' short names below, or emit_buf's names. The C target opens
 * nested loops (an OpenMP one where `par` says so); CUDA writes a grid-stride kernel over
 * the elements, splits the flat index into the variables, and launches it. */
typedef struct LoopScalar {
    const char *type, *name, *value; /* "float", "step", "lr / (1.0f - pow(0.9f, (float)t))" */
    /* 1: value reads the function's run-time values (lr, t, self->seed), so CUDA computes
     * it on the host and passes it to the kernel (C: no declaration when value is name);
     * 0: a constant, declared where the body runs. */
    int host;
} LoopScalar;
typedef struct LoopBuf {
    const char *name; /* the body's short name for node's buffer: restrict on C */
    int node, write;
} LoopBuf;
typedef enum LoopPar { LOOP_SERIAL, LOOP_PARALLEL, LOOP_PARALLEL_SIMD } LoopPar;
typedef struct ElemLoop {
    int rank;                                         /* 1: a flat loop */
    const char *size[IR_MAX_RANK], *var[IR_MAX_RANK]; /* outermost first; vars are long */
    LoopPar par; /* C: one thread, an OpenMP team when large, and also vectorised */
    int nscalar, nbuf;
    LoopScalar scalar[8];
    LoopBuf buf[6];
    const char *kernel_; /* CUDA, between begin and end: the kernel's name */
} ElemLoop;
/* Node id's loop, as e->target writes it. */
void loop_begin(EmitCtx *e, int id, ElemLoop *l);
void loop_end(EmitCtx *e, int id, ElemLoop *l);
/* emit() of a body line that calls math by the neutral names (target_math). */
void emit_math(EmitCtx *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A matmul with batch axes as one strided-batched GEMM, as C expressions: row-major
 * C_i[M, N] = op(A_i) op(B_i) for i < count, X_i = X + i * sX (sX "0": a matrix shared by
 * every entry). fold: A's entries are consecutive row blocks and B is shared, so the
 * whole product is one GEMM of M (= every entry's rows) x N. */
typedef struct BatchedGemm {
    int fold;
    const char *M, *N, *K, *count;
    const char *A, *lda, *sa, *B, *ldb, *sb, *C, *sc;
} BatchedGemm;
BatchedGemm batched_gemm(EmitCtx *e, int id);

/* The root of node id's epilogue (fuse.c), the group that runs with it; -1: none. */
int emit_epilogue_of(const EmitCtx *e, int id);

/* Whether every f32 input of node id (a product: matmul, a convolution) is a round_bf16
 * value, seen through reshapes (--precision bf16, precision.c): a target may then run
 * the product on bf16 hardware without changing an input. */
int emit_reads_bf16_values(const Graph *g, int id);

#endif
