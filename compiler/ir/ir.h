/* ir.h - the graph IR: one node type, SSA, every node with a static shape, a dtype and the
 * .mdl location it came from.
 *
 * A Graph is an array of nodes in topological order (a node's inputs always have smaller
 * ids). Passes either append nodes (autodiff, optimizer) or build the array anew from
 * copies of the nodes (simplify, split_bn, relu_pool, fold_bn, dce, recompute); none edits
 * the inputs of a node already in a graph. Per-op knowledge (shape, gradient, evaluation, emission)
 * lives in the op table (ops.def, ops.h, one ops_*.c per kind); code elsewhere switches
 * over op kinds (K_EWISE, ...) and names single ops only for rules about those ops:
 * simplify's algebra, lowering. */
#ifndef MLC_IR_H
#define MLC_IR_H

#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "diag.h"

#define IR_MAX_RANK 6
#define IR_MAX_IN 5
#define IR_MAX_OUTPUTS 8 /* runtime/mlc_model.h's MLC_MAX_OUTPUTS */

#include "attrs.h"

typedef enum DType { DT_F32, DT_I32 } DType;

/* A static shape. The batch dimension is symbolic: bit i of bmask says dimension i scales
 * with the batch size B, and d[i] then holds its size at the batch the model was compiled
 * with (used for checking shapes and by the reference interpreter): the graph's batch for
 * B itself, k times it for a merged dimension B*k (reshape([B, T, D] -> [B*T, D])), so
 * k = d[i] / Graph.batch. Generated code loops over the B it is called with, so one
 * trainer serves any batch up to the size it was created for. */
typedef struct Shape {
    int rank;
    int64_t d[IR_MAX_RANK];
    uint8_t bmask;
} Shape;

/* The largest tensor mlc compiles (docs/language.md, "Limits"): every dimension and every
 * tensor's element count at the compile-time batch size is at most this. It keeps sizes,
 * GEMM dimensions (int in BLAS) and index arithmetic far from overflow everywhere after
 * lowering, so later stages can multiply and add sizes without checking each step. */
#define IR_MAX_NUMEL ((int64_t)INT32_MAX)
/* The most nodes a graph may have (docs/language.md, "Limits"): blocks are inlined at every
 * call, so a few lines can ask for millions; past this the compile stops with an error
 * instead of exhausting memory. 100 times the train step of a 600-block ResNet. */
#define IR_MAX_NODES (1 << 18)

