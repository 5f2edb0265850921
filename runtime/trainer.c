/* trainer.c - the standalone trainer every generated model links: flag parsing, data
 * loading, the epoch loop (seeded shuffle, train_step on every batch including the last
 * partial one), evaluation on the whole test set, checkpoints, and the result line
 * `test accuracy: 0.XXXX`. */
#include "trainer.h"

#include "ckpt.h"
#include "data.h"
#include "mlcrt_error.h"
#include "rng.h"
#include "timing.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define M_PI_VAL 3.14159265358979323846
#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

typedef struct trainer_opts {
    const char *data_dir;
    int epochs, batch, threads; /* threads 0: leave as is */
    float lr;
    const char *schedule; /* "constant" or "cosine" */
    uint64_t seed;
    int64_t train_limit, test_limit, max_steps; /* 0: no limit */
    const char *save_path, *load_path;
    int quiet, help;
} trainer_opts;

static int argmax_row(const float *row, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (row[j] > row[best])
            best = j;
    return (int)best;
}

/* The learning rate for step `step` (0-based) of `total`. */
static float scheduled_lr(const trainer_opts *o, int64_t step, int64_t total)
{
    if (strcmp(o->schedule, "cosine") == 0 && total > 0)
        return (float)(0.5 * (double)o->lr * (1.0 + cos(M_PI_VAL * (double)step / (double)total)));
    return o->lr;
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

static void usage(FILE *f, const char *prog, const mlc_model_api *api)
{
    fprintf(f,
            "usage: %s [flags]\n"
            "Trains model '%s' and prints `test accuracy: 0.XXXX`.\n"
            "\n"
            "  --data DIR         dataset directory in MNIST layout (default %s)\n"
            "  --epochs N         epochs to train (default %d)\n"
            "  --batch N          samples per optimizer step (default %d)\n"
            "  --lr X             learning rate (default %g)\n"
            "  --schedule S       learning-rate schedule: constant or cosine (default %s)\n"
            "  --seed S           seed for initialisation and shuffling (default %llu)\n"
            "  --threads N        CPU threads for the model's kernels (default: unchanged)\n"
            "  --train-limit N    use only the first N training samples\n"
            "  --test-limit N     use only the first N test samples\n"
            "  --max-steps N      stop after N optimizer steps in total\n"
            "  --save PATH        write a checkpoint to PATH at the end of every epoch\n"
            "  --load PATH        start from the checkpoint at PATH\n"
            "  --quiet            print only the final result line\n"
            "  --help             show this help\n",
            prog, api->name, DEFAULT_DATA_DIR, api->default_epochs, api->default_batch,
            (double)api->optimizer.lr, api->schedule ? api->schedule : "constant",
            (unsigned long long)api->default_seed);
}

/* Parses a positive integer up to max into *v; 0 on success. */
static int parse_pos_int(const char *flag, const char *s, int64_t max, int64_t *v, FILE *err)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || x < 1 || x > max) {
        fprintf(err, "%s: expected a positive integer, found '%s'\n", flag, s);
        return -1;
    }
    *v = x;
    return 0;
}

