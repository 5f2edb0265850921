/* mlc_model.h - the contract between generated model code and the runtime.
 *
 * Every model mlc emits (C or CUDA target) defines one `const mlc_model_api NAME_api`
 * describing itself and pointing at its functions. The runtime's trainer, checkpoint code
 * and evaluator work only through this struct, so the runtime holds nothing
 * model-specific, and a CUDA model looks exactly like a C one from here (its functions
 * take and return host memory; only `grads` hands out a device pointer).
 *
 * A training step is two calls with a seam between them:
 *
 *     loss = api->forward_backward(model, inputs, n, outputs); // gradients -> the slab
 *     ... reduce the slab: average micro-batches (--accum), all-reduce across processes ...
 *     api->update(model, lr);                                   // the optimizer reads it
 *
 * and train_step(model, inputs, n, lr, outputs) is the two back to back. The gradient slab is
 * one contiguous array of grad_numel floats owned by the model; parameter i's gradient
 * is tensors[i].numel floats at tensors[i].grad_offset. It is laid out in the order the
 * backward finishes the gradients: the first parameter in the slab is done first, so a
 * reduction can start on the front of the slab while the backward still runs.
 *
 * Every field is filled by the generated code, for the MLC_API_VERSION it was built
 * against; the runtime refuses any other version (mlcrt_check_api).
 *
 * This header holds the API struct; the descriptors its tables are made of are in
 * mlc_model_desc.h and the runtime's entry points for a model in mlc_model_runtime.h,
 * both included from here. */
#ifndef MLC_MODEL_H
#define MLC_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mlc_model_desc.h" /* the descriptors of tensors, inputs, outputs, optimizer */

