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
    unsigned long long seed;
    OptimizerSpec opt;
    const char *schedule; /* "constant" or "cosine" */
} ModelSpec;

/* Reads the model name and train { } settings (with defaults filled in). */
void lower_spec(Arena *a, const Program *p, ModelSpec *spec);

/* Builds the graph of the whole model for `mode`, with B = spec->batch. */
Graph *lower_program(Arena *a, const Program *p, const ModelSpec *spec, GraphMode mode);

#endif
