/* ---- templates/cuda_device.cuh: device helpers, the start of every CUDA kernel section ---- */
/* What the generated kernels use besides the Philox of runtime/kernels/mlc_philox.h and
 * attention's block functions (cuda_attention.cuh), pasted in front of them because
 * NVRTC has no include path and, without -rdc, a kernel can only call device code of its
 * own translation unit. The kernels that do not depend on the model (convolution,
 * pooling, batch-norm sums) are a compiled library instead: runtime/kernels/cuda/,
 * declared in runtime/kernels/mlc_kernels_cuda.h, which the host code includes. */

/* ---- fused reductions over rows (emit_cuda.c): a block of MLC_ROW_THREADS per output
 * element; its threads make the values of MLC_ROW_THREADS axis elements at a time, thread
 * 0 adds them in order. ---- */
#define MLC_ROW_THREADS 256
/* ---- a call's scalars (Adam's bias-corrected step, dropout's counter): the host writes
 * them into the model's table each call and copies it to the device before the launches,
 * and the kernels read them there, so a CUDA graph replays each step with its own
 * values (runtime/kernels/cuda/graph.cu). ---- */
union mlc_scalar {
    float f;
    unsigned long long u;
};
/* ---- end of device helpers ---- */
