/* lower.h - from the AST to the graph IR.
 *
 * Lowering evaluates the program at compile time: names are bound, blocks are inlined at
 * each call (each call owning its parameters), compile-time `if`s are decided, layer
 * helpers (dense, cross_entropy, ...) expand into primitive ops and create named
 * parameters, and every op's shape rule runs as its node is created, so a shape error is
 * reported at the .mdl expression that caused it. */
#ifndef MLC_LOWER_H
#define MLC_LOWER_H

#include "ast.h"
#include "ir.h"
#include "passes.h"

/* What the .mdl says besides the graph: its name and its train { } section. */
typedef struct ModelSpec {
    const char *name;
    int batch, epochs;
    int accum; /* micro-batches of `batch` samples per optimizer step (--accum) */
    unsigned long long seed;
    OptimizerSpec opt;
    /* Learning-rate schedule: "constant", "cosine", "step" or "onecycle"; warm-up in
     * epochs; the step schedule's period (epochs) and factor. 0: the trainer's default. */
    const char *schedule;
    double warmup, step_gamma;
    int step_size;
    /* Data: augmentation ("crop:4,flip", NULL: none) and per-channel normalisation. */
    const char *augment;
    int n_norm;
    double norm_mean[4], norm_std[4];
    /* freeze: parameters that get no gradient and no update; no_decay: parameters the
     * optimizer's weight decay skips (param_groups.c applies both). */
    ParamPatterns freeze, no_decay;
} ModelSpec;

/* train_spec.c: reads the model name and the train { } settings (defaults filled in). */
void lower_spec(Arena *a, const Program *p, ModelSpec *spec);

/* Builds the graph of the whole model for `mode`, with B = spec->batch. */
Graph *lower_program(Arena *a, const Program *p, const ModelSpec *spec, GraphMode mode);

#endif
