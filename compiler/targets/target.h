/* target.h - the interface every target implements (emit_c.c, emit_cuda.c). */
#ifndef MLC_TARGET_H
#define MLC_TARGET_H

#include <stdio.h>

#include "emit.h"
#include "model.h"

typedef struct Target {
    const char *name;    /* "c", "cuda" (what --target takes) */
    const char *src_ext; /* ".c", ".cu" */
    TargetKind kind;     /* what the memory plans are made for */
    /* Writes the model's source, which includes the header named hdr_name. */
    void (*emit_source)(const ModelIR *m, FILE *src, const char *hdr_name);
} Target;

extern const Target target_c, target_cuda;
const Target *target_by_name(const char *name);
/* The CUDA target's kernels alone, as a unit that compiles by itself (NVRTC, for tests). */
void emit_cuda_kernels(const ModelIR *m, FILE *out);

/* emit_common.c: what both targets share. */
/* The header: the model's C API (the same for every target). */
void emit_header(const ModelIR *m, FILE *hdr);
/* The API's tables: inputs and outputs (mlc_io_desc NAME_inputs[], NAME_outputs[]) and
 * persistent tensors (mlc_tensor_desc NAME_tensors[]). */
void emit_tensor_table(const ModelIR *m, FILE *out);
/* The `const mlc_model_api NAME_api = {...}` at the end of a source. */
void emit_api_struct(const ModelIR *m, FILE *out, const char *target_name);
/* Parameter initialisation code from the persistent table, writing through `ptr_fmt`
 * (printf format with %lld for the slab offset, e.g. "host + %lld"). */
void emit_param_init(const ModelIR *m, FILE *out, const char *indent, const char *ptr_fmt);
/* Binds the model inputs the graph reads (in_image = inputs[0], ...; on CUDA after
 * copying them to the device), names every node's buffer ("t12", "p_fc1_weight",
 * "in_image") and declares the pointers the function uses, at their slab / arena
 * offsets; the same for both targets and every graph function. */
const char **emit_name_buffers(EmitCtx *e, const ModelIR *m, const MemPlan *plan);
/* The functions a model's graphs become: the API's train_step, forward and eval_loss. */
typedef enum GraphFn { FN_TRAIN_STEP, FN_FORWARD, FN_EVAL_LOSS } GraphFn;
#define GRAPH_FN_COUNT 3
/* "float api_train_step(void *model, const void *const *inputs, ...)": the same on every
 * target, since every target's functions take host memory. */
const char *graph_fn_signature(GraphFn f);
typedef struct GraphFnParts {
    const Graph *g;
    const FusionPlan *fp;
    const MemPlan *plan;
    const char *comment; /* what the function does, for the comment above it */
} GraphFnParts;
GraphFnParts graph_fn_parts(const ModelIR *m, GraphFn f);
/* NAME_train_step, NAME_forward, NAME_eval_loss: the header's functions over api_*. */
void emit_fn_wrappers(const ModelIR *m, FILE *out);
/* At the end of a graph function: each output the caller asked for (outputs[k] not NULL)
 * copied out of its buffer with copy_fmt ("memcpy(%0, %1, %2)": destination, source,
 * bytes). */
void emit_copy_outputs(EmitCtx *e, const char *copy_fmt);
/* The code of node id: sources, views and fused members have none; fused groups (their
 * roots: elementwise ops, expands, reductions) and matmuls go to the target's kind
 * emitters; special ops and updates to their op rules' hook for e->target. Each block
 * is preceded by the node's comment (a group's: fused_comment). */
typedef struct KindEmitters {
    void (*ewise)(EmitCtx *e, int id);
    void (*reduce)(EmitCtx *e, int id);
    void (*matmul)(EmitCtx *e, int id);
} KindEmitters;
void emit_node_by_kind(EmitCtx *e, int id, const KindEmitters *k);
/* A C identifier for a tensor name: "fc1.weight" -> "fc1_weight". */
const char *c_ident(Arena *a, const char *name);
/* A float literal that reads back as the same float ("0.001f", "1.0f"). */
const char *c_float(Arena *a, double v);

/* Replaces %0, %1, ... in tmpl with args; %a, %x, %n via the named list. */
const char *subst(Arena *a, const char *tmpl, const char *const *args, int nargs);
/* The C/CUDA expression of elementwise node id over operand expressions args. */
const char *ewise_expr(EmitCtx *e, int id, const char *const *args);
/* A reduction's text (ops.h): %a accumulator, %x element, %n count, %m the first pass's
 * result (two-pass reductions; NULL otherwise). */
const char *subst_named(Arena *a, const char *tmpl, const char *acc, const char *x, const char *n, const char *pre);

/* Embedded templates (templates/, turned into C arrays at build time). */
extern const char tmpl_c_prologue_h[];
extern const char tmpl_cuda_prologue_cuh[];
extern const char tmpl_trainer_main_c[];
extern const char tmpl_cuda_device_cuh[]; /* device helpers: the start of the CUDA kernel section */

#endif
