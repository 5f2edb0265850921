/* trainer.c - the standalone trainer every generated model links (docs/trainer.md).
 *
 * Modes: train (default): data loading (MNIST-layout IDX, CIFAR-10/100), normalisation, the epoch loop (seeded shuffle, optional augmentation, train_step on
 * every batch including the last partial one, batches prepared by a loader thread),
 * validation and test evaluation, lr schedules, checkpoints with resume, progress bar,
 * CSV / JSON-lines logs, and the result line: `test accuracy: 0.XXXX` for a classifier,
 * `test loss: X` for any other model (an autoencoder, a regression).
 * eval CHECKPOINT: a classifier's accuracy, per-class accuracy and confusion matrix on
 * the test split; any other model's test loss.
 * predict CHECKPOINT FILE: what the model outputs for every IDX image (a classifier's
 * top classes with their output values).
 * sample CHECKPOINT: text a token model generates (sample.c).
 * A token model (a language model, text_data.h) trains on windows of a text or token
 * corpus through the same loop, reported by loss and bits per token instead of accuracy.
 *
 * The command line (flags, defaults, --help) is read by trainer_flags.c from the table
 * in settings.def; this file only acts on the options.
 *
 * Determinism: everything random is a pure function of (seed, epoch, sample index), and
 * the lr of the global step; the loader thread computes exactly what the main thread
 * would, so results depend only on the seed, the flags and the model's thread count. */
#include "trainer.h"
#include "trainer_flags.h"

#include "ckpt.h"
#include "data.h"
#include "dist.h"
#include "ema_weights.h"
#include "idx.h"
#include "io_bind.h"
#include "loader.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "sample.h"
#include "schedule.h"
#include "log_trim.h"
#include "text_data.h"
#include "timing.h"
#include "write_check.h"
#include "build_info.h"
#include "file_kind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mlcrt_create_says_why(const mlc_model_api *api) { return api->target && strcmp(api->target, "cuda") == 0; }

int mlcrt_argmax_row(const float *row, int64_t k) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (row[j] > row[best]) best = j;
    return (int)best;
}

double mlcrt_evaluate(const mlc_model_api *api, void *model, const mlc_dataset *ds, int batch) {
    mlcrt_binding bind;
    if (batch < 1 || mlcrt_bind_inputs(api, &bind, NULL, 0) != MLCRT_OK) return -1.0;
    if (ds->n == 0) return 0.0;
    const void *in[2] = {NULL, NULL};
    if (!api->classifier || ds->text) { /* a token model's measure is its loss too */
        if (!api->eval_loss) return -1.0;
        /* token windows are gathered into these ([batch, T] ids and targets) */
        int32_t *tx = NULL, *ty = NULL;
        size_t tn = ds->text ? (size_t)batch * (size_t)ds->sample_numel : 0;
        if (ds->text && (!(tx = malloc(tn * sizeof *tx)) || !(ty = malloc(tn * sizeof *ty)))) {
            free(tx);
            return -1.0;
        }
        double sum = 0;
        for (int64_t start = 0; start < ds->n; start += batch) {
            int nb = (int)(ds->n - start < batch ? ds->n - start : batch);
            if (ds->text) {
                mlcrt_batch_gather_aug(ds, NULL, start, nb, tx, ty, NULL, 0, 0);
                mlcrt_batch_inputs(&bind, in, tx, ty);
            } else {
                mlcrt_batch_inputs(&bind, in, ds->x + start * ds->sample_numel, ds->y + start);
            }
            sum += (double)api->eval_loss(model, in, nb) * nb;
        }
        free(tx);
        free(ty);
        return sum / (double)ds->n;
    }
    int64_t k = api->outputs[api->cls_output].numel;
    float *out = malloc((size_t)batch * (size_t)k * sizeof(float));
    float **outs = calloc((size_t)api->n_outputs, sizeof *outs);
    if (!out || !outs) {
        free(out);
        free(outs);
        return -1.0;
    }
    outs[api->cls_output] = out;
    int64_t correct = 0;
    for (int64_t start = 0; start < ds->n; start += batch) {
        int nb = (int)(ds->n - start < batch ? ds->n - start : batch);
        mlcrt_batch_inputs(&bind, in, ds->x + start * ds->sample_numel, ds->y + start);
        api->forward(model, in, nb, outs);
        for (int i = 0; i < nb; i++) correct += mlcrt_argmax_row(out + (int64_t)i * k, k) == ds->y[start + i];
    }
    free(out);
    free(outs);
    return (double)correct / (double)ds->n;
}

/* ---- shared setup ---- */

/* "--mean 0.286 --std 0.353" or "no normalisation", for messages. */
static void norm_str(char *buf, size_t cap, int n, const float *mean, const float *std) {
    if (!n) {
        snprintf(buf, cap, "no normalisation");
        return;
    }
    size_t k = (size_t)snprintf(buf, cap, "--mean ");
    for (int t = 0; t < 2; t++) {
        const float *v = t ? std : mean;
        if (t && k < cap) k += (size_t)snprintf(buf + k, cap - k, " --std ");
        for (int i = 0; i < n && k < cap; i++)
            k += (size_t)snprintf(buf + k, cap - k, "%s%g", i ? "," : "", (double)v[i]);
    }
}

/* A checkpoint remembers the normalisation its model was trained with (ckpt.h): eval,
 * predict, --resume and --load use it. Flags that say otherwise are an error naming both;
 * a version-2 checkpoint, which does not record it, takes the flags as given. */
