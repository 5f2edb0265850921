/* trainer.c - the standalone trainer every generated model links (docs/trainer.md).
 *
 * Modes: train (default): data loading (MNIST-layout IDX, CIFAR-10/100), normalisation, the epoch loop (seeded shuffle, optional augmentation, train_step on
 * every batch including the last partial one, batches prepared by a loader thread),
 * validation and test evaluation, lr schedules, checkpoints with resume, progress bar,
 * CSV / JSON-lines logs, and the result line `test accuracy: 0.XXXX`.
 * eval CHECKPOINT: accuracy, per-class accuracy and confusion matrix on the test split.
 * predict CHECKPOINT FILE: top classes with softmax probabilities per IDX image.
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
#include "idx.h"
#include "loader.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "schedule.h"
#include "timing.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int argmax_row(const float *row, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (row[j] > row[best])
            best = j;
    return (int)best;
}

double mlcrt_evaluate(const mlc_model_api *api, void *model, const mlc_dataset *ds,
                      int batch)
{
    if (batch < 1)
        return -1.0;
    if (ds->n == 0)
        return 0.0;
    int64_t k = api->output_numel;
    float *out = malloc((size_t)batch * (size_t)k * sizeof(float));
    if (!out)
        return -1.0;
    int64_t correct = 0;
    for (int64_t start = 0; start < ds->n; start += batch) {
        int nb = (int)(ds->n - start < batch ? ds->n - start : batch);
        api->forward(model, ds->x + start * ds->sample_numel, nb, out);
        for (int i = 0; i < nb; i++)
            correct += argmax_row(out + (int64_t)i * k, k) == ds->y[start + i];
    }
    free(out);
    return (double)correct / (double)ds->n;
}

/* ---- shared setup ---- */

