/* ops.h - per-op knowledge, read from the op table (ops.def).
 *
 * Each op kind's rules live in one file (ops_ewise.c, ops_reduce.c, ...): its shape rule,
 * its gradient rule (written with ordinary forward ops, so the backward graph is just more
 * IR), a reference evaluation in double precision, its scalar math in target-neutral text,
 * and the shapes the gradient checker tries. The rules know no target: the code of the
 * ops that are not loops over scalar math (convolutions, optimizer updates, ...) is each
 * target's, in its emitter table (compiler/targets/<target>/emitters.c). Adding an op =
 * one row in ops.def + its attributes' row in attrs.def + its OpRules (+ an emitter per
 * target when it has code of its own). */
#ifndef MLC_OPS_H
#define MLC_OPS_H

#include "ir.h"

typedef enum OpKind { K_SOURCE, K_EWISE, K_REDUCE, K_SHAPE, K_CONTRACT, K_SPECIAL, K_UPDATE } OpKind;

/* Parameter initialisers (param and state nodes: attribute init; its arguments init_a, init_b). */
typedef enum InitKind {
    INIT_ZERO,
    INIT_CONST,   /* init_a */
    INIT_UNIFORM, /* init_a lo, init_b hi */
    INIT_NORMAL,  /* init_a mean, init_b std */
    INIT_AWAY,    /* gradient checks only: uniform in [lo, hi] with a random sign */
} InitKind;
/* Their names, as --dump-ir prints the attribute init (attrs.def). */
#define INIT_KIND_NAMES ((const char *const[]){"zeros", "constant", "uniform", "normal", "away", NULL})

typedef enum OpFlags {
    OPF_ZERO_GRAD = 1 << 0, /* piecewise constant: its gradient rule says "zero" */
    /* Only gradient rules (conv2d's input gradient, gelu's slope, ...) or the passes
     * after autodiff (split_bn: bn_scale, bn_shift) create it: it is checked through the
     * forward op whose gradient or lowering it computes, and has no rule of its own, so a
     * model that differentiates it twice is an internal error. */
    OPF_BACKWARD_ONLY = 1 << 1,
    /* Cheap next to a GEMM or convolution, and deterministic: under --mem-budget the
     * recompute pass (recompute.c) may compute it again in the backward instead of keeping
     * its output alive from the forward. Elementwise ops (K_EWISE) qualify by their kind. */
    OPF_RECOMPUTE = 1 << 2,
    /* Writes its output [B, ...] sample by sample, and its emitters run the elementwise
     * group fuse.c makes its epilogue (FusionPlan.epilogue) on each sample's slice right
     * after computing it (conv2d, conv2d_bwd_data). */
    OPF_SAMPLE_EPILOGUE = 1 << 3,
    /* Costly (a convolution, a GEMM) but deterministic: --mem-budget computes it again in
     * the backward only when recomputing cheap values alone cannot fit the budget
     * (gradient checkpointing: the step then runs part of the forward twice). */
    OPF_CHECKPOINT = 1 << 4,
    /* Never reaches emission: a pass replaces it by other ops first (bn_apply: split_bn
     * in the train step, fold_bn and lowering in evaluation), so no target writes code
     * for it although its kind (K_SPECIAL) has code of its own. */
    OPF_LOWERED = 1 << 5,
    /* Its gradient is none by definition though its value moves with its input
     * (stop_gradient): the gradient check asserts that no gradient reaches the input
     * while the finite differences do not vanish. */
    OPF_STOP_GRAD = 1 << 6,
    /* Moves, selects or compares its inputs' values (relu, expand, max_pool2d, a dropout
     * mask): finite inputs give a finite output, so --check-finite's copy of the step,
     * which has checked the inputs, does not scan this op's output. */
    OPF_KEEPS_FINITE = 1 << 7,
    /* Rounds its input to a coarser format (round_bf16), and its gradient is the
     * identity's, rounded: the gradient check compares against the identity's finite
     * differences within the format's half step, and checks the gradient is rounded. */
    OPF_ROUNDS = 1 << 8,
} OpFlags;

