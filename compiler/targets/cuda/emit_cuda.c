/* emit_cuda.c - the CUDA target: one .cu file, kernels plus host code, cuBLAS for GEMMs.
 *
 * The model keeps everything on the GPU: the slab (parameters, optimizer state), the
 * gradient slab, the arena (every other tensor, at the memory plan's offsets c + b *
 * max_batch) and device copies of the input batch. The API functions take host memory,
 * like the C target's, so the runtime cannot tell the two apart: forward_backward copies
 * the batch in, runs the forward and backward on one stream into the gradient slab and
 * copies the loss (and outputs) back; update runs the optimizer on the same stream;
 * train_step is the two. Only grads() hands out device memory (the gradient slab, for a
 * reduction between the calls).
 *
 * Each of those is three host functions: F_prepare (the host's part of a call: the inputs
 * copied in, the call's scalars into the model's scalar table, copied to the device),
 * F_launch (the nodes' launches in order, then the loss and outputs copied to pinned host
 * memory; nothing else, so a CUDA graph can capture it) and the API function, which runs
 * the two, the launches as a CUDA graph per batch size where no host callback must run
 * between them (runtime/kernels/cuda/graph.cu), and hands out what was staged. F_launch
 * launches one kernel per fused group of elementwise ops and expands (a grid-stride loop
 * over the output, the flat index split into the merged loop dimensions; the op table's
 * scalar text, as cuda_math spells it; where the last loop comes in runs of 4 (8 with
 * bfloat16 buffers), a thread per run, read and written as 16-byte vectors: lanes()), one
 * kernel per
 * reduction (a thread per output element, a sequential loop over the axis:
 * deterministic, no atomics), cublasSgemm for matmuls, and the emitter table
 * (emitters.c) for special ops and optimizer updates (a run of updates alike: one kernel,
 * loop.c). Every kernel and launch is
 * preceded by a comment naming the IR node and the .mdl line it came from.
 *
 * Convolutions, poolings and batch-norm sums are one call each into the launchers of
 * the kernel library libmlckernels_cuda (runtime/kernels/mlc_kernels_cuda.h: im2col /
 * col2im gathers, strided-batched cuBLAS GEMMs, pooling kernels), which `mlc build`
 * compiles with the model (toolchain.c).
 *
 * The kernels form one section of the file that compiles on its own (a small prelude,
 * the device functions they call: the Philox dropout draws from, attention's block
 * functions, templates/cuda_device.cuh; then the nodes' kernels), which
 * emit_cuda_kernels() writes for NVRTC-based tests. */
#include <stdlib.h>
#include <string.h>

#include "cuda_emitters.h"
#include "ops.h"
#include "target.h"

/* Defines what the kernels need that host headers would otherwise provide, so the
 * kernel section also compiles alone (NVRTC has no math.h). */
static const char kernel_prelude[] =
    "/* ---- kernels ---- */\n"
    "#ifndef INFINITY\n"
    "#define INFINITY __int_as_float(0x7f800000)\n"
    "#endif\n\n";

/* ---- kernel signatures ---- */

/* buffers one kernel takes (a fused group's, held to fuse.c's GROUP_MAX_BUFFERS): 2 KB of
 * pointers, within the 4 KB of parameters every CUDA version allows a kernel */
#define MAX_KPARAMS 256

typedef struct KParams {
    int n;
    const char *name[MAX_KPARAMS];
    const char *type[MAX_KPARAMS]; /* "float *", "const float *", "const int *", "const mlc_bf16 *" */
} KParams;

/* Node x's buffer as a parameter of the kernel being written. */
static void kparams_add(KParams *kp, const EmitCtx *e, int x, int writable) {
    const char *name = e->buf[x];
    if (!name) return; /* a constant: its value is in the expression */
    for (int i = 0; i < kp->n; i++)
        if (!strcmp(kp->name[i], name)) return;
    if (kp->n == MAX_KPARAMS) mlc_die("a kernel with more than %d buffers", MAX_KPARAMS);
    kp->name[kp->n] = name;
    kp->type[kp->n] = arena_printf(e->arena, "%s%s *", writable ? "" : "const ", cuda_elem_type(e, x));
    kp->n++;
}

const char *cuda_elem_type(const EmitCtx *e, int x) {
    return e->g->nodes[x].dtype == DT_I32 ? "int" : e->half && e->half[x] ? "mlc_bf16" : "float";
}

/* The buffers node id's kernel touches: its output, then its inputs. An optimizer update
 * writes its parameter and its state in place and only reads the gradient (input 1). */
static void kernel_params(EmitCtx *e, int id, KParams *kp) {
    const Node *n = &e->g->nodes[id];
    int update = op_of(n)->kind == K_UPDATE;
    kp->n = 0;
    if (!update) kparams_add(kp, e, id, 1);
    for (int k = 0; k < n->nin; k++) kparams_add(kp, e, n->in[k], update && k != 1);
}

/* emit() writes into the kernel between cuda_kernel_begin and cuda_kernel_end; the host
 * function's indent waits in e->host_indent meanwhile. */
/* Opens kernel `name` over buffers kp; `comment` prints its comment into the kernel
 * section (the node's, or a fused group's). The loop gives each thread work items `ivar`
 * of `count`; with per_block, each block (of MLC_ROW_THREADS threads) work items. */
static void kernel_open(EmitCtx *e, const char *name, const KParams *kp, const char *count, const char *ivar,
                        const char *extra_params, void (*comment)(EmitCtx *, const void *), const void *arg,
                        int per_block, int aligned) {
    cuda_kernel_enter(e);
    comment(e, arg);
    /* the signature on one line when it fits, else a parameter a line */
    const char **par = ARENA_ARRAY(e->arena, const char *, kp->n + 3);
    int np = 0;
    par[np++] = "const long B";
    for (int i = 0; i < kp->n; i++) par[np++] = arena_printf(e->arena, "%s%s", kp->type[i], kp->name[i]);
    if (extra_params) par[np++] = extra_params;
    const char *line = arena_printf(e->arena, "static __global__ void %s(", name);
    for (int i = 0; i < np; i++) line = arena_printf(e->arena, "%s%s%s", line, i ? ", " : "", par[i]);
    if (strlen(line) + 3 <= 110) {
        emit(e, "%s) {", line);
    } else {
        emit(e, "static __global__ void %s(%s,", name, par[0]);
        for (int i = 1; i < np; i++) emit(e, "        %s%s", par[i], i + 1 < np ? "," : ") {");
    }
    emit(e, "    (void)B;");
    /* every buffer starts 16 floats into the allocation's 256 bytes (memory plan, slab,
     * inputs), which lets the compiler read and write a run of neighbours as vectors */
    for (int i = 0; aligned && i < kp->n; i++)
        emit(e, "    %s = (%s)__builtin_assume_aligned(%s, 16);", kp->name[i], kp->type[i], kp->name[i]);
    emit(e, "    const long count_ = (long)(%s);", count);
    if (per_block) {
        emit(e, "    __shared__ float part_[MLC_ROW_THREADS];");
        emit(e, "    for (long %s = blockIdx.x; %s < count_; %s += gridDim.x) {", ivar, ivar, ivar);
    } else {
        cuda_grid_stride_loop(e, ivar);
    }
    e->indent = 2;
}

void cuda_kernel_enter(EmitCtx *e) {
    FILE *host = e->body;
    e->body = e->decls, e->decls = host;
    e->host_indent = e->indent;
    e->indent = 0;
}

void cuda_grid_stride_loop(EmitCtx *e, const char *ivar) {
    emit(
        e,
        "    for (long %s = blockIdx.x * (long)blockDim.x + threadIdx.x; %s < count_; %s += (long)gridDim.x * blockDim.x) {",
        ivar, ivar, ivar);
}

static void node_comment(EmitCtx *e, const void *id) { emit_node_comment(e, *(const int *)id); }

const char *cuda_kernel_begin(EmitCtx *e, int id, const char *count, const char *ivar, const char *extra_params) {
    const char *name = arena_printf(e->arena, "k%d_%s", e->nkernels++, op_of(&e->g->nodes[id])->name);
    KParams kp;
    kernel_params(e, id, &kp);
    kernel_open(e, name, &kp, count, ivar, extra_params, node_comment, &id, 0, 0);
    return name;
}

