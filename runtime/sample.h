/* sample.h - the trainer's sample mode: text generation with a token model
 * (docs/trainer.md, "Generating text"). Private to libmlcrt (not installed). */
#ifndef MLCRT_SAMPLE_H
#define MLCRT_SAMPLE_H

#include <stdint.h>
#include <stdio.h>

#include "mlc_model.h"
#include "trainer_flags.h"

/* One score and its token, for ranking. */
typedef struct mlcrt_scored {
    float score;
    int64_t id;
} mlcrt_scored;

/* The token drawn from scores[0..vocab) with u in [0,1): the softmax of
 * scores / temperature over the top_k highest (all when top_k is 0 or at least vocab),
 * ranked by score and then by the lower id, inverted at u. top_k 1 is the argmax (the
 * first maximum). The scores are finite (NaN has no rank). rank: vocab entries of scratch. */
int64_t mlcrt_sample_token(const float *scores, int64_t vocab, double temperature, int64_t top_k, double u,
                           mlcrt_scored *rank);

/* ./net sample CHECKPOINT: prints --prompt and the --tokens generated after it. Returns
 * the exit status (0, or 1 after an `error:` line). */
int mlcrt_run_sample(const trainer_opts *o, const mlc_model_api *api, FILE *out, FILE *err);

#endif
