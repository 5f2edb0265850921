/* target.h - the interface every target implements: one folder per target
 * (compiler/targets/c/, compiler/targets/cuda/), one `Target` each, listed in targets.c. */
#ifndef MLC_TARGET_H
#define MLC_TARGET_H

#include <stdio.h>

#include "emit.h"
#include "model.h"

/* How `mlc build` (driver/build.c) compiles a target's source with the trainer's main():
 * COMPILER FLAGS [ARCH FLAGS] SOURCES -I... -o OUT -L... PRE_LIBS -lmlcrt LIBS. */
typedef struct TargetBuild {
    /* The compiler, when --cc names none, into buf. */
    void (*compiler)(char *buf, size_t cap);
    const char *const *flags;    /* NULL-terminated */
    const char *const *pre_libs; /* before the runtime library; NULL-terminated, or NULL */
    const char *const *libs;     /* after the runtime library; NULL-terminated */
    /* Kernel library sources compiled with the model, with its flags and architectures,
     * relative to the runtime's include directory; NULL-terminated, or NULL. */
    const char *const *kernel_srcs;
    /* Appends to argv at n (room for max entries in all) the flags that build for the
     * architectures `arch` names (--cuda-arch; NULL: the target's default) and returns the
     * new count, or -1 after a one-line error on stderr. NULL: the target takes no
     * architecture list. */
    int (*arch_flags)(Arena *a, const char *arch, const char **argv, int n, int max);
    /* 0 when `arch` is a list arch_flags takes, each of whose entries is `oldest` or
     * newer (0: any), else -1 after a one-line error. */
    int (*arch_check)(const char *arch, int oldest);
    /* What model m needs beyond the above (NULL: nothing): a kernel source (as
     * kernel_srcs) into *src and a library (a -l flag) into *lib, each NULL for none. The
     * CUDA target's cuDNN convolutions (--conv-algo cudnn) only, so that other models
     * neither compile them nor link libcudnn. */
    void (*model_extras)(const ModelIR *m, const char **src, const char **lib);
} TargetBuild;

/* A target's spelling of one of the math functions scalar text calls (op_math_names). */
typedef struct MathName {
    const char *neutral, *spelled; /* "exp", "expf" */
} MathName;

typedef struct Target {
    const char *name;    /* "c", "cuda" (what --target takes) */
    const char *src_ext; /* ".c", ".cu" */
    TargetKind kind;     /* what the memory plans are made for */
    /* The code of each op with code of its own, and its workspace ([OP_COUNT], indexed by
     * Op; a row of NULLs for the ops the kind emitters write: emit_node_by_kind). */
    const OpEmitter *emitters;
    const MathName *math; /* every name of op_math_names; {NULL} ends it */
    /* The per-element loop (emit.h: ElemLoop). */
    void (*loop_begin)(EmitCtx *e, int id, ElemLoop *l);
    void (*loop_end)(EmitCtx *e, int id, ElemLoop *l);
    /* Writes the model's source, which includes the header named hdr_name. */
    void (*emit_source)(const ModelIR *m, FILE *src, const char *hdr_name);
    const TargetBuild *build;
    /* Marks the tensors of g it stores as bfloat16 (half[id] = 1; the memory plan sizes
     * them so); NULL: none. */
    void (*half_storage)(const Graph *g, const FusionPlan *fp, char *half);
} Target;

extern const Target target_c, target_cuda;
/* targets.c: every target, NULL-terminated; the one --target names (NULL: none); the
 * one whose memory plans are made for kind k. */
extern const Target *const targets[];
const Target *target_by_name(const char *name);
const Target *target_of_kind(TargetKind k);
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
 * "g_fc1_weight", "in_image") and declares the pointers the function uses (with
 * e->phase_of: those of the nodes it runs and reads), at their slab, gradient slab (G) or
 * arena offsets; the same for both targets and every graph function. */
const char **emit_name_buffers(EmitCtx *e, const ModelIR *m, const MemPlan *plan);
/* "float api_forward_backward(void *model, const void *const *inputs, ...)": the same on
 * every target, since every target's functions take host memory. */
const char *graph_fn_signature(GraphFn f);
typedef struct GraphFnParts {
    const Graph *g;
    const FusionPlan *fp;
    const MemPlan *plan;
    const char *comment; /* what the function does, for the comment above it */
} GraphFnParts;
GraphFnParts graph_fn_parts(const ModelIR *m, GraphFn f);
/* At the end of a graph function: each output the caller asked for (outputs[k] not NULL)
 * copied out of its buffer with copy_fmt ("memcpy(%0, %1, %2)": destination, source,
 * bytes). */