static int parse_args(int argc, char **argv, const mlc_model_api *api, trainer_opts *o,
                      FILE *err)
{
    memset(o, 0, sizeof *o);
    o->data_dir = DEFAULT_DATA_DIR;
    o->epochs = api->default_epochs > 0 ? api->default_epochs : 10;
    o->batch = api->default_batch > 0 ? api->default_batch : 64;
    o->lr = api->optimizer.lr;
    o->schedule = api->schedule ? api->schedule : "constant";
    o->seed = api->default_seed;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            return 0;
        }
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "unexpected argument '%s' (see --help)\n", a);
            return -1;
        }
        /* Flags with a value: `--flag VALUE` or `--flag=VALUE`. */
        char flag[64];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq) {
            size_t n = (size_t)(eq - a);
            if (n >= sizeof flag)
                n = sizeof flag - 1;
            memcpy(flag, a, n);
            flag[n] = '\0';
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
            val = NULL;
        }
        static const char *const known[] = {"--data",       "--epochs",     "--batch",
                                            "--lr",         "--seed",       "--threads",
                                            "--train-limit", "--test-limit", "--max-steps",
                                            "--save",       "--load",       "--schedule"};
        int found = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            found |= strcmp(flag, known[k]) == 0;
        if (!found) {
            fprintf(err, "unknown flag '%s' (see --help)\n", flag);
            return -1;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(err, "%s: missing value\n", flag);
                return -1;
            }
            val = argv[++i];
        }
        int64_t v = 0;
        if (strcmp(flag, "--data") == 0 || strcmp(flag, "--save") == 0 ||
            strcmp(flag, "--load") == 0) {
            if (*val == '\0') {
                fprintf(err, "%s: expected a path, found ''\n", flag);
                return -1;
            }
            if (flag[2] == 'd')
                o->data_dir = val;
            else if (flag[2] == 's')
                o->save_path = val;
            else
                o->load_path = val;
        } else if (strcmp(flag, "--schedule") == 0) {
            if (strcmp(val, "constant") != 0 && strcmp(val, "cosine") != 0) {
                fprintf(err, "--schedule: expected constant or cosine, found '%s'\n", val);
                return -1;
            }
            o->schedule = val;
        } else if (strcmp(flag, "--lr") == 0) {
            char *end;
            errno = 0;
            double x = strtod(val, &end);
            if (*val == '\0' || *end != '\0' || errno == ERANGE || !(x > 0) || !isfinite(x) ||
                x > 3.0e38) {
                fprintf(err, "--lr: expected a positive number, found '%s'\n", val);
                return -1;
            }
            o->lr = (float)x;
        } else if (strcmp(flag, "--seed") == 0) {
            char *end;
            errno = 0;
            unsigned long long x = strtoull(val, &end, 10);
            if (*val < '0' || *val > '9' || *end != '\0' || errno == ERANGE) {
                fprintf(err, "--seed: expected a non-negative integer, found '%s'\n", val);
                return -1;
            }
            o->seed = x;
        } else if (strcmp(flag, "--epochs") == 0) {
            if (parse_pos_int(flag, val, INT_MAX, &v, err))
                return -1;
            o->epochs = (int)v;
        } else if (strcmp(flag, "--batch") == 0) {
            if (parse_pos_int(flag, val, INT_MAX, &v, err))
                return -1;
            o->batch = (int)v;
        } else if (strcmp(flag, "--threads") == 0) {
            if (parse_pos_int(flag, val, 4096, &v, err))
                return -1;
            o->threads = (int)v;
        } else if (strcmp(flag, "--train-limit") == 0) {
            if (parse_pos_int(flag, val, INT64_MAX, &v, err))
                return -1;
            o->train_limit = v;
        } else if (strcmp(flag, "--test-limit") == 0) {
            if (parse_pos_int(flag, val, INT64_MAX, &v, err))
                return -1;
            o->test_limit = v;
        } else { /* --max-steps */
            if (parse_pos_int(flag, val, INT64_MAX, &v, err))
                return -1;
            o->max_steps = v;
        }
    }
    return 0;
}

int mlcrt_main(int argc, char **argv, const mlc_model_api *api)
{
    return mlcrt_main_io(argc, argv, api, stdout, stderr);
}

