/* text_data.h - token datasets for language models (docs/trainer.md, "Text and tokens").
 *
 * A token model is one with an i32 input of more than one value per sample: `tokens:
 * i32[B, T]`. Its data are windows of T + 1 consecutive tokens of a corpus: the first T
 * feed the tokens input, the last T (the same shifted by one) the targets input. Two
 * corpora are read, told apart by what --data names:
 *   - a file: text read as bytes, one token per byte (vocabulary 256); its last 10 % is
 *     the validation split;
 *   - a directory with train.bin and val.bin: uint16 token ids, little-endian, as
 *     GPT training code writes them; the vocabulary is the model's.
 * Training windows start at random positions, a pure function of (seed, epoch, sample
 * index); validation windows are fixed. An mlc_dataset carries a token split in its
 * `text` member (x and y stay NULL); mlcrt_batch_gather_aug gathers its windows. */
#ifndef MLCRT_TEXT_DATA_H
#define MLCRT_TEXT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "mlc_model.h"

/* Validation windows at most: evenly spaced over the validation split, so that a loss
 * measured every few hundred steps costs a few forward passes. */
#define MLCRT_VAL_WINDOWS 64

/* One split of a corpus. */
typedef struct mlcrt_text {
    uint16_t *ids; /* [n_ids] the split's tokens */
    int64_t n_ids;
    int64_t window;  /* T: tokens per sample */
    int64_t *starts; /* fixed windows (validation): window w is ids[starts[w] .. + T]; NULL:
                      * random windows (training) */
    int64_t first;   /* sample i is window first + i (0; a view's offset, mlcrt_dataset_view) */
} mlcrt_text;

/* What a token model reads: the window length T (the size of its tokens input) and its
 * vocabulary V (the last dimension of its per-token scores, an output f32[T, V]: the one
 * the loss's cross_entropy scores, mlc_model_api.cls_output, else the only output of that
 * shape). */
typedef struct mlcrt_lm_shape {
    int64_t window, vocab;
    int logits_output; /* the output holding the scores */
} mlcrt_lm_shape;

/* Bits per token of a loss in nats (loss / ln 2): bits per character for a text file,
 * whose tokens are its bytes. */
static inline double mlcrt_bits(double loss) { return loss / 0.69314718055994530942; }

/* 1 when the model reads token windows (an i32 input of more than one value). */
int mlcrt_is_token_model(const mlc_model_api *api);
/* The shape of a token model; MLCRT_EMISMATCH with a message when its inputs or outputs
 * do not fit one (io_bind.h binds them). */
int mlcrt_lm_shape_of(const mlc_model_api *api, mlcrt_lm_shape *s, char *msg, size_t cap);

/* Loads the training (val = 0) or validation (val = 1) split of the corpus `path` names
 * for a model of shape s: ds->n windows (training: as many as fit the split without
 * overlap, an epoch; validation: up to MLCRT_VAL_WINDOWS), each of sample_numel = T
 * tokens. limit > 0 keeps at most `limit` windows. Every token of the corpus is checked
 * against the vocabulary. Messages name the file, e.g.
 *   corpus.txt: 20 bytes, expected at least 170 (its last 10 % is the validation split, which needs a window of T+1 = 17 tokens) */
int mlcrt_text_load(mlc_dataset *ds, const char *path, int val, const mlcrt_lm_shape *s, int64_t limit, char *msg,
                    size_t cap);

/* Where training window `index` of epoch `epoch` starts, in [0, n_starts): Philox with
 * key seed ^ "WINDOWS" and counter (index, epoch), so it depends on nothing else. */
int64_t mlcrt_text_window_start(uint64_t seed, uint64_t epoch, uint64_t index, int64_t n_starts);

/* Writes windows perm[start .. start+n) (or start .. start+n) of t: tokens into bx and
 * targets into by, [n, T] each. */
void mlcrt_text_gather(const mlcrt_text *t, const int64_t *perm, int64_t start, int n, int32_t *bx, int32_t *by,
                       uint64_t seed, uint64_t epoch);

void mlcrt_text_free(mlcrt_text *t);

#endif