void cuda_kernel_end(EmitCtx *e) {
    e->indent = 1;
    emit(e, "}");
    e->indent = 0;
    emit(e, "}");
    emit(e, "%s", "");
    FILE *kern = e->body;
    e->body = e->decls, e->decls = kern;
    e->indent = e->host_indent;
}

static void kernel_launch(EmitCtx *e, const KParams *kp, const char *kernel, const char *count, const char *extra_args,
                          int per_block) {
    char *args = arena_strdup(e->arena, "B");
    for (int i = 0; i < kp->n; i++) args = arena_printf(e->arena, "%s, %s", args, kp->name[i]);
    if (extra_args) args = arena_printf(e->arena, "%s, %s", args, extra_args);
    if (per_block) emit(e, "%s<<<mlc_blocks(%s), MLC_ROW_THREADS, 0, stream>>>(%s);", kernel, count, args);
    else emit(e, "%s<<<mlc_grid(%s), MLC_BLOCK, 0, stream>>>(%s);", kernel, count, args);
    emit(e, "MLC_LAUNCH_CHECK(stream);");
}

void cuda_launch(EmitCtx *e, int id, const char *kernel, const char *count, const char *extra_args) {
    KParams kp;
    kernel_params(e, id, &kp);
    kernel_launch(e, &kp, kernel, count, extra_args, 0);
}

/* ---- fused groups: elementwise ops, expands, reductions (emit_fused.c) ---- */

typedef struct GroupParams {
    EmitCtx *e;
    KParams kp;
} GroupParams;

static void add_group_buffer(void *ctx, int node, int write) {
    GroupParams *gp = ctx;
    kparams_add(&gp->kp, gp->e, node, write);
}

static void group_comment(EmitCtx *e, const void *fl) { fused_comment(e, fl); }

/* Splits the flat work index `ivar` into the loop variables, all but loop `skip`
 * (the last varies fastest). */
static void split_index(EmitCtx *e, const FusedLoop *fl, const char *ivar, int skip) {
    int ls[IR_MAX_RANK], n = 0;
    for (int L = 0; L < fl->nd; L++)
        if (L != skip) ls[n++] = L;
    if (n == 0) return;
    if (n == 1) {
        emit(e, "const long %s = %s;", fl->var[ls[0]], ivar);
        return;
    }
    emit(e, "long r = %s;", ivar);
    for (int k = n - 1; k > 0; k--)
        emit(e, "const long %s = r %% (long)(%s); r /= (long)(%s);", fl->var[ls[k]], fl->size[ls[k]], fl->size[ls[k]]);
    emit(e, "const long %s = r;", fl->var[ls[0]]);
}

/* The extent of a group's last loop as a number, the factor of B when it is "B*N" and
 * the only loop (*batched = 1); 0 when it is neither. */
static long long last_extent(const FusedLoop *fl, int *batched) {
    const char *size = fl->nd ? fl->size[fl->nd - 1] : "";
    int b = fl->nd == 1 && !strncmp(size, "B*", 2);
    if (batched) *batched = b;
    char *end;
    long long v = strtoll(size + (b ? 2 : 0), &end, 10);
    return *end == 0 && end != size + (b ? 2 : 0) && v > 0 ? v : 0;
}

/* How many neighbours along its last loop a thread of an elementwise group takes, as
 * vectors: 8 when the group touches a bfloat16 buffer (8 of them are one 16-byte access,
 * and its floats two), else 4 (a float4), where the loop's extent is a multiple of that
 * (a number, or a number times B when it is the only loop; so the run's neighbours of the
 * flat index share every other loop index); 0: a thread per element. */
static int lanes(const EmitCtx *e, const FusedLoop *fl, const KParams *kp) {
    long long ext = last_extent(fl, NULL);
    if (!ext) return 0;
    /* a math call (exp, erf, ...) branches, and nvcc merges no loads across it: 4 scalar
     * loads of neighbours a thread are no better than one each (fabs and --precision
     * bf16's rounding do not branch: op_text_calls_branching_math) */
    for (int x = fl->lo; x <= fl->root; x++)
        if (fl->fp->root[x] == fl->root && op_text_calls_branching_math(op_of(&e->g->nodes[x])->rules->expr)) return 0;
    for (int i = 0; i < kp->n; i++)
        if (strstr(kp->type[i], "mlc_bf16") && ext % 8 == 0) return 8;
    return ext % 4 == 0 ? 4 : 0;
}

/* A group's last extent divided by its lanes ("784" -> "196", "B*256" -> "B*64"). */
static const char *per_run(Arena *a, const FusedLoop *fl, int lanes) {
    int b;
    long long v = last_extent(fl, &b);
    return arena_printf(a, "%s%lld", b ? "B*" : "", v / lanes);
}

/* The reduction step of a group's root over the values the threads of a block made for
 * axis elements c_ .. c_ + MLC_ROW_THREADS - 1 (part_), added by thread 0 in order. */
static void block_steps(EmitCtx *e, const OpRules *r, const char *len) {
    emit(e, "__syncthreads();");
    emit(e, "if (threadIdx.x == 0)");
    emit(e, "    for (long t_ = 0; t_ < MLC_ROW_THREADS && c_ + t_ < (long)(%s); t_++) %s;", len,
         subst_named(e, r->red_step, "acc", "part_[t_]", len, NULL));
    emit(e, "__syncthreads();");
}

/* A group: one kernel, a thread per element of the domain (a reduction: per output
 * element, the axis in order: deterministic, no atomics). A reduction whose body holds
 * row reductions (the cross-entropy loss: a logsumexp and a dot per row, under the mean
 * over the batch) gets a block per output element instead: its threads make the values
 * of the axis's elements (the rows) side by side, thread 0 adds them in order, so the
 * sum is the one a single thread would compute. */
