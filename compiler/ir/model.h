/* model.h - a compiled model as the targets see it: the train-step and eval graphs after
 * all passes, the persistent tensors (parameters and optimizer state, in one slab), and
 * the memory plan placing every other tensor in one arena. */
#ifndef MLC_MODEL_IR_H
#define MLC_MODEL_IR_H

#include "ast.h"
#include "ir.h"
#include "names.h"
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
    /* A parameter's gradient (grad_slab.c): its offset in the gradient slab (16-float
     * aligned) and the train-graph node whose buffer it is; -1: none (optimizer state,
     * or a parameter the loss does not depend on). */
    int64_t grad_offset;
    int grad_node;
    /* When the same node is also another parameter's gradient (simplify's CSE merged
     * them: two layers reading one input and feeding one sum), the persistent whose slot
     * that node writes; forward_backward ends by copying it into this one's. -1: none. */
    int grad_copy_of;
} Persistent;

/* Where each node's buffer lives in the arena: offset = c + b * max_batch floats.
 * has_buf[id] == 0: no buffer of its own (source, constant, view, in-place update). */
typedef struct MemPlan {
    char *has_buf;
    int64_t *off_c, *off_b;
    int *inplace_of; /* 1 + the node whose buffer this one took over in place; 0: none */
    /* 1: the buffer holds bfloat16 values, 2 bytes each (target_half_storage: the CUDA
     * target's rounded tensors under --precision bf16); its size is still counted in
     * floats, half as many, rounded up. */
    char *half;
    int64_t ws_off_c, ws_off_b; /* the shared workspace region: ws_off_c + ws_off_b * B */
    int64_t ws_size_c, ws_size_b;
    int64_t ws_per_thread;  /* and per thread of the team (the C conv's scratch slots) */
    int64_t size_c, size_b; /* the arena this graph needs: size_c + size_b * B + ws_per_thread * T */
} MemPlan;
/* The arena in floats for batch size B and T threads. */
static inline int64_t plan_floats(const MemPlan *p, int64_t B, int T) {
    return p->size_c + p->size_b * B + p->ws_per_thread * T;
}

/* Which nodes run together (fuse.c). A group of nodes is one loop nest (C) or one kernel
 * (CUDA), run at its root's position: an elementwise op, expand or reduction. */
typedef struct FusionPlan {
    /* The node whose code computes node id: id itself for a group's root and for nodes
     * that are not fused; a later node for a member; -1 for nodes without code (sources,
     * views outside groups, recomputed values). */
    int *root;
    /* 1: a member read only inside its group, kept in a local (no buffer). */
    char *inl;
    /* Members: for each dimension of the space the member is computed in, the dimension
     * of the node it indexes (-1: broadcast). That space is the group's domain (the
     * root's shape, or a reduction's input), or for a member in a nested loop (nest) the
     * input of the row reduction running that loop. */
    int8_t (*map)[IR_MAX_RANK];
    /* A member that is a reduction is a row reduction: per element of its space it runs
     * a loop of its own over its axis, nested in the group's loop. nest[id]: the row
     * reduction whose loop computes member id (-1: the group's own loop, and nodes outside
     * groups). Row reductions nest in row reductions; nested members are never stored. */
    int *nest;
    /* 1: a cheap function of labels and constants (one_hot, and elementwise ops of it):
     * every group that reads it computes it there, in registers, from the labels. It has
     * no code and no buffer of its own (root and at are -1). */
    char *dup;
    /* A stored value that may overwrite this input of its group (same element read and
     * written by one iteration), or a 2x2 max-pool backward its x (each window read
     * before it is written), if nothing reads the input later; -1: none. */
    int *inplace;
    /* Where node id's code runs: its group's root, or the GEMM or conv2d a group is the
     * epilogue of (-1: no code). */
    int *at;
    /* A matmul: the group that runs on each block of its output as soon as the block is
     * computed, while it is in cache (bias, activation, residual add); a conv2d (ops with
     * OPF_SAMPLE_EPILOGUE): the group that runs on each sample's output likewise; -1: none. */
    int *epilogue;
    /* For a group's root: its lowest member, so a group's nodes lie in lo[root]..root and
     * the emitters size and scan per-group tables by that span, not by the whole graph
     * (which made emission quadratic in memory). -1 for other nodes; NULL: unknown (0). */
    int *lo;
    int ngroups, nfused, nepilogues; /* groups of more than one node; nodes fused into them */
} FusionPlan;

