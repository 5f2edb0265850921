/* tiny_lm.h - a hand-written token model satisfying mlc_model_api for the runtime tests
 * of language-model training and sampling: a bigram model, logits[t] = table[tokens[t]]
 * ("bigram.table" [V, V]), inputs tokens: i32[16] and targets: i32[16], output logits
 * f32[16, V], loss the mean cross-entropy over every position, plain SGD. Its scores
 * are cls_output 0 with cls_label 1 and classifier 0, as mlc marks a per-token
 * cross_entropy(logits, targets). */
#ifndef TINY_LM_H
#define TINY_LM_H

#include "mlc_model.h"

#define TINY_LM_T 16

/* V = 256: bytes. */
extern const mlc_model_api tiny_lm_api;
/* V = 100 ("tiny_lm100"): for token ids beyond the vocabulary. */
extern const mlc_model_api tiny_lm100_api;
/* V = 5 ("tiny_lm5"): a vocabulary without the newline of the default prompt. */
extern const mlc_model_api tiny_lm5_api;

/* V = 256 with a feature output feat f32[16, 300] (zeros) before the logits: the loss
 * scores outputs[1]. The _unscored variant has cls_output -1 (a loss that names neither). */
mlc_model_api tiny_lm_feat_api(void);
mlc_model_api tiny_lm_feat_unscored_api(void);

#endif