static void emit_group(EmitCtx *e, int root) {
    const Node *n = &e->g->nodes[root];
    FusedLoop fl;
    fused_loop(e, e->fp, root, 1, &fl);
    GroupParams gp = {.e = e};
    fused_buffers(e, &fl, add_group_buffer, &gp);
    const char *name = arena_printf(e->arena, "k%d_%s", e->nkernels++, op_of(n)->name);
    int reduce = op_of(n)->kind == K_REDUCE, per_block = reduce && fl.nrows > 0;
    const char *count = "1";
    for (int L = 0; L < fl.nd; L++)
        if (L != fl.axis)
            count = !strcmp(count, "1") ? fl.size[L] : arena_printf(e->arena, "%s * (%s)", count, fl.size[L]);
    if (!reduce) count = fl.total;
    int vec = reduce ? 0 : lanes(e, &fl, &gp.kp);
    if (vec) count = arena_printf(e->arena, "(%s) / %d", fl.total, vec);
    kernel_open(e, name, &gp.kp, count, "k", NULL, group_comment, &fl, per_block, vec);
    const OpRules *r = op_of(n)->rules;
    const char *inner = fl.nd ? fl.var[fl.nd - 1] : NULL;
    if (vec) {
        /* a thread per vec neighbours along the last loop (one row, 16-byte aligned): the
         * vec values first, then the vec stores, so that the compiler makes each run of
         * loads and of stores vector accesses (no store between the loads it would merge) */
        /* the run index k split with the last loop's extent / vec, its index times vec: so
         * the compiler sees every offset of lane 0 is a multiple of vec */
        const char *size = fl.size[fl.nd - 1];
        fl.var[fl.nd - 1] = arena_printf(e->arena, "%s_q", inner);
        fl.size[fl.nd - 1] = per_run(e->arena, &fl, vec);
        split_index(e, &fl, "k", fl.axis);
        fl.var[fl.nd - 1] = inner, fl.size[fl.nd - 1] = size;
        emit(e, "const long %s_%d = %s_q * %d, f_ = k * %d;", inner, vec, inner, vec, vec);
        for (int L = 0; L + 1 < fl.nd; L++) /* an index the flat one stands in for everywhere */
            emit(e, "(void)%s;", fl.var[L]);
        emit(e, "%s v_[%d];", n->dtype == DT_I32 ? "int" : "float", vec);
    } else {
        split_index(e, &fl, "k", fl.axis);
    }
    const char *out = fused_out_index(e, &fl);
    if (vec) {
        /* The root's output, and every buffer laid out as the domain, is indexed by the
         * flat index itself: written so (f_ + l_) where the body has that index, the
         * compiler sees lane 0 at a multiple of vec however many loops split it (through
         * the split's divisions and remainders nvcc 12 lost that, and made scalar
         * accesses of every run). */
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len), *host = e->body;
        if (!mem) mlc_out_of_memory(0);
        e->body = mem;
        e->indent++;
        const char *v = fused_body(e, &fl, NULL);
        e->indent--;
        fclose(mem);
        e->body = host;
        const char *at = arena_printf(e->arena, "[%s]", out);
        const char *body = text_replace(e->arena, text, at, "[f_ + l_]");
        free(text);
        /* A member the group stores (an activation kept for the backward beside its
         * rounded copy) waits in an array of its own with the root's values, so that no
         * store falls between the loads nvcc would merge: all lanes read first (an
         * in-place member writes the element its lane read), then every store is a
         * vector too. */
        int deferred[MAX_KPARAMS], ndef = 0;
        for (int m = fl.lo; m < root && ndef < MAX_KPARAMS; m++) {
            if (e->fp->root[m] != root || e->fp->inl[m]) continue;
            const char *store = arena_printf(e->arena, "%s[f_ + l_] = v%d;", emit_buf(e, m), m);
            if (!strstr(body, store)) continue; /* not laid out as the domain: stored in the loop */
            body = text_replace(e->arena, body, store, arena_printf(e->arena, "s%d_[l_] = v%d;", m, m));
            emit(e, "%s s%d_[%d]; /* %%%d, stored after the loop */", e->g->nodes[m].dtype == DT_I32 ? "int" : "float",
                 m, vec, m);
            deferred[ndef++] = m;
        }
        emit(e, "#pragma unroll");
        emit(e, "for (long l_ = 0; l_ < %d; l_++) {", vec);
        e->indent++;
        emit(e, "const long %s = %s_%d + l_;", inner, inner, vec);
        emit(e, "(void)%s; /* a value broadcast along the last loop does not read it */", inner);
        fputs(body, host);
        emit(e, "v_[l_] = %s;", text_replace(e->arena, v, at, "[f_ + l_]"));
        e->indent--;
        emit(e, "}");
        /* a buffer's stores together, one buffer after the other: nvcc merges no stores
         * across another buffer's, which might alias it */
        for (int k = 0; k < ndef; k++) {
            emit(e, "#pragma unroll");
            emit(e, "for (long l_ = 0; l_ < %d; l_++) %s[f_ + l_] = s%d_[l_];", vec, emit_buf(e, deferred[k]),
                 deferred[k]);
        }
        emit(e, "#pragma unroll");
        emit(e, "for (long l_ = 0; l_ < %d; l_++) %s[f_ + l_] = v_[l_];", vec, emit_buf(e, root));
    } else if (!reduce) {
        const char *v = fused_body(e, &fl, NULL);
        emit(e, "%s[%s] = %s;", emit_buf(e, root), out, v);
    } else if (per_block) {
        const char *ax = fl.var[fl.axis], *len = fl.size[fl.axis];
        emit(e, "float acc = %s;", r->red_init);
        emit(e, "for (long c_ = 0; c_ < (long)(%s); c_ += MLC_ROW_THREADS) {", len);
        e->indent++;
        emit(e, "const long %s = c_ + threadIdx.x;", ax);
        emit(e, "if (%s < (long)(%s)) {", ax, len);
        e->indent++;
        const char *v = fused_body(e, &fl, NULL);
        emit(e, "part_[threadIdx.x] = %s;", v);
        e->indent--;
        emit(e, "}");
        block_steps(e, r, len);
        e->indent--;
        emit(e, "}");
        emit(e, "if (threadIdx.x == 0) %s[%s] = %s;", emit_buf(e, root), out,
             subst_named(e, r->red_fin, "acc", "", len, NULL));
    } else {
        const char *ax = fl.var[fl.axis], *len = fl.size[fl.axis];
        if (r->red_pre_step) { /* two passes (fuse.c gives it no members) */
            emit(e, "float pre = %s;", r->red_pre_init);
            emit(e, "for (long %s = 0; %s < (long)(%s); %s++)", ax, ax, len, ax);
            emit(e, "    %s;", subst_named(e, r->red_pre_step, "pre", fused_body(e, &fl, NULL), len, NULL));
        }
        const char *pre = r->red_pre_step ? "pre" : NULL;
        emit(e, "float acc = %s;", r->red_init);
        emit(e, "for (long %s = 0; %s < (long)(%s); %s++) {", ax, ax, len, ax);
        e->indent++;
        const char *v = fused_body(e, &fl, NULL);
        emit(e, "%s;", subst_named(e, r->red_step, "acc", v, len, pre));
        e->indent--;
        emit(e, "}");
        emit(e, "%s[%s] = %s;", emit_buf(e, root), out, subst_named(e, r->red_fin, "acc", "", len, pre));
    }
    cuda_kernel_end(e);
    fused_comment(e, &fl);
    kernel_launch(e, &gp.kp, name, count, NULL, per_block);
}

/* ---- matmul: row-major C[M,N] = op(A) op(B) is column-major C^T = op(B)^T op(A)^T ---- */

/* With batch axes (batched_gemm.c): one cublasSgemmStridedBatched, a stride of 0 for a
 * matrix every entry shares; or one cublasSgemm when the entries fold into its rows. */
static void emit_batched_matmul(EmitCtx *e, int id) {
    BatchedGemm q = batched_gemm(e, id);
    const Node *n = &e->g->nodes[id];
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    const char *opa = ta ? "CUBLAS_OP_T" : "CUBLAS_OP_N", *opb = tb ? "CUBLAS_OP_T" : "CUBLAS_OP_N";
    const char *mode = cuda_gemm_mode(e, id);
    if (strcmp(mode, "MLC_FP32")) { /* bf16 tensor cores, the same products (mlc_gemm) */
        if (q.fold)
            emit(e,
                 "MLC_CUBLAS_CHECK(mlc_gemm(self->cublas, %s, %s, CUBLAS_OP_N, (int)(%s), (int)(%s), (int)(%s), %s, "
                 "(int)(%s), %s, (int)(%s), %s, (int)(%s)));",
                 mode, opb, q.N, q.M, q.K, q.B, q.ldb, q.A, q.lda, q.C, q.N);
        else
            emit(e,
                 "MLC_CUBLAS_CHECK(mlc_gemm_strided(self->cublas, %s, %s, %s, (int)(%s), (int)(%s), (int)(%s), %s, "
                 "(int)(%s), %s, %s, (int)(%s), %s, %s, (int)(%s), %s, (int)(%s)));",
                 mode, opb, opa, q.N, q.M, q.K, q.B, q.ldb, q.sb, q.A, q.lda, q.sa, q.C, q.N, q.sc, q.count);
    } else if (q.fold) {
        emit(e,
             "MLC_CUBLAS_CHECK(cublasSgemm(self->cublas, %s, CUBLAS_OP_N, (int)(%s), (int)(%s), (int)(%s), &mlc_one,",
             opb, q.N, q.M, q.K);
        emit(e, "                             %s, (int)(%s), %s, (int)(%s), &mlc_zero, %s, (int)(%s)));", q.B, q.ldb,
             q.A, q.lda, q.C, q.N);
    } else {
        emit(
            e,
            "MLC_CUBLAS_CHECK(cublasSgemmStridedBatched(self->cublas, %s, %s, (int)(%s), (int)(%s), (int)(%s), &mlc_one,",
            opb, opa, q.N, q.M, q.K);
        emit(
            e,
            "                             %s, (int)(%s), %s, %s, (int)(%s), %s, &mlc_zero, %s, (int)(%s), %s, (int)(%s)));",
            q.B, q.ldb, q.sb, q.A, q.lda, q.sa, q.C, q.N, q.sc, q.count);
    }
    cuda_epilogue(e, id);
}

