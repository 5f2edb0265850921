/* emitters.c - the CUDA target's emitter table: for each op with code of its own, the
 * function printing its kernels and launches and the scratch it needs. Elementwise ops,
 * reductions and matmuls have none: emit_cuda.c writes them as fused kernels and cuBLAS
 * calls. */
#include "cuda_emitters.h"

const OpEmitter cuda_emitters[OP_COUNT] = {
    [OP_argmax_mask] = {emit_argmax},
    [OP_transpose] = {emit_transpose},
    [OP_slice] = {emit_rows_cuda},
    [OP_pad] = {emit_rows_cuda},
    [OP_concat] = {emit_rows_cuda},
    [OP_conv2d] = {emit_conv_cuda, ws_conv_cuda},
    [OP_conv2d_bwd_data] = {emit_conv_cuda, ws_conv_cuda},
    [OP_conv2d_bwd_filter] = {emit_conv_cuda, ws_conv_cuda},
    [OP_max_pool2d] = {emit_pool_cuda},
    [OP_maxpool2d_bwd] = {emit_pool_cuda},
    [OP_avg_pool2d] = {emit_pool_cuda},
    [OP_avgpool2d_bwd] = {emit_pool_cuda},
    [OP_bn_stats] = {emit_norm_cuda, ws_norm_cuda},
    [OP_bn_param_grads] = {emit_norm_cuda, ws_norm_cuda},
    [OP_bn_bwd] = {emit_norm_cuda},
    [OP_bn_scale] = {emit_bn_coef},
    [OP_bn_shift] = {emit_bn_coef},
    [OP_dropout_mask] = {emit_dropout},
    [OP_one_hot] = {emit_one_hot},
    [OP_sgd_update] = {emit_sgd},
    [OP_sgd_plain_update] = {emit_sgd},
    [OP_adam_update] = {emit_adam},
    [OP_ema_update] = {emit_ema},
    /* sequence models: row norms, embeddings, masks */
    [OP_layer_norm] = {emit_row_norm_cuda},
    [OP_rms_norm] = {emit_row_norm_cuda},
    [OP_row_norm_stats] = {emit_row_norm_cuda},
    [OP_row_norm_bwd] = {emit_row_norm_cuda},
    [OP_row_norm_param_grads] = {emit_row_norm_cuda},
    [OP_gather_rows] = {emit_embedding_cuda},
    [OP_scatter_rows] = {emit_embedding_cuda},
    [OP_causal_mask] = {emit_causal_mask},
    /* attention (attention.c) */
    [OP_attention] = {emit_attention_cuda},
    [OP_attention_stats] = {emit_attention_cuda},
    [OP_attention_bwd_q] = {emit_attention_cuda},
    [OP_attention_bwd_kv] = {emit_attention_cuda},
    /* lang (issue 14): reduce.c, upsample.c */
    [OP_argmax] = {emit_argmax_index},
    [OP_upsample_bilinear] = {emit_upsample_bilinear},
    [OP_upsample_bilinear_bwd] = {emit_upsample_bilinear_bwd},
    [OP_param_ema] = {emit_param_ema}, /* train { ema } (shared/optim.c) */
};

/* The CUDA math library's float functions, which keep results within an ulp or two of the
 * C target's (the intrinsics __expf, __logf would be faster but coarser, and the two
 * targets' results are compared step by step: tests/compiler/gpu/run_cuda_vs_c.sh). */
// clang-format off
const MathName cuda_math[] = {
    {"exp", "expf"}, {"log", "logf"}, {"sqrt", "sqrtf"}, {"tanh", "tanhf"}, {"erf", "erff"}, {"pow", "powf"},
    {"sin", "sinf"}, {"cos", "cosf"}, {"fabs", "fabsf"},
    {"rng_uniform", "mlc_philox_uniform"}, {"round_bf16", "mlc_round_bf16"}, {NULL, NULL},
};
// clang-format on
