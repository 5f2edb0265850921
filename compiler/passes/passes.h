/* passes.h - the passes between lowering and emission, each in its own file. */
#ifndef MLC_PASSES_H
#define MLC_PASSES_H

#include "ir.h"
#include "ops.h"

/* The targets code is emitted for (compiler/targets/targets.c). The memory plans are made
 * for one: what an op's code needs while it runs (its workspace) depends on the target. */
typedef enum TargetKind { TARGET_C, TARGET_CUDA } TargetKind;

/* Scratch floats an op needs while it runs: c + b * B + per_thread * T for batch size B
 * and T threads (the C target's conv keeps a padded sample per thread). */
typedef struct Workspace {
    int64_t c, b, per_thread;
} Workspace;
/* The workspace node n needs on target t: the rule in that target's emitter table
 * (targets.c), zeros when it has none. */
void target_workspace(TargetKind t, const Graph *g, const Node *n, Workspace *w);
/* The tensors target t stores as bfloat16, 2 bytes a value (half[id] = 1; fp the graph's
 * fusion plan): none on a target without such storage (targets.c). */
typedef struct FusionPlan FusionPlan;
void target_half_storage(TargetKind t, const Graph *g, const FusionPlan *fp, char *half);

/* Parameters and their gradients, as autodiff found them. */
typedef struct GradList {
    int n;
    int *param; /* node ids of params */
    int *grad;  /* node ids of their gradients (-1: the loss does not depend on it) */
} GradList;

/* Parameters named in train { } by glob patterns (fnmatch: `*`, `?`, `[...]`), each with
 * where it was written, for "matches no parameter". */
typedef struct ParamPatterns {
    int n;
    const char **pattern;
    const SrcLoc **loc;
    int rank1; /* no_decay = "biases_and_norms": every parameter of rank 0 or 1 too */
} ParamPatterns;

/* param_groups.c: per node of g, PARAM_FROZEN and PARAM_NO_DECAY for the parameters the
 * patterns name (arena-allocated, 0 for every other node). A pattern that matches no
 * parameter is an error at the place it was written: a typo would otherwise train
 * silently what was meant to stay fixed. */
enum { PARAM_FROZEN = 1, PARAM_NO_DECAY = 2 };
uint8_t *param_groups(const Graph *g, const ParamPatterns *freeze, const ParamPatterns *no_decay);

/* autodiff.c: appends the reverse-mode backward of g->loss to g; fan-out gradients are
 * summed. Every param gets an entry; frozen ones (groups, may be NULL) get no gradient. */
GradList autodiff(Graph *g, const uint8_t *groups);

/* optimizer.c: appends one update node per parameter with a gradient, creating the
 * optimizer state tensors ("<param>.adam_m", ...); weight decay 0 for PARAM_NO_DECAY ones
 * (groups may be NULL). */
typedef struct OptimizerSpec {
    const char *kind; /* "adam", "adamw" (decoupled weight decay) or "sgd" */
    double lr, momentum, beta1, beta2, eps, weight_decay;
    int nesterov;
    double clip_norm; /* > 0: scale all gradients so their global L2 norm is at most this */
    double ema;       /* > 0: train { ema }: "<param>.ema", a moving average of each parameter */
} OptimizerSpec;
void add_optimizer(Graph *g, const GradList *gl, const OptimizerSpec *opt, const uint8_t *groups);

/* precision.c (--precision bf16; both graphs, right after lowering): every f32 input and
 * the output of each matmul, conv2d and attention goes through round_bf16. Rebuilds the
 * graph; returns how many round_bf16 nodes it added. */
int precision_bf16(Graph *g);

/* split_bn.c (train graph, after the optimizer): each bn_apply becomes bn_scale, bn_shift
 * and an elementwise multiply-add, so it fuses with what reads it. Rebuilds the graph and
 * returns the map from old node ids to new ones (arena-allocated). */
int *split_bn(Graph *g);

/* simplify.c: CSE, constant folding, algebraic simplification (x * 1, -(-x), ...). */
void simplify(Graph *g);

/* relu_pool.c (train graph, after simplify): mul(maxpool2d_bwd(dy, x), step(x)) becomes
 * maxpool2d_bwd(mul(dy, step(max_pool2d(x))), x) for windows that do not overlap, so the
 * pooling backward is x's last reader. Returns how many it rewrote; DCE follows. */
int relu_pool(Graph *g);

/* fold_bn.c (eval graph only, after simplify): batch_norm(conv2d(x, w [, bias])) in
 * evaluation mode becomes conv2d(x, w * s) + shift with s = gamma * rsqrt(var + eps) per
 * channel, computed on the weights. Returns how many batch norms it folded. */
int fold_bn(Graph *g);

/* dce.c: removes nodes no root needs. Roots: loss, output, updates, and every source with
 * a name (inputs, params and state stay part of the model's interface). */
void dce(Graph *g);
/* The liveness dce uses: live[id] != 0 when a root needs node id (arena-allocated). */
char *dce_live(const Graph *g);

/* The passes compile_model runs, in order, by the names --dump-ir=after:NAME takes
 * (pipeline.c verifies and dumps the graph after each; main.c lists the names). Adding a
 * pass: one line here, and pass_done(d, PASS_<name>, graph) after its call in pipeline.c. */
#define MLC_PASSES(X) \
    X(lower)          \
    X(precision)      \
    X(autodiff)       \
    X(optimizer)      \
    X(split_bn)       \
    X(simplify)       \
    X(relu_pool)      \
    X(fold_bn)        \
    X(dce)            \
    X(recompute)      \
    X(fuse)

typedef enum PassId {
#define MLC_PASS_ENUM(name) PASS_##name,
    MLC_PASSES(MLC_PASS_ENUM)
#undef MLC_PASS_ENUM
        PASS_COUNT
} PassId;

extern const char *const pass_names[PASS_COUNT];
/* PASS_COUNT when no pass has that name. */
PassId pass_by_name(const char *name);

/* recompute.c: --mem-budget. Recomputes forward values in the backward instead of keeping
 * them alive across it, greedily: cheap ones first (elementwise ops, expand, bn_scale,
 * bn_shift, pooling), convolutions and GEMMs only when the cheap ones cannot fit, until
 * the train step's arena at the compile-time batch size is at most `budget` bytes or no
 * recomputation makes it smaller. Runs on the train graph after DCE. Arena sizes
 * are in bytes; `after` is the smallest reached (== before when nothing helped).
 * full_search: every step tries every candidate, none lazily (what tests hold the lazy
 * steps to). */
typedef struct RecomputeResult {
    int64_t before, after;
    int recomputed; /* tensors computed again in the backward (clones, views not counted) */
} RecomputeResult;
RecomputeResult recompute(Graph *g, int64_t budget, TargetKind target, int threads, int full_search);

#endif