#ifdef __cplusplus
extern "C" { /* C linkage for a C++ caller */
#endif

/* Bumped whenever mlc_model_api or a descriptor of mlc_model_desc.h changes: a model built against
 * another version is refused with a message rather than read wrongly. */
#define MLC_API_VERSION 5

/* An input normalisation x' = (x - mean[c]) / std[c]: n 0 (none), 1 (one value for all
 * channels) or the number of channels (at most 4); entries from n on are 0. */
typedef struct mlcrt_norm {
    int n;
    float mean[4];
    float std[4];
} mlcrt_norm;

typedef struct mlc_model_api {
    int api_version;    /* MLC_API_VERSION of the mlc_model.h the model was built with */
    const char *name;   /* the `model` name in the .mdl */
    const char *target; /* "c" or "cuda" */
    /* The inputs (`input` statements, in order) and outputs (`output` statements): the
     * generated functions take one pointer per input and give one per output, in the
     * order of these tables. */
    int n_inputs, n_outputs;
    const mlc_io_desc *inputs, *outputs;
    /* A loss cross_entropy(outputs[cls_output], inputs[cls_label]) names the scores it
     * reads (cls_output, cls_label -1: no such loss). classifier is 1 when they are class
     * scores f32[C] and the label input holds one i32 class; per-token scores f32[T, V]
     * with targets i32[T] (a token model) have classifier 0, and give the trainer the
     * vocabulary and the scores `sample` draws from. The trainer counts accuracy only for
     * classifiers; for other models it reports the loss. */
    int classifier;
    int cls_output, cls_label;

    /* Defaults from the .mdl's train { } section; the trainer's flags override them
     * (runtime/settings.def maps each train { } key to its flag). */
    int default_batch, default_epochs;
    int default_accum; /* micro-batches per optimizer step (train { accum }, --accum) */
    uint64_t default_seed;
    mlc_optimizer_desc optimizer;
    /* Learning-rate schedule over the whole run, per step: "constant", "step", "cosine"
     * (from lr down to 0 along half a cosine) or "onecycle" (docs/trainer.md). */
    const char *schedule;

    /* Persistent tensors, in a fixed order (what checkpoints hold). */
    int n_tensors;
    const mlc_tensor_desc *tensors;

    /* Creates a model whose buffers fit batches of up to max_batch samples; parameters
     * are initialised from `seed` (same seed, same weights). NULL on allocation failure. */
    void *(*create)(uint64_t seed, int max_batch);
    void (*destroy)(void *model);
    /* One optimisation step on n <= max_batch samples: inputs[i] points at
     * [n, inputs[i].dims...] elements of inputs[i].dtype (float or int32_t). Returns the
     * mean loss over the n samples before the update. outputs (may be NULL) has one
     * pointer per output, each NULL or [n, outputs[k].dims...] floats (int32_t for an
     * MLC_I32 output, the same size): the outputs of
     * that forward pass (training mode), so the trainer counts training accuracy for free.
     * It is forward_backward then update. */
    float (*train_step)(void *model, const void *const *inputs, int n, float lr, float *const *outputs);
    /* The first half of train_step: forward, loss and backward on n <= max_batch samples
     * (inputs, outputs as for train_step); batch-norm running statistics are updated here.
     * Returns the mean loss over the n samples and overwrites the gradient slab with the
     * gradient of that mean loss. The optimizer step counter does not move. */
    float (*forward_backward)(void *model, const void *const *inputs, int n, float *const *outputs);
    /* The second half: one optimizer step at learning rate lr from the gradient slab as
     * it is now (clipping, weight decay, momentum or Adam moments; the step counter
     * advances). The slab is read, not changed. */
    void (*update)(void *model, float lr);
    /* The gradient slab: grad_numel floats. grads() points at it: host memory on the C
     * target, device memory on CUDA (valid until destroy). read_grads / write_grads copy
     * the whole slab out of / into host memory on every target. */
    int64_t grad_numel;
    float *(*grads)(void *model);
    void (*read_grads)(void *model, float *dst);
    void (*write_grads)(void *model, const float *src);
    /* Inference (evaluation mode) on n <= max_batch samples; inputs as for train_step,
     * except that an input with eval_reads == 0 may be NULL; outputs likewise. */
    void (*forward)(void *model, const void *const *inputs, int n, float *const *outputs);
    /* The mean loss over n <= max_batch samples in evaluation mode, without updating
     * (every input given): what the trainer reports as test loss. */
    float (*eval_loss)(void *model, const void *const *inputs, int n);
    /* Copies persistent tensor i out of / into the model (host memory, numel floats). */
    void (*read_tensor)(void *model, int i, void *dst);
    void (*write_tensor)(void *model, int i, const void *src);
    /* Optimizer step counter (Adam's t), saved in checkpoints. */
    int64_t (*get_step)(void *model);
    void (*set_step)(void *model, int64_t step);
    /* Sets the number of CPU threads the model's kernels use (OpenMP, OpenBLAS). On the C
     * target it is omp_set_num_threads for the calling thread, so the program's own OpenMP
     * code there follows it too; create sizes its scratch for the count at that moment.
     * A CUDA model ignores it. */
    void (*set_threads)(int n);

    /* The trainer's flags override the defaults below (docs/trainer.md). */

    /* Linear learning-rate warm-up, in epochs (may be fractional), for the "step" and
     * "cosine" schedules (--warmup). 0: no warm-up. */
    float warmup_epochs;
    /* "step" schedule: multiply the lr by step_gamma every step_size epochs (--step-size,
     * --gamma). 0: step_size = max(1, epochs / 3), step_gamma = 0.1. */
    int step_size;
    float step_gamma;
    /* On-the-fly augmentation of training batches, e.g. "crop:4,flip" (--augment);
     * NULL or "" or "none": none. */
    const char *augment;
    /* Per-channel input normalisation x' = (x - mean[c]) / std[c] applied to every split
     * after scaling to [0,1] (--mean, --std). n_norm is 0 (none), 1 (one value for all
     * channels) or the number of channels (at most 4). */
    int n_norm;
    float norm_mean[4];
    float norm_std[4];
    /* The normalisation this instance's weights go with: the .mdl's above from create on,
     * then what each load reads from a checkpoint that records one (an older one: the
     * .mdl's). A save without a training state (NAME_save) records it, so a library's
     * load and save keep it and eval, predict and --load read it back. */
    mlcrt_norm *(*norm_of)(void *model);
    /* Turns on checking the train step's values for NaN/Inf (--check-finite: the inputs,
     * every op that can make one, the updated parameters; docs/trainer.md): the first bad
     * value is reported on stderr with the op and the .mdl line it came from, and the
     * step returns NaN. Evaluation is not checked. NULL when the target cannot check. */
    void (*set_check_finite)(void *model, int on);
    /* Sets `ready`, which forward_backward then calls each time a longer prefix of the
     * gradient slab is final: slab[0, done) (floats) will not change again in this call;
     * its last call has done == grad_numel. A caller can so reduce the front of the slab
     * while the backward still runs (data-parallel overlap, docs/distributed.md). NULL
     * ready: no calls. On CUDA the slab is device memory and a call means that the
     * kernels finishing slab[0, done) are queued on the model's stream (device_stream),
     * not that they have run. */
    void (*set_grad_ready)(void *model, void (*ready)(void *ctx, int64_t done), void *ctx);
    /* The next forward_backward calls' samples are samples first, first + 1, ... of the
     * step's batch (0 unless set): dropout draws for each what it draws for that sample
     * of the whole batch, so a data-parallel rank masks its slice as one process does. */
    void (*set_sample_offset)(void *model, int64_t first);
    /* The fewest samples a training batch may have: 2 when a batch_norm normalises one
     * value per channel and sample (after a dense layer), whose statistics over a batch
     * of one would be meaningless; 0 or 1: any. The trainer refuses flags that would
     * make a batch smaller (docs/trainer.md). */
    int min_train_batch;

    /* --sync-bn (docs/distributed.md): sets `sync`, which forward_backward then calls on
     * every batch norm's per-channel figures, in host memory, for the ranks to combine
     * them over the global micro-batch of `batch` samples (this call's n is the rank's
     * part): moments = 1, v = [mean; biased variance] of this call's samples, to be
     * replaced by the whole batch's; moments = 0, v = [sum dy; sum dy * xhat] (the
     * backward's sums), to be replaced by their sum over the ranks, each rank's weighted
     * by its share of the samples. n = 2 x channels. The running variance's unbiased
     * correction then counts `batch` samples. NULL sync: each call's own statistics (the
     * default). Every target has it; the CUDA model stages v through host memory. */
    void (*set_batch_sync)(void *model, void (*sync)(void *ctx, float *v, int64_t n, int moments), void *ctx,
                           int64_t batch);
    /* CUDA: the stream (a cudaStream_t) the model queues its work on, so that a caller can
     * order its own after it (the overlapped all-reduce waits on an event recorded
     * there). NULL on the C target. */
    void *(*device_stream)(void *model);
} mlc_model_api;

#include "mlc_model_runtime.h" /* what the runtime offers a model: mlcrt_main, save, load */

#ifdef __cplusplus
}
#endif

#endif