/* Normalises ds with the options' mean/std (no-op without them). */
static int normalize(const trainer_opts *o, mlc_dataset *ds, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    if (!o->mean.n)
        return 0;
    if (mlcrt_dataset_normalize(ds, o->mean.n, o->mean.v, o->std.v, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

static int load_split(const trainer_opts *o, const mlc_model_api *api, mlc_dataset *ds,
                      int test, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    int classes = api->output_numel <= INT_MAX ? (int)api->output_numel : 0;
    if (mlcrt_dataset_load_auto(ds, o->data_dir, test, api->input_numel, classes,
                                test ? o->test_limit : o->train_limit, msg,
                                sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return normalize(o, ds, err);
}

/* Creates the model and loads path into it (state may be NULL). NULL on failure. */
static void *model_from(const trainer_opts *o, const mlc_model_api *api, const char *path,
                        mlcrt_train_state *state, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    void *model = api->create(o->seed, o->batch);
    if (!model) {
        fprintf(err, "error: out of memory creating model '%s' for batch %d\n", api->name,
                o->batch);
        return NULL;
    }
    if (o->check_finite)
        api->set_check_finite(model, 1);
    if (path && mlcrt_ckpt_load_state(api, model, state, path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        api->destroy(model);
        return NULL;
    }
    return model;
}

/* ---- eval ---- */

static int run_eval(const trainer_opts *o, const mlc_model_api *api, FILE *out, FILE *err)
{
    mlc_dataset test;
    memset(&test, 0, sizeof test);
    if (load_split(o, api, &test, 1, err)) {
        mlcrt_dataset_free(&test);
        return 1;
    }
    void *model = model_from(o, api, o->ckpt_arg, NULL, err);
    int64_t k = api->output_numel;
    float *bout = malloc((size_t)o->batch * (size_t)k * sizeof(float));
    int64_t *conf = calloc((size_t)(k * k), sizeof(int64_t));
    int status = 1;
    if (!model || !bout || !conf) {
        if (model)
            fprintf(err, "error: out of memory for a %lld-class confusion matrix\n",
                    (long long)k);
        goto done;
    }
    int64_t correct = 0;
    for (int64_t s = 0; s < test.n; s += o->batch) {
        int nb = (int)(test.n - s < o->batch ? test.n - s : o->batch);
        api->forward(model, test.x + s * test.sample_numel, nb, bout);
        for (int i = 0; i < nb; i++) {
            int p = argmax_row(bout + (int64_t)i * k, k);
            conf[test.y[s + i] * k + p]++;
            correct += p == test.y[s + i];
        }
    }
    fprintf(out, "test accuracy: %.4f\n", test.n ? (double)correct / (double)test.n : 0.0);
    int64_t maxc = 1;
    for (int64_t i = 0; i < k * k; i++)
        maxc = conf[i] > maxc ? conf[i] : maxc;
    int w = snprintf(NULL, 0, "%lld", (long long)maxc), wl = snprintf(NULL, 0, "%lld", (long long)(k - 1));
    if (wl > w)
        w = wl;
    fprintf(out, "per-class accuracy:\n");
    for (int64_t c = 0; c < k; c++) {
        int64_t tot = 0;
        for (int64_t j = 0; j < k; j++)
            tot += conf[c * k + j];
        fprintf(out, "  class %*lld  %.4f  (%lld/%lld)\n", wl, (long long)c,
                tot ? (double)conf[c * k + c] / (double)tot : 0.0, (long long)conf[c * k + c],
                (long long)tot);
    }
    fprintf(out, "confusion matrix (rows: true class, columns: predicted class):\n");
    fprintf(out, "  %*s", wl, "");
    for (int64_t j = 0; j < k; j++)
        fprintf(out, "  %*lld", w, (long long)j);
    fprintf(out, "\n");
    for (int64_t c = 0; c < k; c++) {
        fprintf(out, "  %*lld", wl, (long long)c);
        for (int64_t j = 0; j < k; j++)
            fprintf(out, "  %*lld", w, (long long)conf[c * k + j]);
        fprintf(out, "\n");
    }
    fflush(out);
    status = 0;
done:
    if (model)
        api->destroy(model);
    free(bout);
    free(conf);
    mlcrt_dataset_free(&test);
    return status;
}

/* ---- predict ---- */

static int run_predict(const trainer_opts *o, const mlc_model_api *api, FILE *out, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset ds;
    memset(&ds, 0, sizeof ds);
    int64_t rows = 0, cols = 0;
    if (mlcrt_idx_load_images(o->file_arg, 0, api->input_numel, &ds.x, &ds.n, NULL, &rows,
                              &cols, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return 1;
    }
    ds.sample_rank = 2;
    ds.sample_dims[0] = rows;
    ds.sample_dims[1] = cols;
    ds.sample_numel = rows * cols;
    int status = 1;
    void *model = NULL;
    int64_t k = api->output_numel;
    int top = o->top < k ? o->top : (int)k;
    float *bout = malloc((size_t)o->batch * (size_t)k * sizeof(float));
    double *prob = malloc((size_t)k * sizeof(double));
    if (normalize(o, &ds, err))
        goto done;
    if (!(model = model_from(o, api, o->ckpt_arg, NULL, err)))
        goto done;
    if (!bout || !prob) {
        fprintf(err, "error: out of memory\n");
        goto done;
    }
    for (int64_t s = 0; s < ds.n; s += o->batch) {
        int nb = (int)(ds.n - s < o->batch ? ds.n - s : o->batch);
        api->forward(model, ds.x + s * ds.sample_numel, nb, bout);
        for (int i = 0; i < nb; i++) {
            const float *row = bout + (int64_t)i * k;
            double mx = row[argmax_row(row, k)], sum = 0;
            for (int64_t j = 0; j < k; j++)
                sum += prob[j] = exp((double)row[j] - mx);
            fprintf(out, "%lld:", (long long)(s + i));
            for (int t = 0; t < top; t++) {
                int64_t best = -1;
                for (int64_t j = 0; j < k; j++)
                    if (prob[j] >= 0 && (best < 0 || prob[j] > prob[best]))
                        best = j;
                fprintf(out, "  %lld %.4f", (long long)best, prob[best] / sum);
                prob[best] = -1; /* taken */
            }
            fprintf(out, "\n");
        }
    }
    fflush(out);
    status = 0;
done:
    if (model)
        api->destroy(model);
    free(bout);
    free(prob);
    mlcrt_dataset_free(&ds);
    return status;
}

/* ---- train ---- */

typedef struct logger {
    FILE *f;
    int jsonl;
} logger;

static void log_row(logger *lg, const char *kind, int epoch, int64_t step, double loss,
                    double lr, double train_acc, double val_acc, double test_acc,
                    double seconds)
{
    if (!lg->f)
        return;
    int is_epoch = kind[0] == 'e';
    if (lg->jsonl) {
        fprintf(lg->f,
                "{\"kind\":\"%s\",\"epoch\":%d,\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,"
                "\"train_acc\":%.4f",
                kind, epoch, (long long)step, loss, lr, train_acc);
        if (is_epoch && val_acc >= 0)
            fprintf(lg->f, ",\"val_acc\":%.4f", val_acc);
        if (is_epoch)
            fprintf(lg->f, ",\"test_acc\":%.4f", test_acc);
        fprintf(lg->f, ",\"seconds\":%.3f}\n", seconds);
    } else {
        fprintf(lg->f, "%s,%d,%lld,%.6f,%.6g,%.4f,", kind, epoch, (long long)step, loss, lr,
                train_acc);
        if (is_epoch && val_acc >= 0)
            fprintf(lg->f, "%.4f", val_acc);
        fprintf(lg->f, ",");
        if (is_epoch)
            fprintf(lg->f, "%.4f", test_acc);
        fprintf(lg->f, ",%.3f\n", seconds);
    }
}

static void format_eta(char *buf, size_t cap, double s)
{
    long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

static void progress_bar(FILE *out, int epoch, int epochs, int64_t done, int64_t n,
                         double rate)
{
    char bar[31], eta[32];
    int fill = n > 0 ? (int)(30 * done / n) : 30;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[30] = '\0';
    format_eta(eta, sizeof eta, rate > 0 ? (double)(n - done) / rate : 0);
    fprintf(out, "\r\033[Kepoch %d/%d [%s] %lld/%lld  %.0f samples/s  ETA %s", epoch, epochs,
            bar, (long long)done, (long long)n, rate, eta);
    fflush(out);
}

static int save_ckpt(const trainer_opts *o, const mlc_model_api *api, void *model,
                     const mlcrt_train_state *st, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    if (mlcrt_ckpt_save_state(api, model, st, o->save_path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

static int run_train(const trainer_opts *o, const mlc_model_api *api, FILE *out, FILE *err)
{
    char msg[MLCRT_MSG_SIZE];
    mlc_dataset train, test, val;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    memset(&val, 0, sizeof val);
    int status = 1;
    void *model = NULL;
    float *bx[2] = {NULL, NULL}, *bout = NULL;
    float *gacc = NULL, *gmicro = NULL; /* --accum: the step's gradient, a micro-batch's */
    int32_t *by[2] = {NULL, NULL};
    int64_t *perm = NULL;
    mlcrt_loader *loader = NULL;
    logger lg = {NULL, o->log_jsonl};
    mlcrt_augment aug;
    uint64_t seed = o->seed;

    if (load_split(o, api, &train, 0, err) || load_split(o, api, &test, 1, err))
        goto done;
    if (o->val) {
        if (o->val >= train.n) {
            fprintf(err, "error: --val %lld: expected fewer than the %lld training samples\n",
                    (long long)o->val, (long long)train.n);
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
        aug.pad_value[c] =
            o->mean.n ? -o->mean.v[o->mean.n == 1 ? 0 : (c < o->mean.n ? c : 0)] /
                            o->std.v[o->mean.n == 1 ? 0 : (c < o->mean.n ? c : 0)]
                      : 0.0f;

    mlcrt_train_state st;
    memset(&st, 0, sizeof st);
    if (!(model = model_from(o, api, o->resume_path ? o->resume_path : o->load_path,
                             o->resume_path ? &st : NULL, err)))
        goto done;
    int64_t gstep = 0;
    if (o->resume_path) {
        if (st.train_samples != train.n) {
            fprintf(err,
                    "error: %s: train_n: expected %lld training samples per epoch (this run's "
                    "--data, --train-limit and --val), found %lld\n",
                    o->resume_path, (long long)train.n, (long long)st.train_samples);
            goto done;
        }
        seed = st.seed;
        gstep = api->get_step(model);
    } else {
        memset(&st, 0, sizeof st);
    }
    st.seed = seed;
    st.train_samples = train.n;
    if (o->save_path && mlcrt_ckpt_check_writable(o->save_path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        goto done;
    }
    if (o->log_path) {
        int append = o->resume_path && access(o->log_path, F_OK) == 0;
        lg.f = fopen(o->log_path, append ? "a" : "w");
        if (!lg.f) {
            fprintf(err, "error: cannot write log '%s': %s\n", o->log_path, strerror(errno));
            goto done;
        }
        if (!append && !lg.jsonl)
            fprintf(lg.f, "kind,epoch,step,loss,lr,train_acc,val_acc,test_acc,seconds\n");
    }

    for (int b = 0; b < 2; b++) {
        bx[b] = malloc((size_t)o->batch * (size_t)api->input_numel * sizeof(float));
        by[b] = malloc((size_t)o->batch * sizeof(int32_t));
    }
    bout = malloc((size_t)o->batch * (size_t)api->output_numel * sizeof(float));
    perm = malloc((size_t)(train.n > 0 ? train.n : 1) * sizeof(int64_t));
    if (!bx[0] || !bx[1] || !by[0] || !by[1] || !bout || !perm) {
        fprintf(err, "error: out of memory for batches of %d\n", o->batch);
        goto done;
    }
    if (!o->no_prefetch)
        loader = mlcrt_loader_start(); /* NULL: gather inline, same results */

    /* An optimizer step takes `group` samples: --accum micro-batches of --batch, whose
     * gradients are averaged (weighted by their sizes) before the update. Epochs, the
     * schedule, --max-steps, step logs and --save-every Ns count optimizer steps. */
    int64_t group = (int64_t)o->batch * o->accum;
    if (o->accum > 1) {
        gacc = malloc((size_t)(api->grad_numel > 0 ? api->grad_numel : 1) * sizeof(float));
        gmicro = malloc((size_t)(api->grad_numel > 0 ? api->grad_numel : 1) * sizeof(float));
        if (!gacc || !gmicro) {
            fprintf(err, "error: out of memory for the gradients of --accum %d\n", o->accum);
            goto done;
        }
    }
    int64_t spe = (train.n + group - 1) / group;
    mlcrt_schedule sch = {(mlcrt_schedule_kind)o->schedule, o->lr, (int64_t)o->epochs * spe,
                          (int64_t)llround((double)o->warmup * (double)spe),
                          (int64_t)(o->step_size > 0 ? o->step_size
                                                     : (o->epochs / 3 > 0 ? o->epochs / 3 : 1)) *
                              spe,
                          o->gamma};
    int bar = !o->quiet && (o->progress == PROGRESS_ALWAYS ||
                            (o->progress == PROGRESS_AUTO && isatty(fileno(out))));
    double run_t0 = mlcrt_now(), test_acc = -1.0;
    int64_t k = api->output_numel;
    int dirty = 0, stopped = 0;
    float lr = o->lr;
    for (int64_t e = st.epoch; e < o->epochs; e++) {
        if (o->max_steps && gstep >= o->max_steps) {
            stopped = 1;
            break;
        }
        int epoch = (int)e + 1;
        mlc_permutation(perm, train.n, seed, (uint64_t)e);
        double t0 = mlcrt_now(), last_bar = -1;
        int64_t pos = st.epoch_pos, seen_here = 0;
        int cur = 0;
        if (pos < train.n) {
            int nb = (int)(train.n - pos < o->batch ? train.n - pos : o->batch);
            mlcrt_batch_gather_aug(&train, perm, pos, nb, bx[0], by[0], &aug, seed, (uint64_t)e);
        }
        int64_t g0 = pos, gn = 0, gcorrect = 0; /* the optimizer step's samples so far */
        double gloss = 0;
        while (pos < train.n) {
            if (pos == g0 + gn) { /* a new optimizer step */
                if (o->max_steps && gstep >= o->max_steps) {
                    stopped = 1;
                    break;
                }
                g0 = pos;
                gn = train.n - pos < group ? train.n - pos : group;
                gloss = 0;
                gcorrect = 0;
                lr = mlcrt_schedule_lr(&sch, gstep);
            }
            int nb = (int)(train.n - pos < o->batch ? train.n - pos : o->batch);
            int64_t next = pos + nb;
            int nnext = next < train.n ? (int)(train.n - next < o->batch ? train.n - next : o->batch) : 0;
            if (loader && nnext)
                mlcrt_loader_post(loader, &train, perm, next, nnext, bx[1 - cur], by[1 - cur],
                                  &aug, seed, (uint64_t)e);
            float loss;
            if (o->accum == 1) {
                loss = api->train_step(model, bx[cur], by[cur], nb, lr, bout);
            } else {
                /* the mean over the step's samples: each micro-batch's mean gradient
                 * weighted by its share of them, summed in micro-batch order */
                loss = api->forward_backward(model, bx[cur], by[cur], nb, bout);
                api->read_grads(model, pos == g0 ? gacc : gmicro);
                float w = (float)nb / (float)gn;
                for (int64_t i = 0; i < api->grad_numel; i++)
                    gacc[i] = pos == g0 ? w * gacc[i] : gacc[i] + w * gmicro[i];
            }
            if (!isfinite(loss)) {
                if (loader)
                    mlcrt_loader_wait(loader);
                if (bar)
                    fprintf(out, "\r\033[K");
                fprintf(err, "error: loss became %s at epoch %d step %lld\n",
                        isnan(loss) ? "NaN" : "Inf", epoch,
                        (long long)((g0 + group - 1) / group + 1));
                goto done;
            }
            int64_t bc = 0;
            for (int i = 0; i < nb; i++)
                bc += argmax_row(bout + (int64_t)i * k, k) == by[cur][i];
            st.loss_sum += (double)loss * nb;
            st.correct += bc;
            seen_here += nb;
            gloss += (double)loss * nb;
            gcorrect += bc;
            pos = next;
            int step_done = pos == g0 + gn;
            if (step_done) {
                if (o->accum > 1) {
                    api->write_grads(model, gacc);
                    api->update(model, lr);
                }
                gstep++;
                dirty = 1;
                if (lg.f && gstep % o->log_every == 0)
                    log_row(&lg, "step", epoch, gstep, gloss / (double)gn, lr,
                            (double)gcorrect / (double)gn, -1, -1, mlcrt_now() - run_t0);
            }
            if (nnext) {
                if (loader)
                    mlcrt_loader_wait(loader);
                else
                    mlcrt_batch_gather_aug(&train, perm, next, nnext, bx[1 - cur], by[1 - cur],
                                           &aug, seed, (uint64_t)e);
                cur = 1 - cur;
            }
            st.epoch_pos = pos;
            if (bar) {
                double now = mlcrt_now();
                if (last_bar < 0 || now - last_bar >= 0.1 || pos == train.n) {
                    last_bar = now;
                    progress_bar(out, epoch, o->epochs, pos, train.n,
                                 now > t0 ? (double)seen_here / (now - t0) : 0);
                }
            }
            if (step_done && o->save_path && o->save_every_steps && gstep % o->save_every == 0) {
                if (save_ckpt(o, api, model, &st, err))
                    goto done;
                dirty = 0;
            }
        }
        double dt = mlcrt_now() - t0;
        double val_acc = -1;
        if (o->val) {
            val_acc = mlcrt_evaluate(api, model, &val, o->batch);
            if (val_acc < 0) {
                fprintf(err, "error: out of memory evaluating the validation set\n");
                goto done;
            }
        }
        test_acc = mlcrt_evaluate(api, model, &test, o->batch);
        if (test_acc < 0) {
            fprintf(err, "error: out of memory evaluating the test set\n");
            goto done;
        }
        double eloss = pos ? st.loss_sum / (double)pos : 0.0;
        double eacc = pos ? (double)st.correct / (double)pos : 0.0;
        if (bar)
            fprintf(out, "\r\033[K");
        if (!o->quiet) {
            fprintf(out, "epoch %d/%d  loss %.4f  train_acc %.4f", epoch, o->epochs, eloss,
                    eacc);
            if (o->val)
                fprintf(out, "  val_acc %.4f", val_acc);
            fprintf(out, "  test_acc %.4f  time %.1fs  %.0f samples/s\n", test_acc, dt,
                    dt > 0 ? (double)seen_here / dt : 0.0);
            fflush(out);
        }
        log_row(&lg, "epoch", epoch, gstep, eloss, lr, eacc, val_acc, test_acc, dt);
        if (lg.f)
            fflush(lg.f);
        if (stopped)
            break;
        st.epoch = e + 1;
        st.epoch_pos = 0;
        st.loss_sum = 0;
        st.correct = 0;
        if (o->save_path && ((!o->save_every_steps && (e + 1) % o->save_every == 0) ||
                             e + 1 == o->epochs)) {
            if (save_ckpt(o, api, model, &st, err))
                goto done;
            dirty = 0;
        }
    }
    (void)stopped;
    if (o->save_path && dirty && save_ckpt(o, api, model, &st, err))
        goto done;
    if (test_acc < 0) { /* nothing left to train (a finished run resumed) */
        test_acc = mlcrt_evaluate(api, model, &test, o->batch);
        if (test_acc < 0) {
            fprintf(err, "error: out of memory evaluating the test set\n");
            goto done;
        }
    }
    fprintf(out, "test accuracy: %.4f\n", test_acc);
    fflush(out);
    status = 0;
done:
    mlcrt_loader_stop(loader);
    if (lg.f && fclose(lg.f) != 0 && status == 0) {
        fprintf(err, "error: cannot write log '%s': %s\n", o->log_path, strerror(errno));
        status = 1;
    }
    if (model)
        api->destroy(model);
    for (int b = 0; b < 2; b++) {
        free(bx[b]);
        free(by[b]);
    }
    free(bout);
    free(perm);
    free(gacc);
    free(gmicro);
    mlcrt_dataset_free(&train);
    mlcrt_dataset_free(&test);
    return status;
}

int mlcrt_main(int argc, char **argv, const mlc_model_api *api)
{
    return mlcrt_main_io(argc, argv, api, stdout, stderr);
}

int mlcrt_main_io(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err)
{
    trainer_opts o;
    const char *prog = argc > 0 && argv[0] ? argv[0] : "mlc-train";
    if (mlcrt_check_api(api, err) != 0)
        return 2;
    if (mlcrt_parse_flags(argc, argv, api, &o, prog, err) != 0)
        return 2;
    if (o.help) {
        mlcrt_usage(out, prog, api);
        return 0;
    }
    if (o.threads > 0 && api->set_threads)
        api->set_threads(o.threads);
    if (o.mode == MODE_eval)
        return run_eval(&o, api, out, err);
    if (o.mode == MODE_predict)
        return run_predict(&o, api, out, err);
    return run_train(&o, api, out, err);
}
