/* model.h - a compiled model as the targets see it: the train-step and eval graphs after
 * all passes, the persistent tensors (parameters and optimizer state, in one slab), and
 * the memory plan placing every other tensor in one arena. */
#ifndef MLC_MODEL_IR_H
#define MLC_MODEL_IR_H

#include "ast.h"
#include "ir.h"
#include "lower.h"
#include "passes.h"

/* A parameter or optimizer state tensor: lives in the slab for the model's lifetime. */
typedef struct Persistent {
    const char *name;
    Shape shape;
    int is_param;
    int init; /* InitKind */
    double a, b;
    int64_t offset; /* in floats, within the slab; 16-float aligned */
} Persistent;

/* Where each node's buffer lives in the arena: offset = c + b * max_batch floats.
 * has_buf[id] == 0: no buffer of its own (source, constant, view, in-place update). */
typedef struct MemPlan {
    char *has_buf;
    int64_t *off_c, *off_b;
    int *inplace_of; /* 1 + the node whose buffer this one took over in place; 0: none */
    int64_t ws_off_c, ws_off_b;  /* the shared workspace region: ws_off_c + ws_off_b * B */
    int64_t ws_size_c, ws_size_b;
    int64_t size_c, size_b; /* the arena this graph needs */
} MemPlan;

/* Which nodes run together (fuse.c). A group of nodes is one loop nest (C) or one kernel
 * (CUDA), run at its root's position: an elementwise op, expand or reduction. */
typedef struct FusionPlan {
    /* The node whose code computes node id: id itself for a group's root and for nodes
     * that are not fused; a later node for a member; -1 for nodes without code (sources,
     * views outside groups). */
    int *root;
    /* 1: a member read only inside its group, kept in a local (no buffer). */
    char *inl;
    /* Members: for each dimension of the group's domain, the dimension of the node it
     * indexes (-1: broadcast). The domain is the root's shape, or a reduction's input. */
    int8_t (*map)[IR_MAX_RANK];
    /* A stored value that may overwrite this input of its group (same element read and
     * written by one iteration), if nothing reads the input later; -1: none. */
    int *inplace;
    /* Where node id's code runs: its group's root, or the GEMM or conv2d a group is the
     * epilogue of (-1: no code). */
    int *at;
    /* A matmul: the group that runs on each block of its output as soon as the block is
     * computed, while it is in cache (bias, activation, residual add); a conv2d (ops with
     * OPF_SAMPLE_EPILOGUE): the group that runs on each sample's output likewise; -1: none. */
    int *epilogue;
    int ngroups, nfused, nepilogues; /* groups of more than one node; nodes fused into them */
} FusionPlan;

typedef struct ModelIR {
    Arena *arena;
    const char *source; /* the .mdl path */
    ModelSpec spec;
    Graph *train, *eval;
    FusionPlan train_fuse, eval_fuse;
    MemPlan train_plan, eval_plan;
    int npers;
    Persistent *pers;
    int64_t slab_floats;
    /* The data the trainer feeds: the f32 input [B, ...] and the i32 labels [B]. */
    const char *data_name, *label_name;
    Shape data_shape;
    int64_t classes; /* per-sample outputs */
    /* --mem-budget (recompute.c): the budget in bytes (0: none); the train step's arena in
     * bytes at the compile-time batch size without recomputation and as planned; how many
     * tensors the backward computes again. */
    int64_t mem_budget, arena_plain, arena_planned;
    int recomputed;
} ModelIR;

/* Which IR dumps the user asked for (--dump-ir=STAGE). */
typedef struct DumpOptions {
    FILE *out;
    unsigned after; /* bit p (1u << PASS_x, passes.h): the graph(s) after pass p */
    int final;      /* the train step and eval graphs as emitted */
    int dot;        /* Graphviz instead of the text form */
} DumpOptions;
#define DUMP_AFTER(p) (1u << (p))
#define DUMP_AFTER_ALL ((1u << PASS_COUNT) - 1)

/* The whole middle end, one function a reader can follow top to bottom (pipeline.c).
 * mem_budget > 0 (bytes): recompute activations until the train step's arena at the
 * compile-time batch size fits, or stop with an error saying how small it can get. */
ModelIR *compile_model_budget(Arena *a, const Program *p, int batch_override, int64_t mem_budget,
                              const DumpOptions *dump);
/* The same without a budget. */
ModelIR *compile_model(Arena *a, const Program *p, int batch_override, const DumpOptions *dump);

/* fuse.c */
FusionPlan fuse_graph(Arena *a, const Graph *g);
/* The index space a group loops over: the root's shape, or a reduction's input shape. */
const Shape *fusion_domain(const Graph *g, int root);
/* The map (domain dimension -> operand dimension) of input k of group member `member`. */
void fusion_operand_map(const Graph *g, const FusionPlan *fp, int member, int k, int8_t *res);
/* --dump-ir=after:fuse: each kernel with the nodes fused into it. */
void fusion_print(FILE *out, const Graph *g, const FusionPlan *fp);
/* Loop nests / kernels of the graph's code: groups, GEMMs, special ops, updates. */
int fusion_kernels(const Graph *g, const FusionPlan *fp);

/* memplan.c: fp may be NULL (no fusion: every node with code gets a buffer). */
MemPlan plan_memory(Arena *a, const Graph *g, const FusionPlan *fp);

/* Index of the persistent tensor with this name, or -1. */
int model_find_persistent(const ModelIR *m, const char *name);

#endif