void emit_copy_outputs(EmitCtx *e, const char *copy_fmt);
/* The code of node id: sources, views and fused members have none; fused groups (their
 * roots: elementwise ops, expands, reductions) and matmuls go to the target's kind
 * emitters; special ops and updates to e->target's emitter table. Each block is
 * preceded by the node's comment (a group's: fused_comment). */
typedef struct KindEmitters {
    void (*ewise)(EmitCtx *e, int id);
    void (*reduce)(EmitCtx *e, int id);
    void (*matmul)(EmitCtx *e, int id);
} KindEmitters;
void emit_node_by_kind(EmitCtx *e, int id, const KindEmitters *k);
/* The train step's pieces both targets write alike: the start of forward_backward that
 * sets dropout's counter `t` (from self->step and self->micro); api_train_step, which is
 * api_forward_backward then api_update (checks: the C target's --check-finite, which
 * skips the update after a NaN and reports one found in it); the public NAME_train_step,
 * NAME_forward_backward, NAME_update, NAME_grads, NAME_forward and NAME_eval_loss over the
 * api_ functions. */
void emit_dropout_counter(FILE *out);
/* api_set_sample_offset (mlc_model.h): where this call's samples start in the step's
 * batch, for dropout to draw what one process draws for them (self->sample0). */
void emit_set_sample_offset(const ModelIR *m, FILE *out);
/* The model's norm field (mlc_model.h, norm_of): create's statements setting it to the
 * .mdl's train { mean, std }, and api_norm_of. */
void emit_norm_init(const ModelIR *m, FILE *out);
void emit_norm_of(const ModelIR *m, FILE *out);
/* --sync-bn (batch_sync.c): the model struct's fields for set_batch_sync; the setter (and
 * on CUDA the host staging helper, before the graph functions); the hook's call after a
 * bn_stats or bn_param_grads node. */
void emit_batch_sync_fields(FILE *out);
void emit_batch_sync_setter(const ModelIR *m, FILE *out, int cuda);
void emit_batch_sync_call(EmitCtx *e, int id, int cuda);
/* set_grad_ready (grad_ready.c): per node of forward_backward, the slab's prefix that is
 * final once it has run; the call after node id where that prefix grows; the setter. */
const int64_t *grad_ready_after(const ModelIR *m, const FusionPlan *fp);
void emit_grad_ready_call(EmitCtx *e, const ModelIR *m, const int64_t *ready, int id);
/* forward_backward's two sections, marked by a comment line each: called before each
 * node's code with *section 0 at the start (then 1: forward, 2: backward). Autodiff
 * appends the backward after the loss, so the first node with code past it starts it. */
void emit_section_marker(EmitCtx *e, int id, int *section);
void emit_grad_ready_setter(const ModelIR *m, FILE *out);
/* The end of forward_backward: a parameter whose gradient node another one's slot holds
 * (grad_copy_of) gets a copy in its own slot. copy_fmt: a statement with %lld for the
 * destination and source offsets in G and the element count. */
void emit_grad_copies(const ModelIR *m, FILE *out, const char *copy_fmt);
void emit_train_step(const ModelIR *m, FILE *out, int checks);
void emit_step_wrappers(const ModelIR *m, FILE *out);
/* A C identifier for a tensor name: "fc1.weight" -> "fc1_weight". */
const char *c_ident(Arena *a, const char *name);
/* A float literal that reads back as the same float ("0.001f", "1.0f"). */
const char *c_float(Arena *a, double v);
/* The shortest double literal that reads back as v ("0.9", "0.999"). */
const char *c_double(Arena *a, double v);

/* Replaces %0, %1, ... in tmpl with args; %a, %x, %n via the named list. */
const char *subst(Arena *a, const char *tmpl, const char *const *args, int nargs);
/* The expression of elementwise node id over operand expressions args, as e->target
 * spells it. */
const char *ewise_expr(EmitCtx *e, int id, const char *const *args);
/* A reduction's text (ops.h) as e->target spells it: %a accumulator, %x element, %n count,
 * %m the first pass's result (two-pass reductions; NULL otherwise). */
const char *subst_named(EmitCtx *e, const char *tmpl, const char *acc, const char *x, const char *n, const char *pre);

/* Embedded templates (templates/, turned into C arrays at build time). */
extern const char tmpl_cuda_prologue_cuh[];
extern const char tmpl_trainer_main_c[];
extern const char tmpl_cuda_device_cuh[];    /* device helpers: the start of the CUDA kernel section */
extern const char tmpl_mlc_philox_h[];       /* runtime/kernels/mlc_philox.h, pasted before them */
extern const char tmpl_mlc_bf16_h[];         /* runtime/kernels/mlc_bf16.h, likewise */
extern const char tmpl_cuda_attention_cuh[]; /* attention's block functions, after it */
extern const char tmpl_dist_nccl_c[];        /* mlc build --target cuda --mpi: NCCL */

#endif
