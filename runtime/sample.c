/* sample.c - text generation with a token model (sample.h): each new token is drawn
 * from the model's scores at the last position of the context, the context recomputed
 * from scratch for every token (no cache of keys and values: the model API has none). */
#include "sample.h"

#include "ckpt.h"
#include "io_bind.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "text_data.h"
#include "trainer.h"
#include "write_check.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Highest score first; equal scores by the lower id, so the order is total. */
static int by_score(const void *a, const void *b) {
    const mlcrt_scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int64_t mlcrt_sample_token(const float *scores, int64_t vocab, double temperature, int64_t top_k, double u,
                           mlcrt_scored *rank) {
    for (int64_t i = 0; i < vocab; i++) rank[i] = (mlcrt_scored){scores[i], i};
    qsort(rank, (size_t)vocab, sizeof *rank, by_score);
    int64_t k = top_k > 0 && top_k < vocab ? top_k : vocab;
    double sum = 0;
    for (int64_t j = 0; j < k; j++) sum += exp(((double)rank[j].score - rank[0].score) / temperature);
    double target = u * sum, acc = 0;
    for (int64_t j = 0; j < k; j++) {
        acc += exp(((double)rank[j].score - rank[0].score) / temperature);
        if (target < acc) return rank[j].id;
    }
    return rank[k - 1].id;
}

/* A token as text: its byte (a text corpus's tokens are bytes), or <id> above 255. */
static void put_token(FILE *out, int64_t id) {
    if (id < 256) fputc((int)id, out);
    else fprintf(out, "<%lld>", (long long)id);
}

int mlcrt_run_sample(const trainer_opts *o, const mlc_model_api *api, FILE *out, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    mlcrt_lm_shape lm;
    mlcrt_binding b;
    if (!mlcrt_is_token_model(api)) {
        fprintf(err, "error: sample: model '%s' does not read tokens (it has no input i32[T])\n", api->name);
        return 1;
    }
    if (mlcrt_lm_shape_of(api, &lm, msg, sizeof msg) != MLCRT_OK ||
        mlcrt_bind_inputs(api, &b, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return 1;
    }
    /* the prompt's bytes are its tokens; without one, generation starts at a line's start */
    const int given = o->prompt && *o->prompt;
    const char *prompt = given ? o->prompt : "\n";
    int64_t np = (int64_t)strlen(prompt), T = lm.window, V = lm.vocab;
    for (int64_t i = 0; i < np; i++)
        if ((unsigned char)prompt[i] >= V) {
            if (given)
                fprintf(err, "error: --prompt: byte %lld is %u, expected ids below the model's vocabulary of %lld\n",
                        (long long)i, (unsigned)(unsigned char)prompt[i], (long long)V);
            else
                fprintf(err,
                        "error: sample: the default prompt (a newline, id 10) is outside the model's vocabulary of "
                        "%lld; give --prompt with ids below it\n",
                        (long long)V);
            return 1;
        }
    int status = 1;
    /* the context: the last T tokens of the text so far, oldest first (nh of them) */
    int64_t nh = 0;
    int32_t *hist = malloc((size_t)T * sizeof *hist);
    int32_t *ctx = calloc((size_t)T, sizeof *ctx), *targets = calloc((size_t)T, sizeof *targets);
    float *scores = malloc((size_t)(T * V) * sizeof *scores);
    float **outs = calloc((size_t)api->n_outputs, sizeof *outs);
    mlcrt_scored *rank = malloc((size_t)V * sizeof *rank);
    void *model = NULL;
    if (!hist || !ctx || !targets || !scores || !outs || !rank) {
        fprintf(err, "error: out of memory for sampling %d tokens\n", o->sample_tokens);
        goto done;
    }
    if (!(model = api->create(o->seed, 1))) {
        char size[96];
        if (!mlcrt_create_says_why(api))
            fprintf(err, "error: out of memory creating model '%s'%s\n", api->name, mlcrt_oom_size(size, sizeof size));
        goto done;
    }
    if (mlcrt_ckpt_load(api, model, o->ckpt_arg, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        goto done;
    }
    for (int64_t i = np > T ? np - T : 0; i < np; i++) hist[nh++] = (unsigned char)prompt[i];
    errno = 0;
    if (o->prompt) fputs(o->prompt, out);
    if (mlcrt_write_ok(out, "output to", NULL, err)) goto done;
    outs[lm.logits_output] = scores;
    const void *in[2] = {NULL, NULL};
    mlcrt_batch_inputs(&b, in, ctx, targets);
    const uint64_t stream = mlc_hash_name("sample");
    for (int t = 0; t < o->sample_tokens; t++) {
        /* the last T tokens at the window's start: with fewer, the positions after them
         * hold 0, which a causal model's score at the last one does not see */
        int64_t len = nh < T ? nh : T;
        memset(ctx, 0, (size_t)T * sizeof *ctx);
        memcpy(ctx, hist + nh - len, (size_t)len * sizeof *ctx);
        api->forward(model, in, 1, outs);
        /* NaN scores rank in no consistent order and sum to NaN: id 0 or the last ranked one
         * would come out every time, as if drawn */
        const float *row = scores + (len - 1) * V;
        for (int64_t j = 0; j < V; j++)
            if (!isfinite(row[j])) {
                fprintf(err,
                        "error: %s: the model's score of id %lld for token %d is %s, expected a finite number (its "
                        "weights are not finite: a diverged run's checkpoint?)\n",
                        o->ckpt_arg, (long long)j, t + 1, isnan(row[j]) ? "NaN" : "Inf");
                goto done;
            }
        double u = mlc_rng_uniform(o->seed, stream, (uint64_t)t);
        int64_t id = mlcrt_sample_token(row, V, o->temperature, o->top_k, u, rank);
        if (nh == T) memmove(hist, hist + 1, (size_t)(--nh) * sizeof *hist); /* the oldest leaves */
        hist[nh++] = (int32_t)id;
        /* each token as it comes (a forward pass costs far more than the write): a reader
         * sees the text grow, and a full disk or a reader gone stops the run at once */
        put_token(out, id);
        fflush(out);
        if (mlcrt_write_ok(out, "output to", NULL, err)) goto done;
    }
    fputc('\n', out);
    if (mlcrt_check_written(out, "output to", NULL, err)) goto done;
    status = 0;
done:
    if (model) api->destroy(model);
    free(hist);
    free(ctx);
    free(targets);
    free(scores);
    free(outs);
    free(rank);
    return status;
}