int mlcrt_main_io(int argc, char **argv, const mlc_model_api *api, FILE *out, FILE *err)
{
    trainer_opts o;
    const char *prog = argc > 0 && argv[0] ? argv[0] : "mlc-train";
    if (parse_args(argc, argv, api, &o, err) != 0)
        return 2;
    if (o.help) {
        usage(out, prog, api);
        return 0;
    }
    if (o.threads > 0 && api->set_threads)
        api->set_threads(o.threads);

    char msg[MLCRT_MSG_SIZE];
    mlc_dataset train, test;
    memset(&test, 0, sizeof test);
    int classes = api->output_numel <= INT_MAX ? (int)api->output_numel : 0;
    if (mlcrt_dataset_load_dir(&train, o.data_dir, "train", api->input_numel, classes,
                               o.train_limit, msg, sizeof msg) != MLCRT_OK ||
        mlcrt_dataset_load_dir(&test, o.data_dir, "t10k", api->input_numel, classes,
                               o.test_limit, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        mlcrt_dataset_free(&train);
        return 1;
    }

    int status = 1;
    void *model = NULL;
    float *bx = NULL, *bout = NULL;
    int32_t *by = NULL;
    int64_t *perm = NULL;
    model = api->create(o.seed, o.batch);
    bx = malloc((size_t)o.batch * (size_t)api->input_numel * sizeof(float));
    bout = malloc((size_t)o.batch * (size_t)api->output_numel * sizeof(float));
    by = malloc((size_t)o.batch * sizeof(int32_t));
    perm = malloc((size_t)(train.n > 0 ? train.n : 1) * sizeof(int64_t));
    if (!model || !bx || !bout || !by || !perm) {
        fprintf(err, "error: out of memory creating model '%s' for batch %d\n", api->name,
                o.batch);
        goto done;
    }
    if (o.load_path && mlcrt_ckpt_load(api, model, o.load_path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(err, "error: %s\n", msg);
        goto done;
    }

    int64_t steps = 0;
    int64_t total_steps = (int64_t)o.epochs * ((train.n + o.batch - 1) / o.batch);
    if (o.max_steps && o.max_steps < total_steps)
        total_steps = o.max_steps;
    double test_acc = 0.0;
    int64_t k = api->output_numel;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        mlc_permutation(perm, train.n, o.seed, (uint64_t)(epoch - 1));
        double t0 = mlcrt_now(), loss_sum = 0.0;
        int64_t seen = 0, correct = 0, estep = 0;
        for (int64_t start = 0; start < train.n; start += o.batch) {
            if (o.max_steps && steps >= o.max_steps)
                break;
            int nb = (int)(train.n - start < o.batch ? train.n - start : o.batch);
            mlcrt_batch_gather(&train, perm, start, nb, bx, by);
            float loss = api->train_step(model, bx, by, nb, scheduled_lr(&o, steps, total_steps), bout);
            steps++;
            estep++;
            if (!isfinite(loss)) {
                fprintf(err, "error: loss became %s at epoch %d step %lld\n",
                        isnan(loss) ? "NaN" : "Inf", epoch, (long long)estep);
                goto done;
            }
            loss_sum += (double)loss * nb;
            seen += nb;
            for (int i = 0; i < nb; i++)
                correct += argmax_row(bout + (int64_t)i * k, k) == by[i];
        }
        double dt = mlcrt_now() - t0;
        test_acc = mlcrt_evaluate(api, model, &test, o.batch);
        if (test_acc < 0) {
            fprintf(err, "error: out of memory evaluating the test set\n");
            goto done;
        }
        if (!o.quiet) {
            fprintf(out,
                    "epoch %d/%d  loss %.4f  train_acc %.4f  test_acc %.4f  time %.1fs  "
                    "%.0f samples/s\n",
                    epoch, o.epochs, seen ? loss_sum / (double)seen : 0.0,
                    seen ? (double)correct / (double)seen : 0.0, test_acc, dt,
                    dt > 0 ? (double)seen / dt : 0.0);
            fflush(out);
        }
        if (o.save_path && mlcrt_ckpt_save(api, model, o.save_path, msg, sizeof msg) != MLCRT_OK) {
            fprintf(err, "error: %s\n", msg);
            goto done;
        }
        if (o.max_steps && steps >= o.max_steps)
            break;
    }
    fprintf(out, "test accuracy: %.4f\n", test_acc);
    fflush(out);
    status = 0;
done:
    if (model)
        api->destroy(model);
    free(bx);
    free(bout);
    free(by);
    free(perm);
    mlcrt_dataset_free(&train);
    mlcrt_dataset_free(&test);
    return status;
}