/* One input or output of the model as its API describes it (mlc_io_desc). */
typedef struct ModelIO {
    const char *name; /* the .mdl's input name, or the output's (lower.c) */
    DType dtype;
    Shape shape;    /* [B, ...]: the batch first */
    int eval_reads; /* an input the eval graph reads (forward needs it) */
    int64_t sample_numel;
} ModelIO;

typedef struct ModelIR {
    Arena *arena;
    const char *source; /* the .mdl path */
    ModelSpec spec;
    /* The train step; inference (outputs only); the outputs and the loss in evaluation
     * mode (the trainer's test loss; the C target's forward runs it without the loss). */
    Graph *train, *eval, *eval_loss;
    FusionPlan train_fuse, eval_fuse, eval_loss_fuse;
    MemPlan train_plan, eval_plan, eval_loss_plan;
    int npers;
    NameTable pers_index; /* name -> index in pers */
    Persistent *pers;
    int64_t slab_floats;
    /* The train step's two calls (grad_slab.c): update_phase[id] is 1 for the nodes of
     * the optimizer update (everything computed from the gradients), 0 for forward and
     * backward. The gradients themselves live in their own slab of grad_floats floats,
     * not in the arena, so a caller can reduce them between the two calls. */
    char *update_phase;
    int64_t grad_floats;
    /* The inputs in the order of their `input` statements, the outputs in the order of
     * their `output` statements: what the generated functions take and give. */
    int ninputs, noutputs;
    ModelIO *inputs, *outputs;
    /* The loss is cross_entropy(outputs[cls_output], inputs[cls_label]) (-1: no such
     * loss). A classifier when those are class scores [B, C] (the trainer counts accuracy);
     * per-token scores [B, T, V] are a token model's (mlc_model_api.cls_output). */
    int cls_output, cls_label;
    int classifier;
    /* 2 when a batch_norm of the train step has one value per channel and sample (its
     * statistics need two samples), else 1: mlc_model_api.min_train_batch. */
    int min_train_batch;
    /* --mem-budget (recompute.c): the budget in bytes (0: none); the train step's arena in
     * bytes at the compile-time batch size without recomputation and as planned; how many
     * tensors the backward computes again. */
    int64_t mem_budget, arena_plain, arena_planned;
    int recomputed;
    /* The target the memory plans are for, and the thread count the compile-time arena
     * figures (--report, --mem-budget) assume; the trainer sizes its arena for its own. */
    TargetKind target;
    int threads;
    /* --tf32 (CUDA): cuBLAS may use the tensor cores' TF32 (inputs rounded to 10-bit
     * mantissas, FP32 sums), as PyTorch lets cuDNN do by default. */
    int tf32;
    /* --cublaslt (CUDA): a matmul whose epilogue is a bias, or a bias and ReLU, runs as one
     * cuBLASLt call with that epilogue (targets/cuda/emit_cuda.c, lt_epilogue). */
    int cublaslt;
    /* --precision bf16 (precision.c): the products' inputs and outputs rounded to
     * bfloat16; 0: FP32 throughout. */
    int bf16;
    /* mlc --debug (C): no fusion, no buffer reuse, a #line to the .mdl for every line of
     * a node's code, so a debugger steps through the network's source. */
    int debug;
    ConvAlgo conv_algo; /* --conv-algo, copied into each graph */
} ModelIR;

/* Which IR dumps the user asked for (--dump-ir=STAGE). */
/* Which graphs `--dump-ir=dot[:WHICH]` draws (ir_dot.c). */
typedef enum DotGraphs { DOT_NONE, DOT_BOTH, DOT_TRAIN, DOT_EVAL, DOT_FORWARD } DotGraphs;

typedef struct DumpOptions {
    FILE *out;
    unsigned after; /* bit p (1u << PASS_x, passes.h): the graph(s) after pass p */
    int final;      /* the train step and eval graphs as emitted */
    DotGraphs dot;  /* the compiled graphs as one Graphviz document, after the text dumps */
} DumpOptions;
#define DUMP_AFTER(p) (1u << (p))
#define DUMP_AFTER_ALL ((1u << PASS_COUNT) - 1)

/* The compiled graphs as one Graphviz digraph, fused groups as clusters (ir_dot.c). */
void model_print_dot(FILE *out, const ModelIR *m, DotGraphs which);

/* The whole middle end, one function a reader can follow top to bottom (pipeline.c).
 * mem_budget > 0 (bytes): recompute activations until the train step's arena at the
 * compile-time batch size fits, or stop with an error saying how small it can get. */