static int adopt_ckpt_norm(trainer_opts *o, const mlc_model_api *api, const char *path, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    mlcrt_train_state st;
    if (mlcrt_ckpt_load_state(api, NULL, &st, path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    if (!st.has_data_settings) return 0;
    int same = o->mean.n == st.n_norm;
    for (int i = 0; same && i < st.n_norm; i++) same = o->mean.v[i] == st.norm_mean[i] && o->std.v[i] == st.norm_std[i];
    if (o->norm_flags && !same) {
        char a[160], b[160];
        norm_str(a, sizeof a, st.n_norm, st.norm_mean, st.norm_std);
        norm_str(b, sizeof b, o->mean.n, o->mean.v, o->std.v);
        fprintf(err,
                "error: %s: the model was trained with %s, the command line says %s (leave out "
                "--mean and --std to use the checkpoint's)\n",
                path, a, b);
        return -1;
    }
    o->mean.n = o->std.n = st.n_norm;
    memcpy(o->mean.v, st.norm_mean, sizeof o->mean.v);
    memcpy(o->std.v, st.norm_std, sizeof o->std.v);
    return 0;
}

/* Normalises ds with the options' mean/std (no-op without them). */
static int normalize(const trainer_opts *o, mlc_dataset *ds, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    if (!o->mean.n) return 0;
    if (mlcrt_dataset_normalize(ds, o->mean.n, o->mean.v, o->std.v, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

/* Binds the dataset's fields to the model's inputs (io_bind.h); -1 with the message. */
static int bind_inputs(const mlc_model_api *api, mlcrt_binding *b, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    if (mlcrt_bind_inputs(api, b, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

/* Outputs per sample of a classifier's class-score output: its class count. */
static int64_t class_count(const mlc_model_api *api) { return api->outputs[api->cls_output].numel; }

static int load_split(const trainer_opts *o, const mlc_model_api *api, mlc_dataset *ds, int test, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    mlcrt_binding b;
    if (bind_inputs(api, &b, err)) return -1;
    if (mlcrt_is_token_model(api)) { /* test: the validation split, the only held-out one */
        mlcrt_lm_shape lm;
        if (mlcrt_lm_shape_of(api, &lm, msg, sizeof msg) != MLCRT_OK ||
            mlcrt_text_load(ds, o->data_dir, test, &lm, test ? o->test_limit : o->train_limit, msg, sizeof msg) !=
                MLCRT_OK) {
            fprintf(err, "error: %s\n", msg);
            return -1;
        }
        return 0; /* --mean, --augment: refused before (mlcrt_check_token_flags) */
    }
    /* Labels are checked against the classes only where they are classes. */
    int classes = api->classifier && class_count(api) <= INT_MAX ? (int)class_count(api) : 0;
    if (mlcrt_dataset_load_auto(ds, o->data_dir, test, api->inputs[b.image_input].numel, classes,
                                test ? o->test_limit : o->train_limit, msg, sizeof msg) != MLCRT_OK ||
        mlcrt_dataset_check_dims(ds, &api->inputs[b.image_input], o->data_dir, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return normalize(o, ds, err);
}

/* Creates the model and loads path into it (state may be NULL). NULL on failure. */
static void *model_from(const trainer_opts *o, const mlc_model_api *api, const char *path, mlcrt_train_state *state,
                        FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    void *model = api->create(o->seed, o->batch);
    if (!model) {
        char size[96];
        if (!mlcrt_create_says_why(api))
            fprintf(err, "error: out of memory creating model '%s' for batch %d%s\n", api->name, o->batch,
                    mlcrt_oom_size(size, sizeof size));
        return NULL;
    }
    if (o->check_finite) api->set_check_finite(model, 1);
    if (path && mlcrt_ckpt_load_state(api, model, state, path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        api->destroy(model);
        return NULL;
    }
    if (o->ema && mlcrt_use_ema(api, model, msg, sizeof msg) != MLCRT_OK) { /* eval, predict */
        fprintf(err, "error: %s\n", msg);
        api->destroy(model);
        return NULL;
    }
    return model;
}

/* The line that ends a run (and eval's for a model that is no classifier): a
 * classifier's test accuracy, a token model's validation loss and bits per token, any
 * other model's test loss. */
static void result_line(FILE *out, int classifier, int lm, double v) {
    if (classifier) fprintf(out, "test accuracy: %.4f\n", v);
    else if (lm) fprintf(out, "val loss: %.6f  val bpc: %.4f\n", v, mlcrt_bits(v));
    else fprintf(out, "test loss: %.6f\n", v);
}

/* ---- eval ---- */

/* o with its batch cut to `most`, the largest set the mode feeds the model: no batch holds
 * more, and a model created for a --batch of 10^8 zeroed 19 GB of arena for 60,000
 * images before it ran out of memory. Every batch is what it would have been. */
static trainer_opts batch_capped(const trainer_opts *o, int64_t most) {
    trainer_opts c = *o;
    if (most > 0 && c.batch > most) c.batch = (int)most;
    return c;
}

/* d: under mpirun, each rank evaluates its shard of the test set (mlcrt_dist_slice) and
 * the counts or losses are summed (dist.h); NULL in a single process. */
static int run_eval(const trainer_opts *o, mlcrt_dist *d, const mlc_model_api *api, FILE *out, FILE *err) {
    mlc_dataset test;
    memset(&test, 0, sizeof test);
    int loaded = !load_split(o, api, &test, 1, err);
    trainer_opts capped = batch_capped(o, test.n);
    o = &capped;
    void *model = loaded ? model_from(o, api, o->ckpt_arg, NULL, err) : NULL;
    /* every rank loaded the same checkpoint, or none goes on */
    if (d && mlcrt_dist_agree_start(d, model != NULL, o, NULL, &test, NULL, api, model, err)) {
        if (model) api->destroy(model);
        model = NULL;
        loaded = 0;
    }
    if (!loaded) {
        mlcrt_dataset_free(&test);
        return 1;
    }
    if (model && (!api->classifier || test.text)) {
        double loss = mlcrt_dist_evaluate(d, api, model, &test, o->batch);
        /* a NaN is no measurement: a diverged run's weights, as training's NaN loss is */
        int finite = isfinite(loss);
        if (finite) result_line(out, 0, test.text != NULL, loss);
        else
            fprintf(err, "error: %s: the %s loss is %s, expected a finite number (the weights are not finite?)\n",
                    o->ckpt_arg, test.text ? "validation" : "test", isnan(loss) ? "NaN" : "Inf");
        /* no flush here: the run's end flushes stdout and names a failure's reason, which
         * an earlier flush would leave behind (errno) */
        api->destroy(model);
        mlcrt_dataset_free(&test);
        return finite ? 0 : 1;
    }
    mlcrt_binding bind;
    const void *in[2] = {NULL, NULL};
    int64_t k = model ? class_count(api) : 1;
    float *bout = malloc((size_t)o->batch * (size_t)k * sizeof(float));
    float **outs = calloc((size_t)api->n_outputs, sizeof *outs);
    /* the confusion matrix, then the count of samples whose scores are not all finite */
    int64_t *conf = calloc((size_t)(k * k + 1), sizeof(int64_t));
    int status = 1;
    if (!model || !bout || !outs || !conf || bind_inputs(api, &bind, err)) {
        if (model && (!bout || !outs || !conf))
            fprintf(err, "error: out of memory for a %lld-class confusion matrix\n", (long long)k);
        goto done;
    }
    outs[api->cls_output] = bout;
    int64_t correct = 0, lo = 0, hi = test.n;
    if (d) mlcrt_dist_slice(test.n, d->rank, d->size, &lo, &hi);
    for (int64_t s = lo; s < hi; s += o->batch) {
        int nb = (int)(hi - s < o->batch ? hi - s : o->batch);
        mlcrt_batch_inputs(&bind, in, test.x + s * test.sample_numel, test.y + s);
        api->forward(model, in, nb, outs);
        for (int i = 0; i < nb; i++) {
            const float *row = bout + (int64_t)i * k;
            int finite = 1;
            for (int64_t j = 0; j < k; j++) finite &= isfinite(row[j]) != 0;
            conf[k * k] += !finite;
            int p = mlcrt_argmax_row(row, k);
            conf[test.y[s + i] * k + p]++;
            correct += p == test.y[s + i];
        }
    }
    if (d && mlcrt_dist_sum_counts(d, conf, k * k + 1, "the evaluation all-reduce")) goto done;
    /* a NaN has no rank: such rows all went to one class, an accuracy of nothing */
    if (conf[k * k]) {
        fprintf(err,
                "error: %s: the model's scores are not finite for %lld of the %lld test samples, expected finite "
                "numbers (the weights are not finite?)\n",
                o->ckpt_arg, (long long)conf[k * k], (long long)test.n);
        goto done;
    }
    if (d) { /* the summed matrix's diagonal */
        correct = 0;
        for (int64_t c = 0; c < k; c++) correct += conf[c * k + c];
    }
    fprintf(out, "test accuracy: %.4f\n", test.n ? (double)correct / (double)test.n : 0.0);
    int64_t maxc = 1;
    for (int64_t i = 0; i < k * k; i++) maxc = conf[i] > maxc ? conf[i] : maxc;
    int w = snprintf(NULL, 0, "%lld", (long long)maxc), wl = snprintf(NULL, 0, "%lld", (long long)(k - 1));
    if (wl > w) w = wl;
    fprintf(out, "per-class accuracy:\n");
    for (int64_t c = 0; c < k; c++) {
        int64_t tot = 0;
        for (int64_t j = 0; j < k; j++) tot += conf[c * k + j];
        fprintf(out, "  class %*lld  %.4f  (%lld/%lld)\n", wl, (long long)c,
                tot ? (double)conf[c * k + c] / (double)tot : 0.0, (long long)conf[c * k + c], (long long)tot);
    }
    fprintf(out, "confusion matrix (rows: true class, columns: predicted class):\n");
    fprintf(out, "  %*s", wl, "");
    for (int64_t j = 0; j < k; j++) fprintf(out, "  %*lld", w, (long long)j);
    fprintf(out, "\n");
    for (int64_t c = 0; c < k; c++) {
        fprintf(out, "  %*lld", wl, (long long)c);
        for (int64_t j = 0; j < k; j++) fprintf(out, "  %*lld", w, (long long)conf[c * k + j]);
        fprintf(out, "\n");
    }
    status = 0;
done:
    if (model) api->destroy(model);
    free(bout);
    free(outs);
    free(conf);
    mlcrt_dataset_free(&test);
    return status;
}

/* ---- predict ---- */

/* An i32 output (argmax's classes) holds int32_t in its float-sized slots. */
static void print_output_value(FILE *out, const mlc_io_desc *d, const float *row, int64_t j) {
    if (d->dtype == MLC_I32) {
        int32_t v;
        memcpy(&v, row + j, sizeof v);
        fprintf(out, " %d", (int)v);
    } else {
        fprintf(out, " %.6g", (double)row[j]);
    }
}

/* d: under mpirun, each rank predicts its shard of the file (mlcrt_dist_slice) into memory
 * and rank 0 writes the shards in rank order, which is the file's; NULL in one process. */
static int run_predict(const trainer_opts *o, mlcrt_dist *d, const mlc_model_api *api, FILE *out, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    memset(&ds, 0, sizeof ds);
    mlcrt_binding bind;
    if (bind_inputs(api, &bind, err)) return 1;
    if (mlcrt_is_token_model(api)) {
        fprintf(err,
                "error: predict: model '%s' reads tokens, not images; generate text with "
                "`sample CHECKPOINT`\n",
                api->name);
        return 1;
    }
    if (bind.label_input >= 0 && api->inputs[bind.label_input].eval_reads) {
        fprintf(err,
                "error: predict: model '%s' reads its label input '%s' in inference; an "
                "image file has no labels\n",
                api->name, api->inputs[bind.label_input].name);
        return 1;
    }
    if (mlcrt_dataset_load_images(&ds, o->file_arg, &api->inputs[bind.image_input], msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return 1;
    }
    trainer_opts capped = batch_capped(o, ds.n);
    o = &capped;
    int status = 1;
    void *model = NULL;
    float **outs = calloc((size_t)api->n_outputs, sizeof *outs);
    char *taken = NULL;
    const void *in[2] = {NULL, NULL};
    FILE *const out_all = out, *shard = NULL; /* mpirun: this rank's lines, in memory */
    char *shard_text = NULL;
    size_t shard_len = 0;
    if (!outs) goto oom;
    for (int k = 0; k < api->n_outputs; k++)
        if (!(outs[k] = malloc((size_t)o->batch * (size_t)api->outputs[k].numel * sizeof(float)))) goto oom;
    int64_t nc = api->classifier ? class_count(api) : 0;
    int top = o->top < nc ? o->top : (int)nc;
    if (api->classifier && !(taken = malloc((size_t)nc))) goto oom;
    if (normalize(o, &ds, err)) goto done;
    model = model_from(o, api, o->ckpt_arg, NULL, err);
    /* every rank loaded the same checkpoint, or none goes on */
    if ((d && mlcrt_dist_agree_start(d, model != NULL, o, NULL, &ds, NULL, api, model, err)) || !model) goto done;
    int64_t lo = 0, hi = ds.n;
    if (d) {
        mlcrt_dist_slice(ds.n, d->rank, d->size, &lo, &hi);
        if (!(shard = open_memstream(&shard_text, &shard_len))) goto oom;
        out = shard;
    }
    for (int64_t s = lo; s < hi; s += o->batch) {
        int nb = (int)(hi - s < o->batch ? hi - s : o->batch);
        mlcrt_batch_inputs(&bind, in, ds.x + s * ds.sample_numel, NULL);
        api->forward(model, in, nb, outs);
        for (int i = 0; i < nb; i++) {
            fprintf(out, "%lld:", (long long)(s + i));
            if (api->classifier) { /* the top classes by output value, best first */
                const float *row = outs[api->cls_output] + (int64_t)i * nc;
                memset(taken, 0, (size_t)nc);
                for (int t = 0; t < top; t++) {
                    int64_t best = -1;
                    for (int64_t j = 0; j < nc; j++)
                        if (!taken[j] && (best < 0 || row[j] > row[best])) best = j;
                    taken[best] = 1;
                    fprintf(out, "  %lld %.4f", (long long)best, (double)row[best]);
                }
            } else { /* every value of every output, in the outputs' order */
                for (int k = 0; k < api->n_outputs; k++) {
                    const float *row = outs[k] + (int64_t)i * api->outputs[k].numel;
                    for (int64_t j = 0; j < api->outputs[k].numel; j++)
                        print_output_value(out, &api->outputs[k], row, j);
                }
            }
            fprintf(out, "\n");
        }
    }
    if (shard) {
        if (fclose(shard)) {
            shard = NULL;
            goto oom;
        }
        shard = NULL;
        d->gather_text(d, shard_text, shard_len, out_all, "the predictions' gather");
    }
    status = 0;
    goto done;
oom:
    fprintf(err, "error: out of memory for the outputs of batches of %d\n", o->batch);
done:
    if (model) api->destroy(model);
    for (int k = 0; outs && k < api->n_outputs; k++) free(outs[k]);
    free(outs);
    free(taken);
    if (shard) fclose(shard);
    free(shard_text);
    mlcrt_dataset_free(&ds);
    return status;
}

/* ---- train ---- */

typedef struct logger {
    FILE *f;
    int jsonl;
    int classifier; /* 0: no accuracies; val and test columns hold losses */
    int lm;         /* a token model: bits per token beside each loss, no test column */
} logger;

/* The CSV log's first line; NULL for JSON lines, which have none. */
static const char *log_header(const logger *lg) {
    if (lg->jsonl) return NULL;
    return lg->lm           ? "kind,epoch,step,loss,lr,bpc,val_loss,val_bpc,seconds\n"
           : lg->classifier ? "kind,epoch,step,loss,lr,train_acc,val_acc,test_acc,seconds\n"
                            : "kind,epoch,step,loss,lr,val_loss,test_loss,seconds\n";
}

/* A token model's step row (val < 0) or epoch row (val: the validation loss). */
static void log_lm_row(logger *lg, const char *kind, int epoch, int64_t step, double loss, double lr, double val,
                       double seconds) {
    if (lg->jsonl) {
        fprintf(lg->f,
                "{\"kind\":\"%s\",\"epoch\":%d,\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,"
                "\"bpc\":%.4f",
                kind, epoch, (long long)step, loss, lr, mlcrt_bits(loss));
        if (val >= 0) fprintf(lg->f, ",\"val_loss\":%.6f,\"val_bpc\":%.4f", val, mlcrt_bits(val));
        fprintf(lg->f, ",\"seconds\":%.3f}\n", seconds);
        return;
    }
    fprintf(lg->f, "%s,%d,%lld,%.6f,%.6g,%.4f,", kind, epoch, (long long)step, loss, lr, mlcrt_bits(loss));
    if (val >= 0) fprintf(lg->f, "%.6f,%.4f", val, mlcrt_bits(val));
    else fprintf(lg->f, ",");
    fprintf(lg->f, ",%.3f\n", seconds);
}

/* An eval row (--eval-every): the validation measure at a step; loss and the training
 * columns stay empty. */
static void log_eval(logger *lg, int epoch, int64_t step, double lr, double val, double seconds) {
    if (!lg->f) return;
    if (lg->jsonl) {
        fprintf(lg->f, "{\"kind\":\"eval\",\"epoch\":%d,\"step\":%lld,\"lr\":%.6g,", epoch, (long long)step, lr);
        if (lg->classifier) fprintf(lg->f, "\"val_acc\":%.4f", val);
        else fprintf(lg->f, "\"val_loss\":%.6f", val);
        if (lg->lm) fprintf(lg->f, ",\"val_bpc\":%.4f", mlcrt_bits(val));
        fprintf(lg->f, ",\"seconds\":%.3f}\n", seconds);
    } else if (lg->lm) {
        fprintf(lg->f, "eval,%d,%lld,,%.6g,,%.6f,%.4f,%.3f\n", epoch, (long long)step, lr, val, mlcrt_bits(val),
                seconds);
    } else if (lg->classifier) {
        fprintf(lg->f, "eval,%d,%lld,,%.6g,,%.4f,,%.3f\n", epoch, (long long)step, lr, val, seconds);
    } else {
        fprintf(lg->f, "eval,%d,%lld,,%.6g,%.6f,,%.3f\n", epoch, (long long)step, lr, val, seconds);
    }
}

/* A step row (val and test < 0) or an epoch row. For a model that is no classifier,
 * val and test are losses and train_acc is not written. */
static void log_row(logger *lg, const char *kind, int epoch, int64_t step, double loss, double lr, double train_acc,
                    double val_acc, double test_acc, double seconds) {
    if (!lg->f) return;
    int is_epoch = kind[0] == 'e';
    if (lg->lm) {
        log_lm_row(lg, kind, epoch, step, loss, lr, is_epoch ? test_acc : -1, seconds);
        return;
    }
    if (!lg->classifier) {
        if (lg->jsonl) {
            fprintf(lg->f, "{\"kind\":\"%s\",\"epoch\":%d,\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g", kind, epoch,
                    (long long)step, loss, lr);
            if (is_epoch && val_acc >= 0) fprintf(lg->f, ",\"val_loss\":%.6f", val_acc);
            if (is_epoch) fprintf(lg->f, ",\"test_loss\":%.6f", test_acc);
            fprintf(lg->f, ",\"seconds\":%.3f}\n", seconds);
        } else {
            fprintf(lg->f, "%s,%d,%lld,%.6f,%.6g,", kind, epoch, (long long)step, loss, lr);
            if (is_epoch && val_acc >= 0) fprintf(lg->f, "%.6f", val_acc);
            fprintf(lg->f, ",");
            if (is_epoch) fprintf(lg->f, "%.6f", test_acc);
            fprintf(lg->f, ",%.3f\n", seconds);
        }
        return;
    }
    if (lg->jsonl) {
        fprintf(lg->f,
                "{\"kind\":\"%s\",\"epoch\":%d,\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,"
                "\"train_acc\":%.4f",
                kind, epoch, (long long)step, loss, lr, train_acc);
        if (is_epoch && val_acc >= 0) fprintf(lg->f, ",\"val_acc\":%.4f", val_acc);
        if (is_epoch) fprintf(lg->f, ",\"test_acc\":%.4f", test_acc);
        fprintf(lg->f, ",\"seconds\":%.3f}\n", seconds);
    } else {
        fprintf(lg->f, "%s,%d,%lld,%.6f,%.6g,%.4f,", kind, epoch, (long long)step, loss, lr, train_acc);
        if (is_epoch && val_acc >= 0) fprintf(lg->f, "%.4f", val_acc);
        fprintf(lg->f, ",");
        if (is_epoch) fprintf(lg->f, "%.4f", test_acc);
        fprintf(lg->f, ",%.3f\n", seconds);
    }
}

static void format_eta(char *buf, size_t cap, double s) {
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void progress_bar(FILE *out, int epoch, int epochs, int64_t done, int64_t n, double rate) {
    char bar[31], eta[32];
    int fill = n > 0 ? (int)(30 * done / n) : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
    bar[30] = '\0';
    format_eta(eta, sizeof eta, rate > 0 ? (double)(n - done) / rate : 0);
    fprintf(out, "\r\033[Kepoch %d/%d [%s] %lld/%lld  %.0f samples/s  ETA %s", epoch, epochs, bar, (long long)done,
            (long long)n, rate, eta);
    fflush(out);
}

/* The ranks' running statistics averaged for what a save or an evaluation inside an epoch
 * reads (every rank holds the same), the rank's own kept in a table for
 * mlcrt_dist_restore_state (NULL without a communicator); returns -1 after the error. */
static int average_state(mlcrt_dist *d, const mlc_model_api *api, void *model, float ***kept, FILE *err) {
    *kept = NULL;
    if (!d) return 0;
    if (!(*kept = calloc((size_t)(api->n_tensors > 0 ? api->n_tensors : 1), sizeof **kept))) {
        fprintf(err, "error: out of memory averaging the state across ranks\n");
        d->abort(d, 1);
    }
    return mlcrt_dist_sync_state(d, api, model, *kept, err);
}

/* The training goes on from the rank's own statistics, as if nothing had been averaged. */
static void restore_state(const mlc_model_api *api, void *model, float **kept) {
    if (!kept) return;
    mlcrt_dist_restore_state(api, model, kept);
    free(kept);
}

/* --eval-every: the validation set's measure at a step, as a line and a log row:
 *   step 200  val_loss 1.912345  val_bpc 2.7589     (a token model)
 *   step 200  val_acc 0.8123                        (a classifier; val_loss otherwise) */
static int eval_every_line(const trainer_opts *o, mlcrt_dist *d, const mlc_model_api *api, void *model,
                           const mlc_dataset *evalset, logger *lg, int epoch, int64_t step, double lr, double seconds,
                           int bar, FILE *out, FILE *err) {
    float **kept; /* evaluated as the epoch's end evaluates: the ranks' mean statistics, sharded */
    if (average_state(d, api, model, &kept, err)) {
        restore_state(api, model, kept);
        return -1;
    }
    double v = mlcrt_dist_evaluate(d, api, model, evalset, o->batch);
    restore_state(api, model, kept);
    if (v < 0) {
        fprintf(err, "error: out of memory evaluating the validation set\n");
        return -1;
    }
    if (bar) fprintf(out, "\r\033[K");
    if (!o->quiet && lg->lm)
        fprintf(out, "step %lld  val_loss %.6f  val_bpc %.4f\n", (long long)step, v, mlcrt_bits(v));
    else if (!o->quiet)
        fprintf(out, lg->classifier ? "step %lld  val_acc %.4f\n" : "step %lld  val_loss %.6f\n", (long long)step, v);
    fflush(out);
    log_eval(lg, epoch, step, lr, v, seconds);
    return 0;
}

/* epochs (a --warmup may be fractional) times the steps of an epoch, rounded, and held
 * below 2^62 where the product would not fit: a warm-up longer than any run is then still
 * a warm-up (a learning rate near 0), not a wrapped negative count that disables it. */
static int64_t steps_of(double epochs, int64_t spe) {
    double s = epochs * (double)spe;
    return s < 4.6e18 ? (int64_t)llround(s) : INT64_C(1) << 62;
}

/* The last micro-batch of n samples taken in steps of --batch x --accum. */
static int64_t last_micro_batch(const trainer_opts *o, int64_t n) {
    int64_t rest = n % ((int64_t)o->batch * o->accum) % o->batch;
    return rest ? rest : o->batch;
}

/* A batch_norm over one value per channel and sample cannot normalise a batch of one
 * (PyTorch refuses it too): refuse, before training, flags that would make the epoch's
 * last micro-batch (or every one) smaller than api->min_train_batch, rather than skip
 * samples silently. A run resumed inside an epoch (st) trains that epoch's remaining
 * samples first, in steps of this run's --batch and --accum, which may differ from the
 * stopped run's: their last micro-batch counts too. */
static int check_min_batch(const trainer_opts *o, const mlc_model_api *api, int64_t n, const mlcrt_train_state *st,
                           FILE *err) {
    if (api->min_train_batch <= 1 || n == 0) return 0;
    const char *need =
        "error: model '%s' has a batch_norm with one value per channel and sample, which needs "
        "batches of at least %d samples: ";
    int64_t smallest = last_micro_batch(o, n), left = st->epoch_pos > 0 ? n - st->epoch_pos : 0;
    if (o->batch < api->min_train_batch) {
        fprintf(err, need, api->name, api->min_train_batch);
        fprintf(err, "--batch %d\n", o->batch);
    } else if (smallest < api->min_train_batch) {
        fprintf(err, need, api->name, api->min_train_batch);
        fprintf(err,
                "the last batch of each epoch has %lld (%lld training samples in batches of %d); "
                "change --batch or --train-limit\n",
                (long long)smallest, (long long)n, o->batch);
    } else if (left > 0 && last_micro_batch(o, left) < api->min_train_batch) {
        fprintf(err, need, api->name, api->min_train_batch);
        fprintf(err,
                "the last batch of the resumed epoch %lld has %lld (the %lld samples it has left after the "
                "checkpoint's %lld, in batches of %d); change --batch\n",
                (long long)st->epoch + 1, (long long)last_micro_batch(o, left), (long long)left,
                (long long)st->epoch_pos, o->batch);
    } else {
        return 0;
    }
    return -1;
}

static int save_ckpt(const trainer_opts *o, mlcrt_dist *d, const mlc_model_api *api, void *model,
                     const mlcrt_train_state *st, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    float **kept;
    if (average_state(d, api, model, &kept, err)) { /* every rank holds what is saved */
        restore_state(api, model, kept);
        return -1;
    }
    int rc = 0;
    /* one voice: rank 0 writes the single-process format */
    if ((!d || d->rank == 0) && mlcrt_ckpt_save_state(api, model, st, o->save_path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        rc = -1;
    }
    restore_state(api, model, kept);
    return rc;
}

/* This rank's part of the global micro-batch [pos, pos + nb): its first sample, and its
 * count in *cnt (the whole micro-batch without a communicator). */
static int64_t my_part(const mlcrt_dist *d, int64_t pos, int nb, int *cnt) {
    int64_t lo = 0, hi = nb;
    if (d) mlcrt_dist_slice(nb, d->rank, d->size, &lo, &hi);
    *cnt = (int)(hi - lo);
    return pos + lo;
}

/* The run's outputs (--log, --save) against each other and against its inputs: two
 * that name one file would overwrite each other without a word (the log appended into
 * the checkpoint being resumed, the checkpoint renamed over the log, a data file
 * replaced). 0, or 1 with the message on err. */
static int check_output_paths(const trainer_opts *o, FILE *err) {
    const struct {
        const char *flag, *path;
    } out[] = {{"--log", o->log_path}, {"--save", o->save_path}},
      in[] = {{"--resume", o->resume_path}, {"--load", o->load_path}, {"--data", o->data_dir}};
    if (o->log_path && o->save_path && mlcrt_same_file(o->log_path, o->save_path)) {
        fprintf(err, "error: --log and --save name the same file '%s'; give the log another name\n", o->log_path);
        return 1;
    }
    for (size_t a = 0; a < sizeof out / sizeof out[0]; a++) {
        if (!out[a].path) continue;
        for (size_t b = 0; b < sizeof in / sizeof in[0]; b++) {
            /* --save over what --resume or --load read: it was read first, and going on
             * from a checkpoint into itself is the usual way */
            if (!in[b].path || (a == 1 && b < 2)) continue;
            if (mlcrt_same_file(out[a].path, in[b].path)) {
                fprintf(err, "error: %s '%s' names the file %s reads; give %s another name\n", out[a].flag, out[a].path,
                        in[b].flag, out[a].flag);
                return 1;
            }
        }
        if (o->data_dir && mlcrt_data_file_of(o->data_dir, out[a].path)) {
            fprintf(err, "error: %s '%s' names a data file of --data '%s'; give %s another name\n", out[a].flag,
                    out[a].path, o->data_dir, out[a].flag);
            return 1;
        }
    }
    return 0;
}

/* A fresh run writes its log from the start: what is at path must be a log (of any mlc
 * model, in either format), an empty file or nothing, not a file a mistyped --log names
 * (`--log net.mdl`, `--log run.ckpt`). 0, or 1 with the message on err. */
static int check_log_replaceable(const char *path, FILE *err) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
    char head[33] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
    if (!f) return 0; /* opening it to write says why it cannot be */
    fclose(f);
    head[n] = '\0';
    if (!strncmp(head, "kind,", 5) || !strncmp(head, "{\"kind\":", 8)) return 0;
    const char *nl = memchr(head, '\n', n);
    mlcrt_printable(head, nl ? (size_t)(nl - head) : n); /* its first line */
    fprintf(err,
            "error: cannot write log '%s': the file there is no mlc log (its first line begins '%s') and the run would "
            "replace it; remove it or choose another path\n",
            path, head);
    return 1;
}

/* The log opened to append (append) or to write, or NULL with errno set. Opening a FIFO
 * waits for a reader at its other end: one that has none yet is said on err first, so
 * that the wait is not a silent hang. */
static FILE *open_log(const char *path, int append, FILE *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_NONBLOCK);
        if (fd < 0 && errno == ENXIO) {
            fprintf(err, "note: waiting for a reader of the log FIFO '%s'\n", path);
            fflush(err);
            fd = open(path, O_WRONLY);
        }
        if (fd < 0) return NULL;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
            close(fd);
            return NULL;
        }
        FILE *f = fdopen(fd, "w");
        if (!f) close(fd);
        return f;
    }
    return fopen(path, append ? "a" : "w");
}

/* d: the data-parallel communicator (dist.h), NULL in a single process. */
static int run_train(const trainer_opts *o, mlcrt_dist *d, const mlc_model_api *api, FILE *out, FILE *err) {
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset train, test, val;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    memset(&val, 0, sizeof val);
    int status = 1;
    void *model = NULL;
    float *bx[2] = {NULL, NULL}, *bout = NULL, **outs = NULL;
    float *gacc = NULL, *gmicro = NULL; /* --accum: the step's gradient, a micro-batch's */
    int32_t *by[2] = {NULL, NULL};
    int64_t *perm = NULL;
    mlcrt_loader *loader = NULL;
    const int lm = mlcrt_is_token_model(api); /* a language model: loss and bits per token */
    logger lg = {NULL, o->log_jsonl, api->classifier && !lm, lm};
    mlcrt_augment aug;
    uint64_t seed = o->seed;
    mlcrt_binding bind;
    const void *in[2] = {NULL, NULL};
    const int cls = api->classifier && !lm; /* a token model's scores are per token */
    /* a classifier's class scores, for the training accuracy */
    const int64_t k = cls ? class_count(api) : 0;
    /* data-parallel: the ranks have agreed to start; a failure every rank saw alike */
    int started = 0, agreed_failure = 0;
    /* NCCL sums a CUDA model's gradient slab where it lies; else it goes through gacc */
    const int dev_reduce = d && d->sum_device_f32 && o->accum == 1;
    /* the slab all-reduced in buckets while the backward runs (dist.h): a C model's over
     * MPI, a CUDA model's over NCCL on its stream (not a host-staged CUDA model's) */
    const int dev_overlap = dev_reduce && d->start_sum_device_f32 && api->device_stream;
    const int overlap = d && o->accum == 1 && api->set_grad_ready && !o->no_overlap &&
                        (dev_overlap || (!dev_reduce && !api->device_stream));
    mlcrt_overlap ov;
    /* --sync-bn: batch norm's figures combined over the ranks in forward_backward */
    const int sync_bn = d && o->sync_bn && api->set_batch_sync;
    mlcrt_batch_sync bsync = {d, 0.0};

    if (check_output_paths(o, err) || bind_inputs(api, &bind, err) || load_split(o, api, &train, 0, err) ||
        load_split(o, api, &test, 1, err))
        goto done;
    if (mlcrt_dataset_check_like(&test, &train, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        goto done;
    }
    trainer_opts capped = batch_capped(o, train.n > test.n ? train.n : test.n);
    o = &capped;
    /* --eval-every measures this: a token model's validation windows (its `test` split),
     * else the samples --val holds out */
    const mlc_dataset *evalset = lm ? &test : o->val ? &val : NULL;
    if (o->eval_every && !evalset) {
        fprintf(err,
                "error: --eval-every: model '%s' has no validation set; hold out training "
                "samples with --val N\n",
                api->name);
        goto done;
    }
    if (o->val) {
        if (o->val >= train.n) {
            fprintf(err, "error: --val %lld: expected fewer than the %lld training samples\n", (long long)o->val,
                    (long long)train.n);
            goto done;
        }
        val = train; /* a view of the last o->val samples; owned by train */
        train.n -= o->val;
        val.n = o->val;
        val.x = train.x + train.n * train.sample_numel;
        val.y = train.y + train.n;
    }
    if (mlcrt_augment_parse(o->augment, &aug, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg); /* only from api->augment: flags are checked */
        goto done;
    }
    for (int c = 0; c < 4; c++)
        aug.pad_value[c] = o->mean.n ? -o->mean.v[o->mean.n == 1 ? 0 : (c < o->mean.n ? c : 0)] /
                                           o->std.v[o->mean.n == 1 ? 0 : (c < o->mean.n ? c : 0)]
                                     : 0.0f;

    mlcrt_train_state st;
    memset(&st, 0, sizeof st);
    if (!(model = model_from(o, api, o->resume_path ? o->resume_path : o->load_path, o->resume_path ? &st : NULL, err)))
        goto done;
    if (o->resume_path && st.train_samples == 0) { /* no training set is empty: no run was recorded */
        fprintf(err,
                "error: %s: the checkpoint records no training run to resume (a library's %s_save writes the weights "
                "alone): --load %s starts a run from them\n",
                o->resume_path, api->name, o->resume_path);
        goto done;
    }
    if (o->resume_path && st.seed != o->seed) {
        /* the whole run keeps its seed: the data's streams and dropout's, which the model
         * holds from create, so it is created again with the checkpoint's */
        trainer_opts again = *o;
        again.seed = st.seed;
        api->destroy(model);
        if (!(model = model_from(&again, api, o->resume_path, &st, err))) goto done;
        if (!d || d->rank == 0)
            fprintf(
                err,
                "note: --resume: the run keeps the seed it started with, %llu (the checkpoint's), in place of %llu\n",
                (unsigned long long)st.seed, (unsigned long long)o->seed);
    }
    /* run_start: the model's step counter when the run began, 0 or after --load the loaded
     * one (--load carries the counter over: Adam's bias correction reads it); a checkpoint
     * records it. The run's own steps, gstep, count from it: the log's step column,
     * --eval-every, --save-every Ns and --max-steps with --epochs, across --resume
     * whatever its --batch and --accum. sstep: the run's position in the schedule, in
     * steps of this run's --batch x --accum. */
    int64_t run_start = o->load_path ? api->get_step(model) : 0, sstep = 0;
    double logged_s = 0; /* a resumed log's seconds at its last row kept (mlcrt_log_trim) */
    if (o->resume_path) {
        if (mlcrt_ckpt_check_resume(&st, api->get_step(model), train.n, o->epochs, o->resume_path, msg, sizeof msg) !=
            MLCRT_OK) {
            fprintf(err, "error: %s\n", msg);
            goto done;
        }
        seed = st.seed;
        /* the schedule's step is the run's position, in optimizer steps of this run's
         * --batch x --accum: the step counter's value unless the run began with --load,
         * which carries the counter over and starts the schedule at 0 */
        const int64_t per_step = (int64_t)o->batch * o->accum;
        sstep = st.epoch * ((train.n + per_step - 1) / per_step) + (st.epoch_pos + per_step - 1) / per_step;
        /* a version-3 checkpoint does not say where its run began: its position does, in
         * steps of this run's --batch x --accum (exact unless those changed) */
        run_start = st.has_run_start ? st.run_start : api->get_step(model) - sstep;
        if (run_start < 0) run_start = 0;
    } else {
        memset(&st, 0, sizeof st);
    }
    int64_t gstep = api->get_step(model) - run_start;
    st.has_run_start = 1;
    st.run_start = run_start;
    if (check_min_batch(o, api, train.n, &st, err)) goto done;
    /* An optimizer step takes `group` samples: --accum micro-batches of --batch, whose
     * gradients are averaged (weighted by their sizes) before the update. Epochs, the
     * schedule, --max-steps, step logs and --save-every Ns count optimizer steps. */
    int64_t group = (int64_t)o->batch * o->accum;
    int64_t spe = (train.n + group - 1) / group;
    /* --max-steps without --epochs is the run's length: the epochs it takes, and the
     * schedule laid out over its steps; with --epochs it only stops the run early */
    int epochs = o->epochs;
    int64_t total_steps = (int64_t)epochs * spe;
    if (o->max_steps && !o->epochs_flag && spe > 0) {
        int64_t need = o->max_steps / spe + (o->max_steps % spe != 0); /* rounded up, without overflow */
        epochs = need < INT_MAX ? (int)need : INT_MAX;
        total_steps = o->max_steps;
    }
    /* a checkpoint inside an epoch this run does not reach: training nothing and
     * exiting 0 would read as a finished run, and its log would be cut back for none */
    if (st.epoch >= epochs && st.epoch_pos > 0) {
        fprintf(err,
                "error: %s: the checkpoint is %lld samples into epoch %lld, beyond this run's %d epoch%s; resume with "
                "--epochs %lld or more to finish it\n",
                o->resume_path, (long long)st.epoch_pos, (long long)st.epoch + 1, epochs, epochs == 1 ? "" : "s",
                (long long)st.epoch + 1);
        goto done;
    }
    st.seed = seed;
    st.train_samples = train.n;
    /* what the model sees, for eval and predict (and a --resume) to see the same */
    st.has_data_settings = 1;
    st.n_norm = o->mean.n;
    memcpy(st.norm_mean, o->mean.v, sizeof st.norm_mean);
    memcpy(st.norm_std, o->std.v, sizeof st.norm_std);
    if (o->save_path && (!d || d->rank == 0) && mlcrt_ckpt_check_writable(o->save_path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        goto done;
    }
    if (o->log_path && (!d || d->rank == 0)) {
        struct stat ls;
        /* a resumed run appends to its log (an empty one gets the header first) */
        int exists = stat(o->log_path, &ls) == 0, append = o->resume_path && exists;
        /* rows the killed run logged after its checkpoint are trained (and logged) again */
        if (append && mlcrt_log_trim(o->log_path, log_header(&lg), (long long)gstep, st.epoch_pos > 0, &logged_s, msg,
                                     sizeof msg)) {
            fprintf(err, "error: %s\n", msg);
            goto done;
        }
        if (!append && exists && check_log_replaceable(o->log_path, err)) goto done;
        lg.f = open_log(o->log_path, append, err);
        if (!lg.f) {
            fprintf(err, "error: cannot write log '%s': %s\n", o->log_path, strerror(errno));
            goto done;
        }
        int empty = !append || (S_ISREG(ls.st_mode) && ls.st_size == 0);
        if (empty && log_header(&lg)) fputs(log_header(&lg), lg.f);
    }

    for (int b = 0; b < 2; b++) {
        bx[b] = malloc((size_t)o->batch * (size_t)train.sample_numel * sizeof(float));
        by[b] = malloc((size_t)o->batch * (size_t)mlcrt_dataset_label_numel(&train) * sizeof(int32_t));
    }
    bout = malloc((size_t)o->batch * (size_t)(cls ? k : 1) * sizeof(float));
    outs = calloc((size_t)api->n_outputs, sizeof *outs);
    perm = malloc((size_t)(train.n > 0 ? train.n : 1) * sizeof(int64_t));
    if (!bx[0] || !bx[1] || !by[0] || !by[1] || !bout || !outs || !perm) {
        fprintf(err, "error: out of memory for batches of %d\n", o->batch);
        goto done;
    }
    if (!o->no_prefetch) loader = mlcrt_loader_start(); /* NULL: gather inline, same results */

    /* the micro-batches' gradients are averaged outside the model, so it must expose them */
    if ((o->accum > 1 || d) && !(api->forward_backward && api->update && api->read_grads && api->write_grads)) {
        fprintf(err, "error: %s: model '%s' does not expose its gradients (forward_backward, update)\n",
                d ? "data-parallel training" : "--accum", api->name);
        goto done;
    }
    if (o->accum > 1 || d) {
        gacc = malloc((size_t)(api->grad_numel > 0 ? api->grad_numel : 1) * sizeof(float));
        gmicro = malloc((size_t)(api->grad_numel > 0 ? api->grad_numel : 1) * sizeof(float));
        if (!gacc || !gmicro) {
            fprintf(err, "error: out of memory for the gradients of --accum %d\n", o->accum);
            goto done;
        }
    }
    mlcrt_schedule sch = {(mlcrt_schedule_kind)o->schedule,
                          o->lr,
                          total_steps,
                          steps_of((double)o->warmup, spe),
                          steps_of((double)(o->step_size > 0 ? o->step_size : (epochs / 3 > 0 ? epochs / 3 : 1)), spe),
                          o->gamma};
    int bar = !o->quiet && (o->progress == PROGRESS_ALWAYS || (o->progress == PROGRESS_AUTO && isatty(fileno(out))));
    if (cls) outs[api->cls_output] = bout;
    /* test_acc: a classifier's test accuracy, any other model's test loss (-1: none yet) */
    double run_t0 = mlcrt_now(), test_acc = -1.0;
    const double log_t0 = run_t0 - logged_s; /* a resumed log's seconds go on from its last row */
    int dirty = 0, stopped = 0;
    /* the rate of the last step taken: what an epoch row logs when a resumed run has no
     * step left in that epoch (its checkpoint was saved at the epoch's last step) */
    float lr = sstep > 0 ? mlcrt_schedule_lr(&sch, sstep - 1) : o->lr;
    /* --max-steps without --epochs is the schedule's length, counted in it; with --epochs,
     * steps taken */
    const int64_t *steps_done = o->epochs_flag ? &gstep : &sstep;
    if (overlap) api->set_grad_ready(model, mlcrt_overlap_ready, &ov);
    if (d && mlcrt_dist_agree_start(d, 1, o, &train, &test, &st, api, model, err)) {
        agreed_failure = 1;
        goto done;
    }
    started = 1;
    for (int64_t e = st.epoch; e < epochs; e++) {
        if (o->max_steps && *steps_done >= o->max_steps) {
            stopped = 1;
            break;
        }
        int epoch = (int)e + 1;
        mlc_permutation(perm, train.n, seed, (uint64_t)e);
        double t0 = mlcrt_now(), last_bar = -1;
        int64_t pos = st.epoch_pos, seen_here = 0;
        int cur = 0, mine = 0;
        if (pos < train.n) {
            int nb = (int)(train.n - pos < o->batch ? train.n - pos : o->batch);
            int64_t at = my_part(d, pos, nb, &mine);
            mlcrt_batch_gather_aug(&train, perm, at, mine, bx[0], by[0], &aug, seed, (uint64_t)e);
        }
        int64_t g0 = pos, gn = 0, gcorrect = 0; /* the optimizer step's samples so far */
        double gloss = 0;
        while (pos < train.n) {
            if (pos == g0 + gn) { /* a new optimizer step */
                if (o->max_steps && *steps_done >= o->max_steps) {
                    stopped = 1;
                    break;
                }
                g0 = pos;
                gn = train.n - pos < group ? train.n - pos : group;
                gloss = 0;
                gcorrect = 0;
                lr = mlcrt_schedule_lr(&sch, sstep);
            }
            int nb = (int)(train.n - pos < o->batch ? train.n - pos : o->batch);
            int64_t next = pos + nb;
            int nnext = next < train.n ? (int)(train.n - next < o->batch ? train.n - next : o->batch) : 0;
            int mnext = 0; /* this rank's share of the next micro-batch (dist.h) */
            int64_t at_next = nnext ? my_part(d, next, nnext, &mnext) : 0;
            if (loader && mnext)
                mlcrt_loader_post(loader, &train, perm, at_next, mnext, bx[1 - cur], by[1 - cur], &aug, seed,
                                  (uint64_t)e);
            float loss = 0;
            mlcrt_batch_inputs(&bind, in, bx[cur], by[cur]);
            if (d && api->set_sample_offset) { /* dropout draws as one process would */
                int cnt;
                api->set_sample_offset(model, my_part(d, pos, nb, &cnt) - pos);
            }
            /* with --sync-bn a rank without samples runs one (weight 0) for the collectives */
            const int run = mine || sync_bn, nrun = mine ? mine : 1;
            if (sync_bn) {
                if (!mine) mlcrt_batch_gather_aug(&train, perm, pos, 1, bx[cur], by[cur], &aug, seed, (uint64_t)e);
                bsync.weight = (double)mine / (double)nb;
                api->set_batch_sync(model, mlcrt_batch_sync_ready, &bsync, nb);
            }
            if (o->accum == 1 && !d) {
                loss = api->train_step(model, in, nb, lr, cls ? outs : NULL);
            } else if (overlap) {          /* buckets start their all-reduce as the backward ends them */
                if (!run && dev_overlap) { /* zeroed, as mlcrt_overlap_begin does a host slab */
                    memset(gacc, 0, (size_t)api->grad_numel * sizeof(float));
                    api->write_grads(model, gacc);
                }
                mlcrt_overlap_begin(&ov, d, api->grads(model), api->grad_numel, (float)mine / (float)gn, !run,
                                    dev_overlap ? api->device_stream(model) : NULL);
                if (run) loss = api->forward_backward(model, in, nrun, cls ? outs : NULL);
                mlcrt_overlap_end(&ov);
            } else if (dev_reduce) { /* weighted and summed at the step's end */
                if (run) loss = api->forward_backward(model, in, nrun, cls ? outs : NULL);
                else {
                    memset(gacc, 0, (size_t)api->grad_numel * sizeof(float));
                    api->write_grads(model, gacc);
                }
            } else if (run) {
                /* the mean over the step's samples: each micro-batch's (or rank's part's)
                 * mean gradient weighted by its share of them, summed in micro-batch
                 * order; the ranks' sums are then summed (dist.h) */
                loss = api->forward_backward(model, in, nrun, cls ? outs : NULL);
                api->read_grads(model, pos == g0 ? gacc : gmicro);
                float w = (float)mine / (float)gn;
                for (int64_t i = 0; i < api->grad_numel; i++)
                    gacc[i] = pos == g0 ? w * gacc[i] : gacc[i] + w * gmicro[i];
            } else if (pos == g0) { /* a rank without samples in this step adds nothing */
                memset(gacc, 0, (size_t)api->grad_numel * sizeof(float));
            }
            int64_t bc = 0;
            for (int i = 0; cls && i < mine; i++) bc += mlcrt_argmax_row(bout + (int64_t)i * k, k) == by[cur][i];
            /* the micro-batch's loss sum and correct count, over all ranks */
            double lsum = (double)loss * mine;
            if (d) {
                double v[2] = {lsum, (double)bc};
                d->sum_f64(d, v, 2, "the loss all-reduce");
                lsum = v[0];
                bc = (int64_t)v[1];
            }
            if (!isfinite(lsum)) {
                /* every rank started the same bucket sums: each finishes them before its
                 * slab is freed, or a peer still reading that slab (Open MPI's
                 * single-copy transfers) crashes in MPI_Finalize */
                if (overlap && dev_overlap) d->finish_device(d, "the gradient all-reduce");
                else if (overlap) d->finish(d, "the gradient all-reduce");
                if (loader) mlcrt_loader_wait(loader);
                if (bar) fprintf(out, "\r\033[K");
                if (!d || d->rank == 0)
                    fprintf(err, "error: loss became %s at epoch %d step %lld%s\n", isnan(lsum) ? "NaN" : "Inf", epoch,
                            (long long)((g0 + group - 1) / group + 1),
                            !o->check_finite && api->set_check_finite
                                ? " (--check-finite names the op and .mdl line that made the first one)"
                                : "");
                agreed_failure = 1;
                goto done;
            }
            st.loss_sum += lsum;
            st.correct += bc;
            seen_here += nb;
            gloss += lsum;
            gcorrect += bc;
            pos = next;
            int step_done = pos == g0 + gn;
            if (step_done) {
                if (overlap) {
                    if (dev_overlap) /* the update is queued after NCCL's stream is done */
                        d->finish_device(d, "the gradient all-reduce");
                    else d->finish(d, "the gradient all-reduce");
                    api->update(model, lr);
                } else if (dev_reduce) {
                    d->sum_device_f32(d, api->grads(model), api->grad_numel, (float)mine / (float)gn,
                                      "the gradient all-reduce");
                    api->update(model, lr);
                } else if (o->accum > 1 || d) {
                    if (d) d->sum_f32(d, gacc, api->grad_numel, "the gradient all-reduce");
                    api->write_grads(model, gacc);
                    api->update(model, lr);
                }
                gstep++;
                sstep++;
                dirty = 1;
                if (lg.f && gstep % o->log_every == 0) {
                    log_row(&lg, "step", epoch, gstep, gloss / (double)gn, lr, (double)gcorrect / (double)gn, -1, -1,
                            mlcrt_now() - log_t0);
                    /* each row reaches the file as it is logged: a run followed with tail -f
                     * shows it, and a killed run keeps every row it logged, whole */
                    if (mlcrt_check_written(lg.f, "log", o->log_path, err)) goto done;
                }
                if (o->eval_every && gstep % o->eval_every == 0 &&
                    eval_every_line(o, d, api, model, evalset, &lg, epoch, gstep, lr, mlcrt_now() - log_t0, bar, out,
                                    err))
                    goto done;
            }
            if (nnext) {
                if (loader) mlcrt_loader_wait(loader);
                else if (mnext)
                    mlcrt_batch_gather_aug(&train, perm, at_next, mnext, bx[1 - cur], by[1 - cur], &aug, seed,
                                           (uint64_t)e);
                cur = 1 - cur;
                mine = mnext;
            }
            st.epoch_pos = pos;
            if (bar) {
                double now = mlcrt_now();
                if (last_bar < 0 || now - last_bar >= 0.1 || pos == train.n) {
                    last_bar = now;
                    progress_bar(out, epoch, epochs, pos, train.n, now > t0 ? (double)seen_here / (now - t0) : 0);
                }
            }
            if (step_done && o->save_path && o->save_every_steps && gstep % o->save_every == 0) {
                if (save_ckpt(o, d, api, model, &st, err)) goto done;
                dirty = 0;
            }
        }
        double dt = mlcrt_now() - t0;
        double val_acc = -1;
        if (d && mlcrt_dist_sync_state(d, api, model, NULL, err)) goto done;
        if (o->val) {
            val_acc = mlcrt_dist_evaluate(d, api, model, &val, o->batch);
            if (val_acc < 0) {
                fprintf(err, "error: out of memory evaluating the validation set\n");
                goto done;
            }
        }
        test_acc = mlcrt_dist_evaluate(d, api, model, &test, o->batch);
        if (test_acc < 0) {
            fprintf(err, "error: out of memory evaluating the test set\n");
            goto done;
        }
        if (d) { /* the ranks must still hold the same weights (the same reduced bits) */
            char when[64];
            snprintf(when, sizeof when, "after epoch %d", epoch);
            if (mlcrt_dist_agree(d, 1, api, model, when, err)) {
                agreed_failure = 1;
                goto done;
            }
        }
        double eloss = pos ? st.loss_sum / (double)pos : 0.0;
        double eacc = pos ? (double)st.correct / (double)pos : 0.0;
        if (bar) fprintf(out, "\r\033[K");
        if (!o->quiet && cls) {
            fprintf(out, "epoch %d/%d  loss %.4f  train_acc %.4f", epoch, epochs, eloss, eacc);
            if (o->val) fprintf(out, "  val_acc %.4f", val_acc);
            fprintf(out, "  test_acc %.4f  time %.1fs  %.0f samples/s\n", test_acc, dt,
                    dt > 0 ? (double)seen_here / dt : 0.0);
            fflush(out);
        } else if (!o->quiet && lm) {
            fprintf(out,
                    "epoch %d/%d  loss %.6f  bpc %.4f  val_loss %.6f  val_bpc %.4f  time "
                    "%.1fs  %.0f tokens/s\n",
                    epoch, epochs, eloss, mlcrt_bits(eloss), test_acc, mlcrt_bits(test_acc), dt,
                    dt > 0 ? (double)seen_here * (double)train.sample_numel / dt : 0.0);
            fflush(out);
        } else if (!o->quiet) {
            fprintf(out, "epoch %d/%d  loss %.6f", epoch, epochs, eloss);
            if (o->val) fprintf(out, "  val_loss %.6f", val_acc);
            fprintf(out, "  test_loss %.6f  time %.1fs  %.0f samples/s\n", test_acc, dt,
                    dt > 0 ? (double)seen_here / dt : 0.0);
            fflush(out);
        }
        log_row(&lg, "epoch", epoch, gstep, eloss, lr, eacc, val_acc, test_acc, dt);
        if (lg.f && mlcrt_check_written(lg.f, "log", o->log_path, err))
            goto done; /* a full disk: stop rather than train on without a record */
        if (stopped) break;
        st.epoch = e + 1;
        st.epoch_pos = 0;
        st.loss_sum = 0;
        st.correct = 0;
        /* a --save-every checkpoint of the epoch's last step still holds the epoch open
         * (its row then comes again on resume): the state has moved on since */
        dirty = 1;
        if (o->save_path && ((!o->save_every_steps && (e + 1) % o->save_every == 0) || e + 1 == epochs)) {
            if (save_ckpt(o, d, api, model, &st, err)) goto done;
            dirty = 0;
        }
    }
    /* --max-steps cut a run of --epochs short: say so, or the last epoch line reads as if
     * the run had ended where it was asked to */
    if (stopped && o->epochs_flag && !o->quiet)
        fprintf(out, "stopped after %lld optimizer step%s (--max-steps %lld) of a %d-epoch run\n", (long long)gstep,
                gstep == 1 ? "" : "s", (long long)o->max_steps, epochs);
    if (o->save_path && dirty && save_ckpt(o, d, api, model, &st, err)) goto done;
    if (test_acc < 0) { /* nothing left to train (a finished run resumed) */
        if (d && mlcrt_dist_sync_state(d, api, model, NULL, err)) goto done;
        test_acc = mlcrt_dist_evaluate(d, api, model, &test, o->batch);
        if (test_acc < 0) {
            fprintf(err, "error: out of memory evaluating the test set\n");
            goto done;
        }
    }
    if (d && !o->quiet) {
        double run_s = mlcrt_now() - run_t0;
        fprintf(
            out,
            "data-parallel: %d rank%s, %.2f s of %.2f s in collectives (%.0f%%), %lld gradient bytes all-reduced per "
            "step\n",
            d->size, d->size == 1 ? "" : "s", d->comm_s, run_s, run_s > 0 ? 100 * d->comm_s / run_s : 0.0,
            (long long)api->grad_numel * 4);
    }
    result_line(out, cls, lm, test_acc);
    status = 0;
done:
    mlcrt_loader_stop(loader);
    if (lg.f && status == 0 && mlcrt_check_written(lg.f, "log", o->log_path, err)) status = 1;
    if (d && status != 0 && !agreed_failure) {
        if (!started) /* tell the others, waiting to start, that this rank cannot */
            mlcrt_dist_agree(d, 0, api, model, "at the start", err);
        else /* a fault only this rank saw: the others would wait for it forever */ d->abort(d, status);
    }
    if (lg.f && fclose(lg.f) != 0 && status == 0) {
        fprintf(err, "error: cannot write log '%s': %s\n", o->log_path, strerror(errno));
        status = 1;
    }
    if (model) api->destroy(model);
    for (int b = 0; b < 2; b++) {
        free(bx[b]);
        free(by[b]);
    }
    free(bout);
    free(outs);
    free(perm);
    free(gacc);
    free(gmicro);
    mlcrt_dataset_free(&train);
    mlcrt_dataset_free(&test);
    return status;
}

int mlcrt_main(int argc, char **argv, const mlc_model_api *api) {
    return mlcrt_main_io(argc, argv, api, stdout, stderr);
}

static int run_mode(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err) {
    return mlcrt_main_dist(argc, argv, api, NULL, out, err);
}

/* A file-size limit (ulimit -f) kills a process that writes past it with SIGXFSZ, without
 * a word (status 153). Ignored, the write fails with EFBIG instead, and the save or log
 * that made it reports it in its one-line error. A handler the program set stays. */
static void ignore_file_size_signal(void) {
    struct sigaction now;
    if (sigaction(SIGXFSZ, NULL, &now) == 0 && now.sa_handler == SIG_DFL) signal(SIGXFSZ, SIG_IGN);
}

int mlcrt_main_dist(int argc, char **argv, const mlc_model_api *api, mlcrt_dist *d, FILE *out, FILE *err) {
    ignore_file_size_signal();
    trainer_opts o;
    const char *prog = argc > 0 && argv[0] ? argv[0] : "mlc-train";
    /* mpirun: a rank's bad command line is said at the start-up agreement, once per
     * different message (dist.h); without a place to hold it rank 0 alone says it */
    FILE *cli_err = d && d->cli_err ? d->cli_err : d && d->rank != 0 ? out : err;
    if (mlcrt_check_api(api, cli_err) != 0) return 2;
    if (mlcrt_parse_flags(argc, argv, api, &o, prog, cli_err) != 0) return 2;
    if (d) d->timeout_s = o.comm_timeout;
    /* mpirun: every rank in the same mode, with the same settings (dist.h) */
    if (d && (o.help || o.version) && mlcrt_dist_agree_start(d, 1, &o, NULL, NULL, NULL, api, NULL, err)) return 1;
    if (o.help) {
        mlcrt_usage(out, prog, api);
        return 0;
    }
    if (o.version) {
        mlcrt_print_version(out, api);
        return 0;
    }
    if (mlcrt_check_token_flags(&o, api, err)) return 1;
    if (o.threads > 0 && api->set_threads) api->set_threads(o.threads);
    const char *ckpt = o.mode != MODE_train ? o.ckpt_arg : o.resume_path ? o.resume_path : o.load_path;
    if (o.ema && o.mode != MODE_eval && o.mode != MODE_predict) {
        fprintf(cli_err, "error: --ema applies to eval and predict (training updates the parameters themselves)\n");
        return 2;
    }
    if (ckpt && adopt_ckpt_norm(&o, api, ckpt, err)) return 1;
    if (o.mode == MODE_eval) return run_eval(&o, d, api, out, err);
    if (o.mode == MODE_predict) return run_predict(&o, d, api, out, err);
    if (o.mode == MODE_sample && d && mlcrt_dist_agree_start(d, 1, &o, NULL, NULL, NULL, api, NULL, err)) return 1;
    if (o.mode == MODE_sample) return mlcrt_run_sample(&o, api, out, err);
    return run_train(&o, d, api, out, err);
}

int mlcrt_main_io(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err) {
    int status = run_mode(argc, argv, api, out, err);
    /* the result lines (accuracy, predictions) are the output: losing them is an error */
    if (status == 0 && mlcrt_check_written(out, "output to", NULL, err)) status = 1;
    return status;
}
