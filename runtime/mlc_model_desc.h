/* mlc_model_desc.h - the plain descriptors a model's API tables are made of: its
 * persistent tensors, its inputs and outputs, its optimizer. Data only, no functions;
 * the API struct that points at them is mlc_model.h's. */
#ifndef MLC_MODEL_DESC_H
#define MLC_MODEL_DESC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* C linkage for a C++ caller */
#endif

#define MLC_MAX_RANK 6
/* A model has at most this many outputs (mlc's IR_MAX_OUTPUTS), so a caller may pass a
 * fixed array of pointers. */
#define MLC_MAX_OUTPUTS 8

typedef enum mlc_dtype { MLC_F32 = 0, MLC_I32 = 1 } mlc_dtype;

/* One persistent tensor of the model: a parameter or a piece of optimizer state. */
typedef struct mlc_tensor_desc {
    const char *name; /* "fc1.weight", "fc1.weight.adam_m", ... unique within the model */
    mlc_dtype dtype;
    int rank;
    int64_t dims[MLC_MAX_RANK];
    int64_t numel;
    int is_param; /* 1: a trainable parameter; 0: optimizer or other state */
    /* Offset of its gradient in the gradient slab, in floats (16-float aligned); -1 for
     * state, for parameters the loss does not depend on, and for those whose gradient
     * the compiler folded to a constant (the loss is linear in them). */
    int64_t grad_offset;
} mlc_tensor_desc;

/* One input or output of the model, per sample (without the batch dimension, which
 * comes first in memory: a batch of n is n * numel elements). */
typedef struct mlc_io_desc {
    const char *name; /* the .mdl's name: `input image: ...`, `output recon` */
    mlc_dtype dtype;  /* an MLC_I32 output (argmax) fills its float-sized slots with int32_t */
    int rank;
    int64_t dims[MLC_MAX_RANK];
    int64_t numel;
    int eval_reads; /* inputs: 1 when forward reads it (0: it may be NULL there, as labels
                     * usually are); outputs: 1 */
} mlc_io_desc;

typedef struct mlc_optimizer_desc {
    const char *kind; /* "sgd", "adam" or "adamw" (decoupled weight decay) */
    /* The .mdl's values (docs/language.md); only lr is read by the runtime (--lr's
     * default), the rest are compiled into the update and recorded here. */
    float lr, momentum, beta1, beta2, eps, weight_decay;
} mlc_optimizer_desc;

#ifdef __cplusplus
}
#endif

#endif
