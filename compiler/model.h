/* model.h - a compiled model as the targets see it: the train-step and eval graphs after
 * all passes, the persistent tensors (parameters and optimizer state, in one slab), and
 * the memory plan placing every other tensor in one arena. */
#ifndef MLC_MODEL_IR_H
#define MLC_MODEL_IR_H

#include "ast.h"
#include "ir.h"
#include "lower.h"

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
    int64_t ws_off_c, ws_off_b;  /* the shared workspace region: ws_off_c + ws_off_b * B */
    int64_t ws_size_c, ws_size_b;
    int64_t size_c, size_b; /* the arena this graph needs */
} MemPlan;

typedef struct ModelIR {
    Arena *arena;
    const char *source; /* the .mdl path */
    ModelSpec spec;
    Graph *train, *eval;
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
    int lower, autodiff, final, dot;
} DumpOptions;

/* The whole middle end, one function a reader can follow top to bottom (pipeline.c).
 * mem_budget > 0 (bytes): recompute activations until the train step's arena at the
 * compile-time batch size fits, or stop with an error saying how small it can get. */
ModelIR *compile_model_budget(Arena *a, const Program *p, int batch_override, int64_t mem_budget,
                              const DumpOptions *dump);
/* The same without a budget. */
ModelIR *compile_model(Arena *a, const Program *p, int batch_override, const DumpOptions *dump);

/* memplan.c */
MemPlan plan_memory(Arena *a, const Graph *g);

/* Index of the persistent tensor with this name, or -1. */
int model_find_persistent(const ModelIR *m, const char *name);

#endif