/* --cublaslt: whether 2-D matmul id's epilogue group is a bias add alone, or a bias add
 * in a register and a ReLU, which cuBLASLt's BIAS and RELU_BIAS epilogues compute: the
 * add's other operand a float vector over the matmul's columns, every value in floats,
 * and the matmul's own value read by that add alone (cuBLASLt writes only the group's
 * result). *bias: that vector's node; *relu: 1 with the ReLU. */
static int lt_epilogue(const EmitCtx *e, int id, int *bias, int *relu) {
    const Graph *g = e->g;
    const Node *n = &g->nodes[id];
    const int r = e->fp->epilogue[id];
    if (!g->cublaslt || r < 0 || n->shape.rank != 2) return 0;
    *relu = g->nodes[r].op == OP_relu;
    const int add = *relu ? g->nodes[r].in[0] : r;
    for (int x = 0; x < g->n; x++) /* the group: the root and, under a ReLU, the add in a register */
        if (x != r && e->fp->root[x] == r && (x != add || !e->fp->inl[x])) return 0;
    if (add != r && e->fp->root[add] != r) return 0;
    const Node *s = &g->nodes[add];
    if (s->op != OP_add || s->nin != 2 || (s->in[0] == id) == (s->in[1] == id)) return 0;
    *bias = s->in[0] == id ? s->in[1] : s->in[0];
    const Node *v = &g->nodes[*bias];
    if (v->shape.rank != 1 || v->shape.d[0] != n->shape.d[1] || v->dtype != DT_F32 || !e->buf[*bias]) return 0;
    if (e->half && (e->half[*bias] || e->half[r] || e->half[id])) return 0;
    if (g->nodes[r].dtype != DT_F32) return 0;
    for (int y = 0; y < g->n; y++)
        for (int k = 0; k < g->nodes[y].nin; k++)
            if (g->nodes[y].in[k] == id && y != add) return 0;
    return !graph_is_output(g, id) && g->loss != id;
}

EmitCtx cuda_report_ctx(const ModelIR *m, GraphFn fn, FILE *sink) {
    const GraphFnParts gp = graph_fn_parts(m, fn);
    EmitCtx e = {.arena = m->arena,
                 .g = gp.g,
                 .target = &target_cuda,
                 .body = sink,
                 .decls = sink,
                 .prep = sink,
                 .fp = gp.fp,
                 .phase_of = fn == FN_FORWARD_BACKWARD ? m->update_phase : NULL,
                 .copies_outputs = fn != FN_EVAL_LOSS};
    e.buf = emit_name_buffers(&e, m, gp.plan);
    return e;
}

/* --report under --cublaslt: each 2-D product of the functions with products (the train
 * step's forward and backward, inference, the loss in evaluation mode), and whether it and
 * its epilogue are one cuBLASLt call, decided as the emitter decides (lt_epilogue, on the
 * buffers that function names: their declarations go nowhere). */
void cuda_lt_report(FILE *out, const ModelIR *m) {
    static const struct {
        GraphFn fn;
        const char *title;
    } fns[] = {{FN_FORWARD_BACKWARD, "train step"}, {FN_FORWARD, "inference"}, {FN_EVAL_LOSS, "eval loss"}};
    fprintf(out,
            "matrix products (--cublaslt: one whose epilogue is a bias add, or a bias add and a ReLU, is one "
            "cuBLASLt call with that epilogue):\n");
    fprintf(out, "  %-10s %-6s %-20s %s\n", "function", "node", "shape", "call");
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        char *sink_text = NULL;
        size_t sink_len = 0;
        FILE *sink = open_memstream(&sink_text, &sink_len);
        if (!sink) mlc_out_of_memory(0);
        EmitCtx e = cuda_report_ctx(m, fns[f].fn, sink);
        const GraphFnParts gp = graph_fn_parts(m, fns[f].fn);
        for (int id = 0; id < gp.g->n; id++) {
            const Node *n = &gp.g->nodes[id];
            if (n->op != OP_matmul || n->shape.rank != 2 || !emit_has_code(&e, id)) continue;
            int bias, relu;
            char sh[96], call[160];
            const char *mode = cuda_gemm_mode(&e, id);
            const char *products = !strcmp(mode, "MLC_BF16_STORED")   ? "bf16 products, bf16 buffers"
                                   : !strcmp(mode, "MLC_BF16_VALUES") ? "bf16 products, float buffers"
                                   : gp.g->tf32                       ? "TF32 products"
                                                                      : "FP32 products";
            if (lt_epilogue(&e, id, &bias, &relu))
                snprintf(call, sizeof call, "cuBLASLt, %s epilogue (bias %%%d), %s", relu ? "RELU_BIAS" : "BIAS", bias,
                         products);
            else
                snprintf(call, sizeof call, "cuBLAS%s, %s",
                         e.fp->epilogue[id] >= 0 ? ", then its epilogue's kernel" : "", products);
            fprintf(out, "  %-10s %%%-5d %-20s %s\n", fns[f].title, id,
                    shape_str_at(&n->shape, n->dtype, gp.g->batch, sh, sizeof sh), call);
        }
        fclose(sink);
        free(sink_text);
    }
}

static void emit_matmul(EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    if (n->shape.rank > 2) {
        emit_batched_matmul(e, id);
        return;
    }
    int a = n->in[0], b = n->in[1];
    int ta = (int)attr_i(n, A_TRANS_A), tb = (int)attr_i(n, A_TRANS_B);
    const char *M = emit_dim(e, id, 0), *N = emit_dim(e, id, 1), *K = emit_dim(e, a, ta ? 0 : 1);
    const char *opa = ta ? "CUBLAS_OP_T" : "CUBLAS_OP_N", *opb = tb ? "CUBLAS_OP_T" : "CUBLAS_OP_N";
    const char *mode = cuda_gemm_mode(e, id);
    int bias, relu;
    if (lt_epilogue(e, id, &bias, &relu)) { /* the matmul and its epilogue as one cuBLASLt call */
        const int r = e->fp->epilogue[id];
        if (!strcmp(mode, "MLC_FP32") && e->g->tf32) mode = "MLC_TF32";
        emit_node_comment(e, r);
        if (relu) emit(e, "/*   fused: %%%d = add, in cuBLASLt's bias and ReLU epilogue */", e->g->nodes[r].in[0]);
        else emit(e, "/*   in cuBLASLt's bias epilogue */");
        emit(e, "MLC_CUBLAS_CHECK(mlc_gemm_bias(self->cublas, self->cublaslt, stream, %s, %d, %s, %s,", mode, relu, opb,
             opa);
        emit(e, "                               (int)(%s), (int)(%s), (int)(%s), %s, (int)(%s), %s, (int)(%s),", N, M,
             K, emit_buf(e, b), emit_dim(e, b, 1), emit_buf(e, a), emit_dim(e, a, 1));
        emit(e, "                               %s, %s, (int)(%s), self->cublas_ws, %lld));", emit_buf(e, bias),
             emit_buf(e, r), N, CUDA_CUBLAS_WORKSPACE_BYTES);
        return;
    }
    if (strcmp(mode, "MLC_FP32")) /* bf16 tensor cores, the same products (mlc_gemm) */
        emit(e,
             "MLC_CUBLAS_CHECK(mlc_gemm(self->cublas, %s, %s, %s, (int)(%s), (int)(%s), (int)(%s), %s, (int)(%s), %s, "
             "(int)(%s), %s, (int)(%s)));",
             mode, opb, opa, N, M, K, emit_buf(e, b), emit_dim(e, b, 1), emit_buf(e, a), emit_dim(e, a, 1),
             emit_buf(e, id), N);
    else {
        emit(e, "MLC_CUBLAS_CHECK(cublasSgemm(self->cublas, %s, %s, (int)(%s), (int)(%s), (int)(%s), &mlc_one,", opb,
             opa, N, M, K);
        emit(e, "                             %s, (int)(%s), %s, (int)(%s), &mlc_zero, %s, (int)(%s)));",
             emit_buf(e, b), emit_dim(e, b, 1), emit_buf(e, a), emit_dim(e, a, 1), emit_buf(e, id), N);
    }
    cuda_epilogue(e, id);
}

