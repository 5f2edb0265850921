/* emitters.c - the C target's emitter table: for each op with code of its own, the
 * function printing it and the scratch it needs. Elementwise ops, reductions and
 * matmuls have none: emit_c.c writes them as fused groups and GEMM calls. */
#include "c_emitters.h"

const OpEmitter c_emitters[OP_COUNT] = {
    [OP_argmax_mask] = {emit_argmax},
    [OP_transpose] = {emit_transpose},
    [OP_slice] = {emit_slice_c},
    [OP_pad] = {emit_pad_c},
    [OP_concat] = {emit_concat_c},
    [OP_conv2d] = {emit_conv_c, ws_conv_c},
    [OP_conv2d_bwd_data] = {emit_conv_c, ws_conv_c},
    [OP_conv2d_bwd_filter] = {emit_conv_c, ws_conv_c},
    [OP_max_pool2d] = {emit_pool_c},
    [OP_maxpool2d_bwd] = {emit_pool_c},
    [OP_avg_pool2d] = {emit_pool_c},
    [OP_avgpool2d_bwd] = {emit_pool_c},
    [OP_bn_stats] = {emit_norm_c},
    [OP_bn_param_grads] = {emit_norm_c},
    [OP_bn_bwd] = {emit_norm_c},
    [OP_bn_scale] = {emit_bn_coef},
    [OP_bn_shift] = {emit_bn_coef},
    [OP_dropout_mask] = {emit_dropout},
    [OP_one_hot] = {emit_one_hot},
    [OP_sgd_update] = {emit_sgd_c},
    [OP_sgd_plain_update] = {emit_sgd_plain_c},
    [OP_adam_update] = {emit_adam_c},
    [OP_ema_update] = {emit_ema},
    /* sequence models: row norms, embeddings, masks */
    [OP_layer_norm] = {emit_row_norm_c},
    [OP_rms_norm] = {emit_row_norm_c},
    [OP_row_norm_stats] = {emit_row_norm_c},
    [OP_row_norm_bwd] = {emit_row_norm_c},
    [OP_row_norm_param_grads] = {emit_row_norm_c},
    [OP_gather_rows] = {emit_embedding_c},
    [OP_scatter_rows] = {emit_embedding_c},
    [OP_causal_mask] = {emit_causal_mask},
    /* attention (attention.c) */
    [OP_attention] = {emit_attention_c},
    [OP_attention_stats] = {emit_attention_c},
    [OP_attention_bwd_q] = {emit_attention_c},
    [OP_attention_bwd_kv] = {emit_attention_c},
    /* lang (issue 14): reduce.c, upsample.c */
    [OP_argmax] = {emit_argmax_index},
    [OP_upsample_bilinear] = {emit_upsample_bilinear},
    [OP_upsample_bilinear_bwd] = {emit_upsample_bilinear_bwd},
    [OP_param_ema] = {emit_param_ema}, /* train { ema } (shared/optim.c) */
};

/* The float math functions: libm's, but exp and erf are mlc_math.h's (runtime/kernels), which vectorize. */
// clang-format off
const MathName c_math[] = {
    {"exp", "mlc_expf"}, {"log", "logf"}, {"sqrt", "sqrtf"}, {"tanh", "tanhf"}, {"erf", "mlc_erff"}, {"pow", "powf"},
    {"sin", "sinf"}, {"cos", "cosf"}, {"fabs", "fabsf"},
    {"rng_uniform", "mlc_philox_uniform"}, {"round_bf16", "mlc_round_bf16"}, {NULL, NULL},
};
// clang-format on