typedef struct OpRules {
    /* Sets n->shape and n->dtype from the inputs and attributes (K_SHAPE ops: checks the
     * preset target shape). Returns NULL, or a user-facing message naming both shapes. */
    const char *(*shape)(Graph *g, Node *n);
    /* Appends nodes computing the gradient of each input from gy, the gradient of the
     * output; gx[i] = -1 means the input gets no gradient (zero). NULL only for sources and
     * optimizer updates, which autodiff never differentiates through. */
    void (*grad)(Graph *g, int node, int gy, int *gx);
    /* Elementwise ops: the scalar function in double (interpreter, folding) and the same
     * in float as scalar text, with %0 and %1 standing for the operands. Scalar text is C
     * expression syntax on floats that every target reads; it calls math functions only
     * by the names in op_math_names ("exp(%0)"), which each target spells its own way. */
    double (*scalar1)(double x, const Node *n);
    double (*scalar2)(double a, double b, const Node *n);
    const char *expr; /* %{alpha}: the node's float attribute alpha, as a literal */
    /* Reductions: scalar text of the accumulator's start value, the step (%a accumulator, %x
     * element) and the final value (%a, %n the reduced count). A two-pass reduction
     * (logsumexp) first runs red_pre_init / red_pre_step over the axis (%a its own
     * accumulator); the main pass's step and final value read that result as %m. */
    const char *red_init, *red_step, *red_fin;
    const char *red_pre_init, *red_pre_step;
    /* Generators (one_hot): each output element is a cheap function of one element of
     * the input and of the element's index along the output's last dimension. gen_expr is
     * that function as scalar text (%0: the input element, %i: the index; %j: the index
     * along the next-to-last dimension, for causal_mask); gen_map gives
     * the input's map when the output is read through map m (a fused group's dimension
     * -> output dimension, -1: none), as fusion maps go (fuse.c). With them fused groups
     * compute the op where they read it instead of loading it from memory. */
    const char *gen_expr;
    void (*gen_map)(const Shape *out, const Shape *in, const int8_t *m, int8_t *res);
    /* Non-elementwise ops: reference evaluation in double over dense row-major tensors
     * (i32 tensors are held as doubles too). */
    void (*eval)(const Graph *g, const Node *n, double *const *in, double *out);
    /* Floating-point operations of one run of node n at the compile-time batch size
     * (NULL: one per output element for elementwise ops, one per input element for
     * reductions and other ops). Used by --report. */
    double (*flops)(const Graph *g, const Node *n);
    /* Gradient-check cases: builds case i (params as inputs, then the op) into an empty
     * train-mode graph and returns the op's node id, or -1 when there is no case i. */
    int (*cases)(Graph *g, int i);
    unsigned flags;
} OpRules;

typedef struct OpInfo {
    const char *name;
    int arity;
    OpKind kind;
    const OpRules *rules;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

static inline const OpInfo *op_of(const Node *n) { return &op_info[n->op]; }
/* The node whose buffer node id uses: itself, or what its chain of reshapes (views)
 * points at. */
static inline int view_owner(const Graph *g, int id) {
    while (g->nodes[id].op == OP_reshape) id = g->nodes[id].in[0];
    return id;
}
/* OP_COUNT when no op has that name. */
Op op_by_name(const char *name);

/* The math functions scalar text may call (exp, log, sqrt, tanh, erf, pow; and
 * rng_uniform(seed, stream, counter), the runtime's Philox draw in [0, 1): rng.h),
 * NULL-terminated: each target maps every one to its own spelling (Target.math). */
extern const char *const op_math_names[];
/* Whether scalar text t calls one of them (a libm call on the C target). */
int op_text_calls_math(const char *t);
/* The same, leaving out the functions that compile without a branch (fabs, round_bf16). */
int op_text_calls_branching_math(const char *t);

/* Floating-point operations of one run of node n at the compile-time batch size: its
 * rule's flops hook, else one per output element (elementwise) or input element. */
double op_flops(const Graph *g, const Node *n);

/* Shared rule helpers (ops.c). */
/* NULL when every input of n is f32, else "<op> needs an f32 tensor, found i32[...]":
 * the check of the ops whose loops are written for floats only (shape_rule_same: the
 * unary K_EWISE ops; expand). shape_rule_broadcast, the binary ones', names both operands. */
const char *shape_need_f32(Graph *g, const Node *n);
const char *shape_rule_same(Graph *g, Node *n);
const char *shape_rule_broadcast(Graph *g, Node *n);
const char *shape_rule_reduce(Graph *g, Node *n);
/* The element of `in` that element k of `out` reads when `in` broadcasts to `out`
 * (row-major, right-aligned, size-1 dimensions repeat). */
int64_t broadcast_index(const Shape *out, const Shape *in, int64_t k);
/* How many windows spanning `span` elements, `stride` apart, fit in `len` elements (the
 * padded input): 0 when not even one does, or the stride is below 1. Convolutions and
 * poolings size their output with it (ops_conv.c, ops_pool.c). */
int64_t window_count(int64_t len, int64_t span, int64_t stride);
/* Normalises a possibly negative axis; -1 when out of range. */
int axis_norm(int axis, int rank);
/* Builds a param for gradient-check cases. */
int case_param(Graph *g, int rank, const int64_t *d, uint8_t bmask, InitKind init, double a, double b);
const char *shape_err(Graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define DECLARE_RULES(r) extern const OpRules r;
#define OP(name, arity, kind, rules) DECLARE_RULES(rules)
#include "ops.def"
#undef OP
#undef DECLARE_RULES

#endif