const char *cuda_gemm_mode(const EmitCtx *e, int id) {
    const Node *n = &e->g->nodes[id];
    if (e->half[n->in[0]]) return "MLC_BF16_STORED"; /* then all its float operands are (bf16_storage.c) */
    return emit_reads_bf16_values(e->g, id) ? "MLC_BF16_VALUES" : "MLC_FP32";
}

/* An epilogue (fuse.c) runs right after its GEMM or conv2d: on the GPU it is the next
 * kernel on the stream. */
void cuda_epilogue(EmitCtx *e, int id) {
    if (e->fp->epilogue[id] >= 0) emit_group(e, e->fp->epilogue[id]);
}

static const KindEmitters cuda_kinds = {emit_group, emit_group, emit_matmul};

/* ---- multi-tensor updates: a run of optimizer updates alike (one op, the same
 * attributes, so the same loop body and scalars) as one kernel over a table of their
 * buffers (loop.c), instead of a launch per parameter ---- */

/* Tensors per launch: the table goes by value as a kernel parameter, under 4 KiB. */
#define MULTI_MAX 64

/* The updates written as one per-element loop over the parameter (targets/shared/optim.c) */
static int multi_op(Op op) {
    return op == OP_adam_update || op == OP_sgd_update || op == OP_sgd_plain_update || op == OP_param_ema;
}

/* The run of updates alike that starts at id, up to the next node with other code (the
 * nodes keep their order: a later update may read what an earlier one wrote, and the run
 * runs where its first member would). Returns its length; run[0] = id. */
static int update_run(EmitCtx *e, int id, int *run) {
    const Node *n = &e->g->nodes[id];
    int c = 0;
    run[c++] = id;
    if (!multi_op(n->op)) return 1;
    for (int j = id + 1; j < e->g->n && c < MULTI_MAX; j++) {
        if (!emit_has_code(e, j)) continue;
        const Node *x = &e->g->nodes[j];
        if (x->op != n->op || x->nin != n->nin || memcmp(x->attr, n->attr, sizeof x->attr)) break;
        run[c++] = j;
    }
    return c;
}

/* ---- host functions: per graph function F (fb: forward_backward, update, forward,
 * eval_loss) three parts. F_prepare does the host's work of a call (the inputs copied in,
 * the call's scalars into the table and the table copied over); F_launch enqueues the
 * kernels, cuBLAS calls and copies on the model's stream, then the loss and outputs to
 * the pinned staging buffer, and does nothing else, so that a CUDA graph can capture it
 * once per batch size and replay it (runtime/kernels/cuda/graph.cu); the API function
 * runs the two, waits, and hands the staged values out. ---- */

static const char *fn_stem(GraphFn fn) {
    switch (fn) {
    case FN_FORWARD_BACKWARD: return "fb";
    case FN_UPDATE: return "update";
    case FN_FORWARD: return "forward";
    case FN_EVAL_LOSS: return "eval_loss";
    }
    return NULL;
}

/* The graph function's part of the file: its launch and prepare functions (and, but for
 * fb and update, which train_step joins, its API function). Kernels go to `kern`.
 * *stage: the staged floats, an expression in B (NULL: none). */
static void emit_graph_function(const ModelIR *m, FILE *out, FILE *kern, int *nkernels, int *nscalars, GraphFn fn,
                                const char **stage) {
    Arena *a = m->arena;
    const char *name = m->spec.name, *stem = fn_stem(fn);
    GraphFnParts gp = graph_fn_parts(m, fn);
    const Graph *g = gp.g;
    const MemPlan *plan = gp.plan;
    int train = fn == FN_FORWARD_BACKWARD || fn == FN_UPDATE, update = fn == FN_UPDATE;
    char *prep_text = NULL;
    size_t prep_len = 0;
    FILE *prep = open_memstream(&prep_text, &prep_len);
    if (!prep) mlc_out_of_memory(0);
    int slot0 = *nscalars;
    EmitCtx e = {.arena = a,
                 .g = g,
                 .target = &target_cuda,
                 .body = out,
                 .decls = kern,
                 .indent = 1,
                 .nkernels = *nkernels,
                 .prep = prep,
                 .nscalars = slot0,
                 .fp = gp.fp,
                 .phase_of = train ? m->update_phase : NULL,
                 .phase = update,
                 .copies_outputs = fn != FN_UPDATE && fn != FN_EVAL_LOSS};

    /* F_launch */
    fprintf(out, "/* %s Its launches, in order, on the model's stream (a CUDA graph may capture them) */\n",
            gp.comment);
    if (update) fprintf(out, "static void update_launch(%s_model *self) {\n    const long B = 0;\n", name);
    else fprintf(out, "static void %s_launch(%s_model *self, const long B, const int outs) {\n", stem, name);
    fprintf(out, "    const size_t mb = (size_t)self->max_batch;\n");
    fprintf(out, "    float *const P = self->slab;\n    float *const A = self->arena;\n");
    fprintf(out, "    const cudaStream_t stream = self->stream;\n");
    /* (void)stream: the update of a model without parameters launches nothing */
    fprintf(out, "    (void)mb, (void)P, (void)A, (void)B, (void)stream;\n");
    if (train) fprintf(out, "    float *const G = self->grads;\n    (void)G;\n");
    e.buf = emit_name_buffers(&e, m, plan);
    if (!update && (plan->ws_size_c || plan->ws_size_b)) { /* the ops' shared scratch region, in the arena */
        fprintf(out, "    float *const ws = A + %lld + %lld * mb; /* scratch: %lld + %lld * B floats */\n",
                (long long)plan->ws_off_c, (long long)plan->ws_off_b, (long long)plan->ws_size_c,
                (long long)plan->ws_size_b);
        e.ws = "ws";
    }
    fputc('\n', out);
    /* set_grad_ready: once the kernels that finish a prefix of the slab are queued */
    const int64_t *ready = fn == FN_FORWARD_BACKWARD ? grad_ready_after(m, gp.fp) : NULL;
    int section = fn == FN_FORWARD_BACKWARD ? 0 : 2;
    char *merged = arena_alloc(a, (size_t)g->n); /* updates a multi-tensor launch of an earlier node covers */
    for (int id = 0; id < g->n; id++) {
        emit_section_marker(&e, id, &section);
        if (merged[id]) continue;
        int run[MULTI_MAX];
        if (update && emit_has_code(&e, id) && (e.nmulti = update_run(&e, id, run)) > 1) {
            e.multi = run;
            for (int k = 1; k < e.nmulti; k++) merged[run[k]] = 1;
        }
        emit_node_by_kind(&e, id, &cuda_kinds);
        e.multi = NULL, e.nmulti = 0;
        emit_grad_ready_call(&e, m, ready, id);
    }
    fputc('\n', out);
    if (fn == FN_FORWARD_BACKWARD) {
        emit_grad_copies(
            m, out,
            "MLC_CUDA_CHECK(cudaMemcpyAsync(G + %lld, G + %lld, sizeof(float) * %lld, cudaMemcpyDeviceToDevice, "
            "stream));");
        fprintf(out, "    if (self->grad_ready) self->grad_ready(self->grad_ctx, %lld);\n", (long long)m->grad_floats);
    }
    /* the loss, then the outputs (if wanted), to the staging buffer: before an update that
     * may reuse their arena */
    const char *off = "0";
    const char **out_off = ARENA_ARRAY(a, const char *, g->nout + 1);
    if (!update) {
        fprintf(out, "    /* to the pinned staging buffer: the loss, then the outputs if wanted */\n");
        if (g->loss >= 0) {
            fprintf(
                out,
                "    MLC_CUDA_CHECK(cudaMemcpyAsync(self->stage, %s, sizeof(float), cudaMemcpyDeviceToHost, stream));\n",
                e.buf[g->loss]);
            off = "1";
        }
        int copies = fn != FN_EVAL_LOSS && g->nout;
        if (copies) fprintf(out, "    if (outs) {\n");
        for (int k = 0; copies && k < g->nout; k++) {
            int o = g->outputs[k];
            out_off[k] = off;
            fprintf(out,
                    "        MLC_CUDA_CHECK(cudaMemcpyAsync(self->stage + %s, %s, sizeof(float) * (size_t)(%s), "
                    "cudaMemcpyDeviceToHost, stream)); /* %s */\n",
                    off, emit_buf(&e, o), emit_numel(&e, o), c_comment(a, g->out_names[k]));
            off = !strcmp(off, "0") ? arena_printf(a, "(%s)", emit_numel(&e, o))
                                    : arena_printf(a, "%s + (%s)", off, emit_numel(&e, o));
        }
        if (copies) fprintf(out, "    }\n");
        else fprintf(out, "    (void)outs;\n");
    }
    fprintf(out, "}\n\n");
    *stage = update || !strcmp(off, "0") ? NULL : off;

    /* F_prepare */
    fclose(prep);
    fprintf(out, "/* The host's part of %s before its launches. */\n", stem);
    if (update) fprintf(out, "static void update_prepare(%s_model *self, float lr) {\n", name);
    else
        fprintf(out, "static void %s_prepare(%s_model *self, const void *const *inputs, const long B) {\n", stem, name);
    if (update) fprintf(out, "    const int64_t t = ++self->step;\n    self->micro = 0;\n    (void)t, (void)lr;\n");
    else fprintf(out, "    (void)inputs, (void)B;\n");
    if (fn == FN_FORWARD_BACKWARD) emit_dropout_counter(out);
    fwrite(prep_text, 1, prep_len, out);
    free(prep_text);
    if (e.nscalars > slot0)
        fprintf(
            out,
            "    MLC_CUDA_CHECK(cudaMemcpyAsync(self->dev_scalars + %d, self->scalars + %d, sizeof(mlc_scalar) * %d, "
            "cudaMemcpyHostToDevice, self->stream));\n",
            slot0, slot0, e.nscalars - slot0);
    fprintf(out, "}\n\n");

    /* the staged values handed out (fb's: the train step's too) */
    if (!update) {
        fprintf(out, "/* What %s_launch staged, handed out once the stream is done. */\n", stem);
        fprintf(out, "static %s %s_unstage(const %s_model *self, const long B, float *const *outputs) {\n",
                g->loss >= 0 ? "float" : "void", stem, name);
        fprintf(out, "    (void)B, (void)outputs;\n");
        if (fn != FN_EVAL_LOSS && g->nout) {
            fprintf(out, "    if (outputs) {\n");
            for (int k = 0; k < g->nout; k++)
                fprintf(out,
                        "        if (outputs[%d]) memcpy(outputs[%d], self->stage + %s, sizeof(float) * (size_t)(%s)); "
                        "/* %s */\n",
                        k, k, out_off[k], emit_numel(&e, g->outputs[k]), c_comment(a, g->out_names[k]));
            fprintf(out, "    }\n");
        }
        if (g->loss >= 0) fprintf(out, "    return self->stage[0];\n");
        fprintf(out, "}\n\n");
    }
    *nkernels = e.nkernels;
    *nscalars = e.nscalars;
}