typedef struct CompileOptions {
    int batch;          /* > 0: instead of train.batch */
    int64_t mem_budget; /* > 0: --mem-budget, in bytes */
    TargetKind target;  /* the memory plans are for this target (workspaces differ) */
    int threads;        /* the thread count --report and --mem-budget assume (0: 1) */
    int no_relu_pool;   /* tests: skip relu_pool, to compare training with and without it */
    int full_search;    /* tests: every step of --mem-budget's search tries every candidate */
    int tf32;           /* --tf32: ModelIR.tf32 */
    int cublaslt;       /* --cublaslt: ModelIR.cublaslt */
    int debug;          /* mlc --debug: ModelIR.debug */
    ConvAlgo conv_algo; /* --conv-algo: ModelIR.conv_algo */
    int bf16;           /* --precision bf16: ModelIR.bf16 */
} CompileOptions;
ModelIR *compile_model_opts(Arena *a, const Program *p, const CompileOptions *o, const DumpOptions *dump);
/* For the C target, at batch_override (> 0) or train.batch, no budget. */
ModelIR *compile_model(Arena *a, const Program *p, int batch_override, const DumpOptions *dump);

/* fuse.c */
FusionPlan fuse_graph(Arena *a, const Graph *g);
/* mlc --debug: no groups, no epilogues; every node with code runs alone. */
FusionPlan fuse_nothing(Arena *a, const Graph *g);
/* The index space a group loops over: the root's shape, or a reduction's input shape. */
const Shape *fusion_domain(const Graph *g, int root);
/* The map (domain dimension -> operand dimension) of input k of group member `member`
 * (a reduction's input: its own input's dimensions, the space of its loop). */
void fusion_operand_map(const Graph *g, const FusionPlan *fp, int member, int k, int8_t *res);
/* The same for any elementwise op, expand, size-1 reshape or generator read through `map`
 * (what a recomputed value's inputs are read through). */
void fusion_input_map(const Graph *g, int node, int k, const int8_t *map, int8_t *res);
/* Group `root` computes recomputed value x (FusionPlan.dup): one of its members reads x,
 * or reads a recomputed value that reads x. */
int fusion_recomputes(const Graph *g, const FusionPlan *fp, int root, int x);
/* --dump-ir=after:fuse: each kernel with the nodes fused into it. */
void fusion_print(FILE *out, const Graph *g, const FusionPlan *fp);
/* Loop nests / kernels of the graph's code: groups, GEMMs, special ops, updates. */
int fusion_kernels(const Graph *g, const FusionPlan *fp);
/* The phase of each node of an eval graph with its loss, which the C target runs as
 * forward too, without the code only the loss needs (emit_c.c): 0 for the nodes an
 * output depends on, 1 for the rest. Fusion never groups nodes of two phases, so no group
 * computes an output inside the loss's code, which reads the labels forward is not given
 * (a regression's output summed into mse's mean was computed only there, and predict
 * read a NULL label). NULL for any other graph (a train graph, one without a loss or
 * outputs). */
char *loss_phase(Arena *a, const Graph *g);

/* grad_slab.c. The phase of each node of a train graph: 1 for the optimizer update (the
 * nodes computed from parameter gradients, ROLE_GRAD, and the updates), 0 for the rest
 * (forward, loss, backward, running statistics). Fusion never groups nodes of two
 * phases. NULL for a graph without gradients (eval). */
char *update_phase(Arena *a, const Graph *g);
/* Moves ROLE_GRAD from views to the node owning their buffer (a gradient's buffer is
 * its slot in the gradient slab), before fusion and memory planning. */
void grad_owners(Graph *g);
/* Lays the gradient slab out: the gradient the backward finishes first (its code's
 * position, fp->at) sits first, so that buckets complete front to back; copies of a
 * shared gradient node come last. Fills the persistents' grad_offset, grad_node and
 * grad_copy_of and m->grad_floats. */
void layout_grad_slab(ModelIR *m);

/* memplan.c: fp may be NULL (no fusion: every node with code gets a buffer). */
MemPlan plan_memory(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target);
/* The same with first-fit in program order only, the plan an allocator seeing one
 * request at a time would make: what tests compare plan_memory's against. */
MemPlan plan_memory_in_order(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target);
/* mlc --debug: no buffer shares bytes with another (every value kept to the end). */
MemPlan plan_memory_no_reuse(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target);
/* plan_memory with every tensor in floats, none stored as bfloat16 (MemPlan.half): what
 * --report measures that storage's saving against. */
MemPlan plan_memory_in_floats(Arena *a, const Graph *g, const FusionPlan *fp, TargetKind target);

/* Index of the model input with this name, or -1. */
int model_find_input(const ModelIR *m, const char *name);

/* Index of the persistent tensor with this name, or -1. */
int model_find_persistent(const ModelIR *m, const char *name);

#endif
