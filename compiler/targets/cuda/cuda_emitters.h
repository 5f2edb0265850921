/* cuda_emitters.h - the CUDA target's emitters, one file per op family (conv.c, norm.c,
 * ...), gathered into its emitter table (emitters.c), and what they share with
 * emit_cuda.c. */
#ifndef MLC_CUDA_EMITTERS_H
#define MLC_CUDA_EMITTERS_H

#include "kernels/mlc_conv_tiles.h"
#include "shared_emitters.h"
#include "target.h"

extern const OpEmitter cuda_emitters[OP_COUNT];
extern const TargetBuild cuda_build; /* toolchain.c */
/* --cuda-arch (toolchain.c): the compute capabilities a list like "sm_80,sm_90" names
 * (80, 90), without repeats, into cc; their count, or -1 when spec is not such a list or
 * names more than max. */
int cuda_arch_parse(const char *spec, int *cc, int max);
/* 0 when spec is such a list whose capabilities are all `oldest` or newer (0: any; 80:
 * what --conv-algo implicit's kernels are built for, the bf16 and TF32 tensor cores),
 * else -1 after a one-line error on stderr. */
int cuda_arch_check(const char *spec, int oldest);
extern const MathName cuda_math[]; /* the spelling of op_math_names */
/* cuBLAS's workspace, given to it (cublasSetWorkspace) so that a graph capture never
 * sees it allocate: the size NVIDIA recommends for Hopper, above what older GPUs use.
 * --report counts it. */
#define CUDA_CUBLAS_WORKSPACE_BYTES (32ll << 20)

/* emit_cuda.c: what the emitters use to write one kernel for node id.
 * cuda_kernel_begin prints the node comment and the kernel's signature into e->decls
 * (`const long B`, the node's buffers, then `extra_params` if not NULL) and opens a
 * grid-stride loop `for (long IVAR ...; IVAR < COUNT; ...)`; until cuda_kernel_end,
 * emit() writes the loop's body. It returns the kernel's name, which cuda_launch (in the
 * host function, after emit_node_comment) launches over COUNT work items. */
const char *cuda_kernel_begin(EmitCtx *e, int id, const char *count, const char *ivar, const char *extra_params);
void cuda_kernel_end(EmitCtx *e);
/* The bf16 mode of product id's operands, as the launchers take it (mlc_kernels_cuda.h):
 * "MLC_FP32", "MLC_BF16_VALUES" or "MLC_BF16_STORED". */
const char *cuda_gemm_mode(const EmitCtx *e, int id);
/* For --report: graph function fn's emission context, its buffers named as the emitter
 * names them (the declarations go to sink, which the caller opens and discards), so that
 * the report decides what the emitter would */
EmitCtx cuda_report_ctx(const ModelIR *m, GraphFn fn, FILE *sink);
/* --report under --cublaslt: which products run as one cuBLASLt call with their epilogue */
void cuda_lt_report(FILE *out, const ModelIR *m);
/* The element type of node x's buffer in a kernel: "float", "int" or "mlc_bf16" (a
 * tensor stored as bfloat16, bf16_storage.c). */
const char *cuda_elem_type(const EmitCtx *e, int x);
/* The two halves of cuda_kernel_begin for a kernel whose signature its emitter writes:
 * emit() from now on writes into the kernel section (cuda_kernel_end returns to the host
 * function); the grid-stride loop over count_'s work items, thread by thread. */
void cuda_kernel_enter(EmitCtx *e);
void cuda_grid_stride_loop(EmitCtx *e, const char *ivar);
void cuda_launch(EmitCtx *e, int id, const char *kernel, const char *count, const char *extra_args);
/* The kernel of node id's epilogue (fuse.c), if it has one, launched after the op's own
 * work (its emitter calls it last). */
void cuda_epilogue(EmitCtx *e, int id);

void emit_conv_cuda(EmitCtx *e, int id);
void ws_conv_cuda(const Graph *g, const Node *n, Workspace *w);
/* 1 when conv op id of g is an implicit GEMM (--conv-algo implicit, and the bf16 ops
 * --conv-algo cudnn leaves to them), 0: im2col around cuBLAS, or cuDNN */
int cuda_conv_implicit(const Graph *g, int id);
/* 1 when conv op id runs on cuDNN (--conv-algo cudnn, but for a bf16 op whose FP32 result
 * is read before it is rounded; where no algorithm qualifies at run time, the
 * implicit-GEMM kernels) */
int cuda_conv_cudnn(const EmitCtx *e, int id);
/* 1 when cuDNN op id takes floats (its epilogue then in cuDNN's fused call), 0 when bf16
 * values (its bf16 output widened through any epilogue the implicit kernels take) */
int cuda_conv_cudnn_floats(const EmitCtx *e, int id);
/* 1 when model m has convolutions and --conv-algo cudnn: it then holds a cuDNN handle,
 * and mlc build compiles conv_cudnn.cu and links libcudnn */
int cuda_uses_cudnn(const ModelIR *m);
/* The ranges an implicit-GEMM weight gradient of geometry q sums in, at this batch size */
int cuda_conv_splits(const Geom *q, int64_t batch);
/* --conv-algo implicit: the epilogue group of conv2d or conv2d_bwd_data id as the steps of
 * the kernel's store (mlc_conv_tiles.h), each a step's op, whether it works on q, whether
 * its operand is per channel, and that operand's node (-1: none, or q); --conv-algo cudnn:
 * the same for bf16 operands (run as cuDNN's bf16 output is widened), for floats where the
 * steps have the form cuDNN fuses (mlc_conv_epi_cudnn). Returns their count; 0: the group (if any) is a kernel of
 * its own. The emitter and --report decide with it. */
typedef struct CudaConvEpiStep {
    int op, q, per_channel, operand;
} CudaConvEpiStep;
typedef struct CudaConvEpi {
    int n;
    CudaConvEpiStep step[MLC_EPI_MAX];
} CudaConvEpi;
int cuda_conv_epilogue(const EmitCtx *e, int id, CudaConvEpi *ep);
/* The steps for a reader: "+ %6 per channel, relu" */
void cuda_conv_epilogue_text(const CudaConvEpi *ep, char *buf, size_t cap);
void emit_pool_cuda(EmitCtx *e, int id);
void emit_norm_cuda(EmitCtx *e, int id);
void emit_row_norm_cuda(EmitCtx *e, int id);  /* rownorm.c */
void emit_embedding_cuda(EmitCtx *e, int id); /* embedding.c */
void ws_norm_cuda(const Graph *g, const Node *n, Workspace *w);
void emit_rows_cuda(EmitCtx *e, int id);
void emit_attention_cuda(EmitCtx *e, int id); /* attention.c */

/* bf16_storage.c: Target.half_storage. */
void cuda_bf16_storage(const Graph *g, const FusionPlan *fp, char *half);

/* loop.c: the per-element loop (emit.h: ElemLoop). */
void cuda_loop_begin(EmitCtx *e, int id, ElemLoop *l);
void cuda_loop_end(EmitCtx *e, int id, ElemLoop *l);

#endif