/* The API functions of the train step (forward_backward, update, train_step: one CUDA
 * graph per batch size unless a host callback must run between the kernels) and of
 * inference and the eval loss (a graph each per batch size). */
static void emit_api_functions(const ModelIR *m, FILE *out) {
    const char *n = m->spec.name;
    fprintf(out, "/* %s */\nstatic %s {\n", graph_fn_parts(m, FN_FORWARD_BACKWARD).comment,
            graph_fn_signature(FN_FORWARD_BACKWARD));
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    fb_prepare(self, inputs, n);\n    fb_launch(self, n, outputs != NULL);\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    return fb_unstage(self, n, outputs);\n}\n\n");

    fprintf(out, "/* %s */\nstatic %s {\n", graph_fn_parts(m, FN_UPDATE).comment, graph_fn_signature(FN_UPDATE));
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(
        out,
        "    update_prepare(self, lr);\n    update_launch(self); /* the stream orders it before what follows */\n}\n\n");

    fprintf(out, "/* The train step's launches, which one CUDA graph per batch size replays. */\n");
    fprintf(out, "static void train_graph(void *model) {\n    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    fb_launch(self, self->run_n, self->run_outs);\n    update_launch(self);\n}\n\n");
    fprintf(out, "/* One training step: the two halves back to back, as one CUDA graph unless a host callback\n");
    fprintf(out, " * (--sync-bn's, the gradient all-reduce's) must run between the kernels. */\n");
    fprintf(
        out,
        "static float api_train_step(void *model, const void *const *inputs, int n, float lr, float *const *outputs) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    if (self->grad_ready || self->batch_sync) {\n");
    fprintf(out, "        const float loss = api_forward_backward(model, inputs, n, outputs);\n");
    fprintf(out, "        api_update(model, lr);\n        return loss;\n    }\n");
    fprintf(out, "    fb_prepare(self, inputs, n);\n    update_prepare(self, lr);\n");
    fprintf(out, "    self->run_n = n, self->run_outs = outputs != NULL;\n");
    fprintf(
        out,
        "    if (!mlc_cuda_graph_run(&self->graphs, self->stream, MLC_GRAPH_KEY(0, n, outputs != NULL), train_graph, "
        "self, \"%s\"))\n        train_graph(self);\n",
        c_str(m->arena, n));
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    return fb_unstage(self, n, outputs);\n}\n\n");

    for (GraphFn fn = FN_FORWARD; fn <= FN_EVAL_LOSS; fn++) {
        const char *stem = fn_stem(fn);
        int loss = fn == FN_EVAL_LOSS;
        fprintf(out, "static void %s_graph(void *model) {\n    %s_model *self = (%s_model *)model;\n", stem, n, n);
        fprintf(out, "    %s_launch(self, self->run_n, 1);\n}\n\n", stem);
        fprintf(out, "/* %s */\nstatic %s {\n", graph_fn_parts(m, fn).comment, graph_fn_signature(fn));
        fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
        fprintf(out, "    %s_prepare(self, inputs, n);\n    self->run_n = n;\n", stem);
        fprintf(out,
                "    if (!mlc_cuda_graph_run(&self->graphs, self->stream, MLC_GRAPH_KEY(%d, n, 1), %s_graph, self, "
                "\"%s\"))\n        %s_graph(self);\n",
                (int)fn, stem, c_str(m->arena, n), stem);
        fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
        fprintf(out, "    %s%s_unstage(self, n, %s);\n}\n\n", loss ? "return " : "", stem, loss ? "NULL" : "outputs");
    }
}

/* What emit_graphs learnt that the model struct and create need. */
typedef struct GraphsInfo {
    int nscalars;         /* slots of the scalar table */
    const char *stage[4]; /* per graph function: the staged floats, in B (NULL: none) */
} GraphsInfo;

/* Emits the graph functions: kernels to `kern`, host functions to `fns`. */
static GraphsInfo emit_graphs(const ModelIR *m, FILE *kern, FILE *fns) {
    int nk = 0;
    GraphsInfo gi = {0};
    fputs(kernel_prelude, kern);
    fputs(tmpl_mlc_philox_h, kern);
    fputs(tmpl_mlc_bf16_h, kern);
    fputs(tmpl_cuda_attention_cuh, kern);
    fputs(tmpl_cuda_device_cuh, kern);
    fputc('\n', kern);
    for (GraphFn fn = FN_FORWARD_BACKWARD; fn <= FN_EVAL_LOSS; fn++)
        emit_graph_function(m, fns, kern, &nk, &gi.nscalars, fn, &gi.stage[fn]);
    emit_api_functions(m, fns);
    fprintf(kern, "/* ---- end of kernels (%d) ---- */\n\n", nk);
    return gi;
}

void emit_cuda_kernels(const ModelIR *m, FILE *out) {
    char *text = NULL;
    size_t len = 0;
    FILE *fns = open_memstream(&text, &len);
    if (!fns) mlc_out_of_memory(0);
    (void)emit_graphs(m, out, fns);
    fclose(fns);
    free(text);
}