typedef enum Op {
#define OP(name, ...) OP_##name,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

/* What a node is to the program, beyond its op. */
typedef enum NodeRole {
    ROLE_NONE = 0,
    ROLE_LOSS = 1 << 0,       /* the scalar loss */
    ROLE_OUTPUT = 1 << 1,     /* the model's output (logits) */
    ROLE_GRAD = 1 << 2,       /* the gradient of a parameter (name = the parameter's) */
    ROLE_RECOMPUTED = 1 << 3, /* a forward value computed again in the backward (recompute.c) */
} NodeRole;

typedef struct Node {
    Op op;
    int nin;
    int in[IR_MAX_IN]; /* node ids */
    Shape shape;
    DType dtype;
    /* Attributes, one slot per name in the op's row of attrs.def: read and write them by
     * name (attrs.h), never by slot. */
    AttrVal attr[IR_MAX_ATTRS];
    const char *name; /* input / param / state name ("fc1.weight"); NULL otherwise */
    int role;         /* NodeRole bits */
    /* A backward value: 1 + the id of the forward value whose gradient it is (autodiff;
     * passes that renumber nodes keep it pointing at the same value, graph_remap_roots);
     * 0: none. Emitters say it in the value's comment. */
    int grad_of;
    SrcLoc loc;
} Node;

typedef enum GraphMode { MODE_TRAIN, MODE_EVAL } GraphMode;

/* --conv-algo: how the C target runs 3x3 stride-1 convolutions (direct, winograd,
 * winograd4: targets/c/conv_algo.c), and how the CUDA target runs every convolution
 * (im2col, implicit, cudnn: targets/cuda/conv.c); auto: each target's default.
 * CONV_ALGO_NAMES spells them in this order, as --conv-algo takes them. */
typedef enum ConvAlgo {
    CONV_ALGO_AUTO,
    CONV_ALGO_DIRECT,
    CONV_ALGO_WINOGRAD,
    CONV_ALGO_WINOGRAD4,
    CONV_ALGO_IM2COL,
    CONV_ALGO_IMPLICIT,
    CONV_ALGO_CUDNN,
    CONV_ALGO_COUNT
} ConvAlgo;
#define CONV_ALGO_NAMES \
    { "auto", "direct", "winograd", "winograd4", "im2col", "implicit", "cudnn" }

typedef struct Graph {
    Arena *arena;
    Node *nodes;
    int n, cap;
    GraphMode mode;
    int batch; /* compile-time batch size (the value of B in shapes) */
    int loss;  /* node id of the loss, or -1 */
    /* The `output` statements, in order: node ids and the names the API gives them. */
    int nout;
    int outputs[IR_MAX_OUTPUTS];
    const char *out_names[IR_MAX_OUTPUTS];
    /* The loss is cross_entropy(outputs[cls_output], cls_label), cls_label an i32 input:
     * class scores [B, C] (a classifier) or per-token scores [B, T, V]. -1: no such loss. */
    int cls_output;
    const char *cls_label;
    ConvAlgo conv_algo; /* --conv-algo (zeroed: auto) */
    int tf32;           /* --tf32 (CUDA): float products may round to TF32 (ModelIR.tf32) */
    int cublaslt;       /* --cublaslt (CUDA): GEMM epilogues in cuBLASLt (ModelIR.cublaslt) */
    /* While lowering: the builtin the .mdl called whose ops are being added (the outermost
     * one), so that a shape error in one of its ops names the call the user wrote as well
     * as the op (`where: mul: shapes ... cannot be broadcast together`); NULL otherwise. */
    const char *call_name;
} Graph;

Graph *graph_new(Arena *a, GraphMode mode, int batch);
/* The settings a graph's targets plan and emit it by (conv_algo, tf32, cublaslt), copied
 * from `from`: a pass that rebuilds a graph must keep them, or its plans are another
 * configuration's. */
void graph_copy_settings(Graph *to, const Graph *from);

/* Appends a node after checking arity and running the op's shape rule. Shape errors are
 * user errors reported at `loc`. Returns the new node's id. */
int graph_add(Graph *g, Op op, const int *in, int nin, const AttrArg *attrs, const SrcLoc *loc);
/* graph_add with the attributes of node `like` that op also has, then `attrs` (a gradient
 * op taking its forward op's geometry). */
int graph_add_like(Graph *g, Op op, const int *in, int nin, const Node *like, const AttrArg *attrs, const SrcLoc *loc);
/* Appends a node whose shape the caller sets (sources: input, param, state, const). */
int graph_add_source(Graph *g, Op op, Shape shape, DType dt, const char *name, const SrcLoc *loc);

/* Appends a copy of a node as it is (no checks): for passes that rebuild a graph. */
int graph_push(Graph *g, const Node *n);
/* A pass that rebuilt g into `out` (the node of g with id i is out's node map[i]): g takes
 * out's nodes, and its loss and outputs follow the map. */
void graph_adopt(Graph *g, const Graph *out, const int *map);
/* Renumbers g's loss, outputs and its nodes' grad_of through map (old id -> new id; g
 * holds the renumbered nodes). */
void graph_remap_roots(Graph *g, const int *map);
/* Whether node id is one of g's outputs. */
int graph_is_output(const Graph *g, int id);

/* Short builders used by lowering, autodiff and the optimizer. */
int ir_unary(Graph *g, Op op, int x, const SrcLoc *loc);
int ir_binary(Graph *g, Op op, int a, int b, const SrcLoc *loc);
int ir_reduce(Graph *g, Op op, int x, int axis, int keepdims, const SrcLoc *loc);
int ir_matmul(Graph *g, int a, int b, int ta, int tb, const SrcLoc *loc);
int ir_reshape(Graph *g, int x, Shape to, const SrcLoc *loc);
/* x[start:end] along axis. */
int ir_slice(Graph *g, int x, int axis, int64_t start, int64_t end, const SrcLoc *loc);
int ir_expand(Graph *g, int x, Shape to, const SrcLoc *loc);
/* A scalar constant value * B^bpow (bpow in -1, 0, 1): mean over the batch needs 1/B. */
int ir_const(Graph *g, double value, int bpow, const SrcLoc *loc);
/* Sums x over its broadcast dimensions so the result has shape `to` (the gradient of a
 * broadcasting op). */
int ir_sum_to(Graph *g, int x, Shape to, const SrcLoc *loc);

static inline Node *ir_node(const Graph *g, int id) { return &g->nodes[id]; }

/* Shapes */
Shape shape_make(int rank, const int64_t *d, uint8_t bmask);
Shape shape_scalar(void);
int64_t shape_numel(const Shape *s); /* with B at its compile-time value */
/* NULL when every dimension of s is in [1, IR_MAX_NUMEL] and so is its element count;
 * otherwise why not, written into buf. */
const char *shape_check(const Shape *s, DType dt, char *buf, size_t n);
int shape_eq(const Shape *a, const Shape *b);
/* Writes `f32[B, 784]`-style text; returns buf. shape_str_at knows the graph's batch and
 * so writes a merged batch dimension as `B*8`; shape_str writes every batch dimension B. */
char *shape_str(const Shape *s, DType dt, char *buf, size_t n);
char *shape_str_at(const Shape *s, DType dt, int batch, char *buf, size_t n);
/* How many times B the batch dimension of s is (1 for B, 8 for B*8); 0: s has none. */
int64_t shape_bscale(const Shape *s, int batch);
/* C expression for dimension i or the whole element count ("B", "784", "B*784", "(B*8)"). */
char *shape_dim_expr(const Shape *s, int i, int batch, char *buf, size_t n);
char *shape_numel_expr(const Shape *s, int batch, char *buf, size_t n);
/* Element count split as numel = c + b*B (at most one batch dimension). */
void shape_numel_affine(const Shape *s, int batch, int64_t *c, int64_t *b);

/* The IR text form: one node per line, `%12 = add %10, %11 : f32[B, 256]  ; mlp.mdl:7:5`. */
void ir_print(FILE *out, const Graph *g);
/* Graphviz. */

/* Checks the graph's invariants (topological order, arity, shapes agree with the shape
 * rules, roles); an internal error (mlc_die) naming the pass if any fails. */
void ir_verify(const Graph *g, const char *after_pass);

#endif