static void emit_create_destroy(const ModelIR *m, const GraphsInfo *gi, FILE *out) {
    const char *n = m->spec.name;
    fprintf(out,
            "static void api_destroy(void *model) {\n    %s_model *self = (%s_model *)model;\n    if (!self) return;\n",
            n, n);
    fprintf(out, "    mlc_cuda_graph_free(&self->graphs);\n");
    fprintf(out, "    if (self->cublas) cublasDestroy(self->cublas);\n");
    if (m->cublaslt) fprintf(out, "    if (self->cublaslt) cublasLtDestroy(self->cublaslt);\n");
    if (cuda_uses_cudnn(m)) fprintf(out, "    if (self->cudnn) cudnnDestroy(self->cudnn);\n");
    fprintf(out, "    cudaFree(self->cublas_ws);\n    cudaFree(self->dev_scalars);\n    cudaFreeHost(self->stage);\n");
    fprintf(out, "    if (self->stream) cudaStreamDestroy(self->stream);\n");
    fprintf(out, "    cudaFree(self->slab);\n    cudaFree(self->grads);\n    cudaFree(self->arena);\n");
    fprintf(out, "    for (int i = 0; i < %d; i++) cudaFree(self->in[i]);\n", m->ninputs);
    fprintf(out, "    free(self);\n}\n\n");

    fprintf(out, "/* A CUDA failure while setting up is reported and gives NULL (as out of memory does). */\n");
    fprintf(out, "static int mlc_setup_ok(cudaError_t err, const char *what) {\n");
    fprintf(out, "    if (err == cudaSuccess) return 1;\n");
    fprintf(
        out,
        "    fprintf(stderr, \"error: %s: cannot create the model on the GPU: %%s: %%s\\n\", what, cudaGetErrorString(err));\n",
        n);
    fprintf(out, "    return 0;\n}\n\n");

    /* so that every failure but max_batch < 1 (which NAME_create reports) is one line, said here */
    fprintf(out, "/* Host memory ran out while creating the model: said, and NULL. */\n");
    fprintf(out, "static void *create_out_of_memory(void) {\n");
    fprintf(out, "    fprintf(stderr, \"error: %s: cannot create the model: out of host memory\\n\");\n", n);
    fprintf(out, "    return NULL;\n}\n\n");
    fprintf(out, "static void *api_create(uint64_t seed, int max_batch) {\n");
    fprintf(out, "    if (max_batch < 1) return NULL;\n");
    fprintf(out, "    %s_model *self = (%s_model *)calloc(1, sizeof *self);\n", n, n);
    fprintf(out, "    if (!self) return create_out_of_memory();\n");
    fprintf(out, "    const size_t mb = (size_t)max_batch;\n    const long B = max_batch;\n");
    fprintf(out, "    size_t arena_floats = 0; /* the largest of the graphs' arenas */\n");
    for (int f = 0; f < GRAPH_FN_COUNT; f++) {
        const MemPlan *p = graph_fn_parts(m, (GraphFn)f).plan;
        fprintf(out, "    if (%lld + %lld * mb > arena_floats) arena_floats = %lld + %lld * mb;\n",
                (long long)p->size_c, (long long)p->size_b, (long long)p->size_c, (long long)p->size_b);
    }
    fprintf(out, "    size_t stage_floats = 1; /* the largest of the graphs' staged loss and outputs */\n");
    for (int f = 0; f < GRAPH_FN_COUNT; f++)
        if (gi->stage[f])
            fprintf(out, "    if ((size_t)(%s) > stage_floats) stage_floats = (size_t)(%s);\n", gi->stage[f],
                    gi->stage[f]);
    fprintf(out, "    self->max_batch = max_batch;\n");
    fprintf(out, "    float *host = mlcrt_alloc_floats(%lld); /* the slab's first contents */\n",
            (long long)m->slab_floats);
    fprintf(out, "    if (!host) {\n        free(self);\n        return create_out_of_memory();\n    }\n");
    emit_param_init(m, out, "    ", "host + %lld");
    fprintf(out, "    int ok = mlc_setup_ok(cudaStreamCreate(&self->stream), \"cudaStreamCreate\") &&\n");
    fprintf(
        out,
        "             mlc_setup_ok(cudaMalloc((void **)&self->slab, sizeof(float) * %lld), \"cudaMalloc (slab)\") &&\n",
        (long long)m->slab_floats);
    fprintf(
        out,
        "             mlc_setup_ok(cudaMalloc((void **)&self->grads, sizeof(float) * %lld), \"cudaMalloc (gradients)\") &&\n",
        (long long)(m->grad_floats ? m->grad_floats : 1));
    fprintf(
        out,
        "             mlc_setup_ok(cudaMemset(self->grads, 0, sizeof(float) * %lld), \"cudaMemset (gradients)\") &&\n",
        (long long)(m->grad_floats ? m->grad_floats : 1));
    fprintf(
        out,
        "             mlc_setup_ok(cudaMalloc((void **)&self->arena, sizeof(float) * (arena_floats ? arena_floats : 1)),\n"
        "                          \"cudaMalloc (arena)\") &&\n");
    for (int i = 0; i < m->ninputs; i++)
        fprintf(
            out,
            "             mlc_setup_ok(cudaMalloc(&self->in[%d], sizeof(%s) * mb * %lld), \"cudaMalloc (input %s)\") &&\n",
            i, m->inputs[i].dtype == DT_I32 ? "int32_t" : "float", (long long)m->inputs[i].sample_numel,
            c_str(m->arena, m->inputs[i].name));
    fprintf(out,
            "             mlc_setup_ok(cudaMalloc((void **)&self->dev_scalars, sizeof(mlc_scalar) * %d), \"cudaMalloc "
            "(scalars)\") &&\n",
            gi->nscalars ? gi->nscalars : 1);
    fprintf(out,
            "             mlc_setup_ok(cudaMallocHost((void **)&self->stage, sizeof(float) * stage_floats), "
            "\"cudaMallocHost (staging)\") &&\n");
    fprintf(out,
            "             mlc_setup_ok(cudaMalloc(&self->cublas_ws, %lld), \"cudaMalloc (cuBLAS workspace)\") &&\n",
            CUDA_CUBLAS_WORKSPACE_BYTES);
    fprintf(out,
            "             mlc_setup_ok(cudaMemcpy(self->slab, host, sizeof(float) * %lld, cudaMemcpyHostToDevice),\n"
            "                          \"cudaMemcpy (parameters)\");\n",
            (long long)m->slab_floats);
    fprintf(out, "    free(host);\n");
    fprintf(out, "    if (ok && cublasCreate(&self->cublas) != CUBLAS_STATUS_SUCCESS) {\n");
    fprintf(out,
            "        fprintf(stderr, \"error: %s: cannot create the model on the GPU: cublasCreate failed\\n\");\n", n);
    fprintf(out, "        self->cublas = NULL;\n        ok = 0;\n    }\n");
    fprintf(out, "    if (ok) MLC_CUBLAS_CHECK(cublasSetStream(self->cublas, self->stream));\n");
    fprintf(out, "    if (ok) MLC_CUBLAS_CHECK(cublasSetWorkspace(self->cublas, self->cublas_ws, %lld));\n",
            CUDA_CUBLAS_WORKSPACE_BYTES);
    if (m->cublaslt) {
        fprintf(out, "    if (ok && cublasLtCreate(&self->cublaslt) != CUBLAS_STATUS_SUCCESS) {\n");
        fprintf(
            out,
            "        fprintf(stderr, \"error: %s: cannot create the model on the GPU: cublasLtCreate failed\\n\");\n",
            n);
        fprintf(out, "        self->cublaslt = NULL;\n        ok = 0;\n    }\n");
    }
    if (cuda_uses_cudnn(m)) {
        fprintf(out, "    if (ok && cudnnCreate(&self->cudnn) != CUDNN_STATUS_SUCCESS) {\n");
        fprintf(out,
                "        fprintf(stderr, \"error: %s: cannot create the model on the GPU: cudnnCreate failed\\n\");\n",
                n);
        fprintf(out, "        self->cudnn = NULL;\n        ok = 0;\n    }\n");
        fprintf(out,
                "    self->graphs.warmup = 1; /* cuDNN sets itself up in a step run one by one, not in a capture */\n");
    }
    if (m->tf32) /* --tf32: GEMMs (and so convolutions) on the TF32 tensor cores */
        fprintf(out, "    if (ok) MLC_CUBLAS_CHECK(cublasSetMathMode(self->cublas, CUBLAS_TF32_TENSOR_OP_MATH));\n");
    fprintf(out, "    self->seed = seed;\n    (void)B;\n");
    emit_norm_init(m, out);
    fprintf(out, "    if (!ok) {\n        api_destroy(self);\n        return NULL;\n    }\n");
    fprintf(out, "    return self;\n}\n\n");
}

static void emit_source_cuda(const ModelIR *m, FILE *out, const char *hdr_name) {
    const char *n = m->spec.name;
    fprintf(out, "/* %s.cu - generated by mlc from %s; do not edit.\n", n, c_comment(m->arena, m->source));
    fprintf(out, " * Target: CUDA + cuBLAS%s%s%s. Parameters and optimizer state live in one device slab,\n",
            m->tf32 ? " (--tf32: GEMMs may use TF32 tensor cores)" : "",
            m->cublaslt ? " and cuBLASLt (--cublaslt: GEMMs with bias and ReLU epilogues)" : "",
            cuda_uses_cudnn(m) ? " and cuDNN (--conv-algo cudnn: the convolutions)" : "");
    fprintf(out, " * everything else in one device arena at offsets fixed at compile time\n");
    fprintf(out, " * (c + b * max_batch); the API takes and returns host memory.%s\n", m->bf16 ? "" : " */");
    if (m->bf16)
        fprintf(out,
                " * --precision bf16: the products' inputs and outputs rounded to bfloat16 (mlc_round_bf16). */\n");
    /* the graphs first, into memory (the struct needs their scalar count; the kernels go
     * before the host code) */
    char *kt = NULL, *ft = NULL;
    size_t kl = 0, fl = 0;
    FILE *kern = open_memstream(&kt, &kl), *fns = open_memstream(&ft, &fl);
    if (!kern || !fns) mlc_out_of_memory(0);
    GraphsInfo gi = emit_graphs(m, kern, fns);
    fclose(kern);
    fclose(fns);
    fputs(tmpl_cuda_prologue_cuh, out);
    if (cuda_uses_cudnn(m)) fprintf(out, "#include \"kernels/mlc_kernels_cudnn.h\" /* --conv-algo cudnn */\n");
    fprintf(out, "extern \"C\" {\n#include \"%s\"\n}\n\n", hdr_name);
    fwrite(kt, 1, kl, out);
    free(kt);
    fprintf(out, "struct %s_model {\n    int max_batch;\n    int64_t step; /* optimizer steps taken */\n", n);
    fprintf(out, "    uint64_t seed; /* of initialisation and dropout */\n");
    fprintf(out, "    float *slab;  /* device: %lld floats, parameters and optimizer state */\n",
            (long long)m->slab_floats);
    fprintf(out, "    float *grads; /* device: %lld floats, the gradient slab (forward_backward -> update) */\n",
            (long long)m->grad_floats);
    fprintf(out, "    float *arena; /* device: activations, backward values, temporaries */\n");
    fprintf(out, "    int micro;    /* forward_backward calls since the last update (dropout's counter) */\n");
    fprintf(out, "    int64_t sample0; /* set_sample_offset: the first sample's place in the step's batch */\n");
    fprintf(out, "    mlcrt_norm norm; /* norm_of: the input normalisation its weights go with */\n");
    fprintf(out, "    void *in[%d]; /* device: a batch of each input (mlc_io_desc order) */\n", m->ninputs);
    fprintf(out, "    cudaStream_t stream;\n    cublasHandle_t cublas;\n");
    if (m->cublaslt) fprintf(out, "    cublasLtHandle_t cublaslt; /* --cublaslt: GEMMs with their epilogues */\n");
    if (cuda_uses_cudnn(m)) fprintf(out, "    cudnnHandle_t cudnn; /* --conv-algo cudnn: the convolutions */\n");
    fprintf(out, "    void *cublas_ws; /* device: cuBLAS's workspace */\n");
    fprintf(out, "    void (*grad_ready)(void *ctx, int64_t done); /* set_grad_ready */\n    void *grad_ctx;\n");
    emit_batch_sync_fields(out);
    fprintf(out, "    /* each call's scalars, written by the host and copied to dev_scalars before the launches */\n");
    fprintf(out, "    mlc_scalar scalars[%d];\n    mlc_scalar *dev_scalars;\n", gi.nscalars ? gi.nscalars : 1);
    fprintf(out, "    float *stage; /* pinned host memory: the loss and outputs a launch copied out */\n");
    fprintf(out, "    mlc_graph_cache graphs; /* the CUDA graphs of the steps, by batch size */\n");
    fprintf(out, "    long run_n;   /* the batch size and outputs wanted of the launches a graph captures */\n");
    fprintf(out, "    int run_outs;\n");
    fprintf(out, "};\n\n");

    emit_tensor_table(m, out);
    emit_create_destroy(m, &gi, out);
    emit_batch_sync_setter(m, out, 1); /* before the graph functions, which call it */
    fwrite(ft, 1, fl, out);
    free(ft);

    fprintf(out, "static void api_read_tensor(void *model, int i, void *dst) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(
        out,
        "    MLC_CUDA_CHECK(cudaMemcpy(dst, self->slab + %s_offsets[i], sizeof(float) * (size_t)%s_tensors[i].numel,\n"
        "                              cudaMemcpyDeviceToHost));\n}\n\n",
        n, n);
    fprintf(out, "static void api_write_tensor(void *model, int i, const void *src) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(
        out,
        "    MLC_CUDA_CHECK(cudaMemcpy(self->slab + %s_offsets[i], src, sizeof(float) * (size_t)%s_tensors[i].numel,\n"
        "                              cudaMemcpyHostToDevice));\n}\n\n",
        n, n);
    fprintf(out, "static float *api_grads(void *model) { return ((%s_model *)model)->grads; }\n", n);
    fprintf(out, "static void api_read_grads(void *model, float *dst) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaMemcpy(dst, self->grads, sizeof(float) * %lld, cudaMemcpyDeviceToHost));\n}\n",
            (long long)m->grad_floats);
    fprintf(out, "static void api_write_grads(void *model, const float *src) {\n");
    fprintf(out, "    %s_model *self = (%s_model *)model;\n", n, n);
    fprintf(out, "    MLC_CUDA_CHECK(cudaStreamSynchronize(self->stream));\n");
    fprintf(out, "    MLC_CUDA_CHECK(cudaMemcpy(self->grads, src, sizeof(float) * %lld, cudaMemcpyHostToDevice));\n}\n",
            (long long)m->grad_floats);
    fprintf(out, "static int64_t api_get_step(void *model) { return ((%s_model *)model)->step; }\n", n);
    fprintf(out, "static void api_set_step(void *model, int64_t step) { ((%s_model *)model)->step = step; }\n", n);
    fprintf(out, "/* Everything runs on the GPU: there are no CPU threads to set. */\n");
    fprintf(out, "static void api_set_threads(int n) { (void)n; }\n\n");
    emit_set_sample_offset(m, out);
    emit_norm_of(m, out);
    emit_grad_ready_setter(m, out);
    fprintf(out, "static void *api_device_stream(void *model) { return (void *)((%s_model *)model)->stream; }\n\n", n);

    fprintf(out, "/* What the runtime and the trainer's main() (C) call: C linkage. */\n");
    fprintf(out, "extern \"C\" {\n\n");
    fprintf(out, "void %s_destroy(%s_model *m) { api_destroy(m); }\n", n, n);
    emit_step_wrappers(m, out);
    emit_api_struct(m, out, "cuda");
    fprintf(out, "\n} /* extern \"C\" */\n");
}

const Target target_cuda = {.name = "cuda",
                            .src_ext = ".cu",
                            .kind = TARGET_CUDA,
                            .emitters = cuda_emitters,
                            .math = cuda_math,
                            .loop_begin = cuda_loop_begin,
                            .loop_end = cuda_loop_end,
                            .emit_source = emit_source_cuda,
                            .build = &cuda_build,
                            .half_storage = cuda_bf16_storage};
