/* dist.c - the parts of data-parallel training that need no MPI (dist.h): the weights'
 * checksum and the settings the ranks compare, the agreement every rank reaches before
 * training and after each epoch, and evaluation sharded over the ranks. The communicator
 * itself is dist_mpi.c's, in libmlcrt_mpi. */
#include "dist.h"
#include "rng.h"
#include "ckpt.h"
#include "text_data.h"
#include "trainer.h"
#include "trainer_flags.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over every persistent tensor's bytes and the optimizer step: ranks that agree
 * on it start (and stay) on the same weights, Adam moments and step. */
static uint64_t weights_checksum(const mlc_model_api *api, void *model, int *oom) {
    int64_t step = api->get_step(model);
    uint64_t h = mlc_hash_bytes(MLC_HASH_START, &step, sizeof step);
    for (int i = 0; i < api->n_tensors; i++) {
        int64_t n = api->tensors[i].numel;
        unsigned char *buf = malloc((size_t)(n > 0 ? n : 1) * 4);
        if (!buf) {
            *oom = 1;
            return 0;
        }
        api->read_tensor(model, i, buf);
        h = mlc_hash_bytes(h, buf, (size_t)n * 4);
        free(buf);
    }
    return h;
}

/* The agreement's first round: every rank's word, 1 when it started; 0 when it did not
 * (its message printed already); else a bad command line's message, held back, as its
 * hash with bit 1 set (never 0 or 1). The lowest rank holding a given message prints
 * it, then, once every rank has (a second gather), rank 0 names the first rank that did
 * not start if it did itself. 0 when every rank started; -1 on every rank otherwise. */
static int round_started(mlcrt_dist *d, uint64_t word, const char *held, const char *when, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    if (!all) {
        fprintf(err, "error: out of memory comparing the ranks' start\n");
        d->abort(d, 1);
    }
    d->joined_start = 1;
    d->gather_u64(d, word, all, "the start-up agreement");
    int failed = -1;
    for (int r = 0; r < d->size && failed < 0; r++)
        if (all[r] != 1) failed = r;
    if (failed < 0) {
        free(all);
        return 0;
    }
    int first_holder = 1, rank0_started = all[0] == 1;
    for (int r = 0; r < d->rank; r++) first_holder &= all[r] != word;
    if (word > 1 && first_holder && held) fputs(held, err);
    /* the held messages are out before rank 0's line that points at them */
    d->gather_u64(d, 0, all, "the start-up agreement");
    if (d->rank == 0 && rank0_started)
        fprintf(err, "error: rank %d failed %s (its message is above); stopping all %d ranks\n", failed, when, d->size);
    free(all);
    return -1;
}

/* The weights' round: 0 when every rank's checksum is rank 0's, else -1 on every rank
 * after rank 0 has named the first that differs. model NULL: nothing to compare. */
static int round_weights(mlcrt_dist *d, const mlc_model_api *api, void *model, const char *when, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    int oom = 0, status = 0;
    uint64_t sum = model ? weights_checksum(api, model, &oom) : 0;
    if (!all || oom) {
        fprintf(err, "error: out of memory comparing the weights across ranks\n");
        d->abort(d, 1);
    }
    d->gather_u64(d, sum, all, "the weights checksum");
    for (int r = 1; r < d->size; r++) {
        if (all[r] != all[0]) {
            if (d->rank == 0)
                fprintf(err,
                        "error: rank %d's weights differ from rank 0's %s (checksum %016llx, rank 0 "
                        "%016llx): every rank must run the same trainer with the same --seed and "
                        "--load or --resume file\n",
                        r, when, (unsigned long long)all[r], (unsigned long long)all[0]);
            status = -1;
            break;
        }
    }
    free(all);
    return status;
}

int mlcrt_dist_agree(mlcrt_dist *d, int ok, const mlc_model_api *api, void *model, const char *when, FILE *err) {
    if (round_started(d, ok ? 1 : 0, NULL, when, err)) return -1;
    return round_weights(d, api, model, when, err);
}

void mlcrt_dist_join_failed(mlcrt_dist *d, const char *held, FILE *err) {
    uint64_t word = held && *held ? mlc_hash_bytes(MLC_HASH_START, held, strlen(held)) | 2 : 0;
    round_started(d, word, held, "at the start", err);
}

/* ---- the settings the ranks compare at the start ---- */

/* How a flag of settings.def is compared across ranks. */
enum { AGREED, PRESENCE, PER_RANK };

/* The flags each rank may set for itself: where its own copy of the data is (the data's
 * figures are compared instead), how it uses its cores, how long it waits for the
 * others, and what it prints and logs, which rank 0 alone does. --save, --resume and
 * --load are compared by whether they are given: --save decides when the ranks
 * synchronise (only rank 0's path is written), the checkpoint a rank reads may be its
 * own copy (the weights' checksum compares it). --help and --version are the "mode"
 * setting. */
static int flag_scope(const char *flag) {
    static const char *const per_rank[] = {"--data",       "--threads",   "--no-prefetch", "--log",
                                           "--log-format", "--log-every", "--progress",    "--quiet",
                                           "--help",       "--version",   "--comm-timeout"};
    static const char *const presence[] = {"--save", "--resume", "--load"};
    for (size_t i = 0; i < sizeof per_rank / sizeof per_rank[0]; i++)
        if (!strcmp(flag, per_rank[i])) return PER_RANK;
    for (size_t i = 0; i < sizeof presence / sizeof presence[0]; i++)
        if (!strcmp(flag, presence[i])) return PRESENCE;
    return AGREED;
}

/* The settings as "name\tkey\tshown\n" lines, key what is compared and shown what a
 * message prints (the same but for PRESENCE flags), and their digest: the hash of every
 * line's name and key. Control characters in values are written \xNN. */
typedef struct settings {
    FILE *f;
    uint64_t digest;
} settings;

static void put_field(settings *s, const char *v, int hashed) {
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        char esc[8];
        int n = *p < 0x20 || *p == 0x7f ? snprintf(esc, sizeof esc, "\\x%02x", *p) : (esc[0] = (char)*p, 1);
        fwrite(esc, 1, (size_t)n, s->f);
        if (hashed) s->digest = mlc_hash_bytes(s->digest, esc, (size_t)n);
    }
}

static void put(settings *s, const char *name, const char *key, const char *shown) {
    put_field(s, name, 1);
    fputc('\t', s->f);
    s->digest = mlc_hash_bytes(s->digest, "\t", 1);
    put_field(s, key, 1);
    fputc('\t', s->f);
    s->digest = mlc_hash_bytes(s->digest, "\n", 1);
    put_field(s, shown, 0);
    fputc('\n', s->f);
}

static void put_same(settings *s, const char *name, const char *v) { put(s, name, v, v); }

/* f as the shortest text that reads back as f: 0.01, not 0.00999999978. */
static int float_text(char *v, size_t cap, float f) {
    int n = 0;
    for (int digits = 6; digits <= 9; digits++)
        if ((n = snprintf(v, cap, "%.*g", digits, (double)f)) >= (int)cap || strtof(v, NULL) == f) break;
    return n;
}

/* The value a flag set, as the flag is written (0 or NULL: "none"). */
static void flag_value(const flag_row *f, const trainer_opts *o, char *v, size_t cap) {
    const void *field = (const char *)o + f->offset;
    snprintf(v, cap, "none");
    switch (f->kind) {
    case FLAG_SWITCH: snprintf(v, cap, "%s", *(const int *)field ? "on" : "off"); break;
    case FLAG_PATH:
    case FLAG_TEXT:
    case FLAG_AUGMENT: break; /* put by the caller: any length */
    case FLAG_INT:
    case FLAG_THREADS:
        if (*(const int *)field) snprintf(v, cap, "%d", *(const int *)field);
        break;
    case FLAG_COUNT:
        if (*(const int64_t *)field) snprintf(v, cap, "%lld", (long long)*(const int64_t *)field);
        break;
    case FLAG_SEED: snprintf(v, cap, "%llu", (unsigned long long)*(const uint64_t *)field); break;
    case FLAG_POS:
    case FLAG_NONNEG:
        if (*(const float *)field || f->kind == FLAG_NONNEG) float_text(v, cap, *(const float *)field);
        break;
    case FLAG_LIST:
    case FLAG_POS_LIST: {
        const mlcrt_channels *c = field;
        size_t n = 0;
        for (int i = 0; i < c->n && n + 1 < cap; i++) {
            if (i) v[n++] = ',';
            n += (size_t)float_text(v + n, cap - n, c->v[i]);
        }
        break;
    }
    case FLAG_CHOICE: {
        const char *p = f->choices;
        for (int k = *(const int *)field; k > 0 && strchr(p, ','); k--) p = strchr(p, ',') + 1;
        snprintf(v, cap, "%.*s", (int)strcspn(p, ","), p);
        break;
    }
    case FLAG_SAVE_EVERY:
        snprintf(v, cap, "%lld%s", (long long)*(const int64_t *)field, o->save_every_steps ? "s" : "");
        break;
    }
}

static void put_flag(settings *s, const flag_row *f, const trainer_opts *o) {
    int scope = flag_scope(f->flag);
    if (scope == PER_RANK) return;
    const char *text = NULL;
    char v[160];
    flag_value(f, o, v, sizeof v);
    if (f->kind == FLAG_PATH || f->kind == FLAG_TEXT || f->kind == FLAG_AUGMENT) {
        text = *(const char *const *)((const char *)o + f->offset);
        /* --augment none, "" and the model's none are one setting */
        if (f->kind == FLAG_AUGMENT && text && (!*text || !strcmp(text, "none"))) text = NULL;
    }
    if (scope == PRESENCE) put(s, f->flag, text ? "given" : "none", text ? text : "none");
    else if (text || f->kind == FLAG_PATH || f->kind == FLAG_TEXT || f->kind == FLAG_AUGMENT)
        put_same(s, f->flag, text ? text : "none");
    else if (f->offset == offsetof(trainer_opts, epochs) && !o->epochs_flag && o->max_steps)
        put_same(s, f->flag, "not given");
    else put_same(s, f->flag, v);
}

/* A split's figures: its size, its samples' shape and (training) its labels' checksum,
 * which catches another dataset of the same size. */
static void put_data(settings *s, const char *size_name, const mlc_dataset *ds, int labels) {
    char v[160];
    snprintf(v, sizeof v, "%lld", (long long)ds->n);
    put_same(s, size_name, v);
    size_t n = 0;
    v[0] = '\0';
    for (int i = 0; i < ds->sample_rank && n < sizeof v; i++)
        n += (size_t)snprintf(v + n, sizeof v - n, "%s%lld", i ? "x" : "", (long long)ds->sample_dims[i]);
    if (ds->text && n < sizeof v) snprintf(v + n, sizeof v - n, " tokens");
    put_same(s, "sample shape", v);
    if (labels && ds->y) {
        snprintf(v, sizeof v, "%016llx",
                 (unsigned long long)mlc_hash_bytes(MLC_HASH_START, ds->y, (size_t)ds->n * sizeof *ds->y));
        put_same(s, "training labels' checksum", v);
    }
    /* a token corpus has no labels: its tokens are what another corpus of as many windows
     * would differ in (the split's, training or validation, as each rank loaded it) */
    if (ds->text) {
        snprintf(v, sizeof v, "%016llx",
                 (unsigned long long)mlc_hash_bytes(MLC_HASH_START, ds->text->ids,
                                                    (size_t)ds->text->n_ids * sizeof *ds->text->ids));
        put_same(s, labels ? "training tokens' checksum" : "validation tokens' checksum", v);
    }
}

/* This rank's settings (the lines above, in a fixed order: mode, model, settings.def's
 * flags, the data, the starting point); NULL when out of memory. The model's line holds
 * what decides its collectives besides the flags: its gradient slab's size, whether it
 * reports ready buckets and batch-norm figures, and where its gradients are summed. */
static char *settings_text(const mlcrt_dist *d, const trainer_opts *o, const mlc_dataset *train,
                           const mlc_dataset *eval_set, const mlcrt_train_state *resumed, const mlc_model_api *api,
                           uint64_t *digest) {
    char *buf = NULL, v[200];
    size_t len = 0;
    settings s = {open_memstream(&buf, &len), MLC_HASH_START};
    if (!s.f) return NULL;
    put_same(&s, "mode", o->help ? "--help" : o->version ? "--version" : mlcrt_modes[o->mode].name);
    snprintf(v, sizeof v, "%s (target %s), %lld gradient values%s%s, summed %s", api->name, api->target,
             (long long)api->grad_numel, api->set_grad_ready ? ", ready buckets" : "",
             api->set_batch_sync ? ", batch-norm sync" : "", d->sum_device_f32 ? "by NCCL" : "by MPI");
    put_same(&s, "model", v);
    for (int i = 0; i < mlcrt_n_flags; i++) put_flag(&s, &mlcrt_flags[i], o);
    if (train) put_data(&s, "training-set size", train, 1);
    if (eval_set) put_data(&s, o->mode == MODE_predict ? "image count" : "test-set size", eval_set, 0);
    if (resumed) {
        snprintf(v, sizeof v, "epoch %lld, sample %lld, data seed %llu", (long long)resumed->epoch,
                 (long long)resumed->epoch_pos, (unsigned long long)resumed->seed);
        put_same(&s, "starting point", v);
    }
    if (fclose(s.f)) {
        free(buf);
        return NULL;
    }
    *digest = s.digest;
    return buf;
}

/* The next line of a settings text at *p: its name, key and shown fields (cut in place);
 * 0 at the end. */
static int next_line(char **p, char **name, char **key, char **shown) {
    if (!*p || !**p) return 0;
    char *line = *p, *end = strchr(line, '\n');
    if (end) *end = '\0';
    *p = end ? end + 1 : line + strlen(line);
    *name = line;
    *key = strchr(line, '\t');
    *key = *key ? (**key = '\0', *key + 1) : line + strlen(line);
    *shown = strchr(*key, '\t');
    *shown = *shown ? (**shown = '\0', *shown + 1) : *key + strlen(*key);
    return 1;
}

/* Rank 0: the first of rank r's settings (theirs) that differs from its own (mine). */
static void report_settings(const mlcrt_dist *d, int r, char *mine, char *theirs, FILE *err) {
    char *n0, *k0, *s0, *n1, *k1, *s1;
    for (;;) {
        int more0 = next_line(&mine, &n0, &k0, &s0), more1 = next_line(&theirs, &n1, &k1, &s1);
        if (!more0 && !more1) break;
        if (more0 && more1 && !strcmp(n0, n1) && strcmp(k0, k1)) {
            fprintf(err, "error: rank %d's %s (%.100s%s) differs from rank 0's (%.100s%s); stopping all %d ranks\n", r,
                    n1, s1, strlen(s1) > 100 ? "..." : "", s0, strlen(s0) > 100 ? "..." : "", d->size);
            return;
        }
        if (!more0 || !more1 || strcmp(n0, n1)) /* another trainer: its settings are others */
            break;
    }
    fprintf(err,
            "error: rank %d's settings differ from rank 0's (another trainer?): every rank must run the same "
            "trainer; stopping all %d ranks\n",
            r, d->size);
}

/* The settings' round: every rank's digest; where one differs from rank 0's, the first
 * such rank sends its settings to rank 0, which names the first that differs. 0 when all
 * agree; -1 on every rank otherwise. */
static int round_settings(mlcrt_dist *d, char *text, uint64_t digest, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    if (!all) {
        fprintf(err, "error: out of memory comparing the settings across ranks\n");
        d->abort(d, 1);
    }
    d->gather_u64(d, digest, all, "the settings comparison");
    int r = 1;
    while (r < d->size && all[r] == all[0]) r++;
    free(all);
    if (r == d->size) return 0;
    char *theirs = NULL;
    size_t len = 0;
    FILE *f = d->rank == 0 ? open_memstream(&theirs, &len) : NULL;
    if (d->rank == 0 && !f) {
        fprintf(err, "error: out of memory comparing the settings across ranks\n");
        d->abort(d, 1);
    }
    d->gather_text(d, text, d->rank == r ? strlen(text) : 0, f, "the settings comparison");
    if (f) {
        if (fclose(f)) {
            fprintf(err, "error: out of memory comparing the settings across ranks\n");
            d->abort(d, 1);
        }
        report_settings(d, r, text, theirs, err);
        free(theirs);
    }
    return -1;
}

int mlcrt_dist_agree_start(mlcrt_dist *d, int ok, const trainer_opts *o, const mlc_dataset *train,
                           const mlc_dataset *eval_set, const mlcrt_train_state *resumed, const mlc_model_api *api,
                           void *model, FILE *err) {
    uint64_t digest = 0;
    char *text = ok ? settings_text(d, o, train, eval_set, resumed, api, &digest) : NULL;
    if (ok && !text) {
        fprintf(err, "error: out of memory comparing the settings across ranks\n");
        ok = 0;
    }
    int status = round_started(d, ok ? 1 : 0, NULL, "at the start", err);
    if (!status) status = round_settings(d, text, digest, err);
    if (!status) status = round_weights(d, api, model, "at the start", err);
    free(text);
    return status;
}

int mlcrt_dist_sync_state(mlcrt_dist *d, const mlc_model_api *api, void *model, float **kept, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    int status = 0;
    for (int i = 0; i < api->n_tensors && !status; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        if (kept) kept[i] = NULL;
        if (t->is_param || t->dtype != MLC_F32) continue;
        float *v = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *v);
        if (!v || !all) {
            fprintf(err, "error: out of memory averaging '%s' across ranks\n", t->name);
            d->abort(d, 1);
        }
        api->read_tensor(model, i, v);
        d->gather_u64(d, mlc_hash_bytes(MLC_HASH_START, v, (size_t)t->numel * 4), all, "the state comparison");
        int same = 1;
        for (int r = 1; r < d->size; r++) same &= all[r] == all[0];
        if (!same) { /* the ranks' own running statistics: their mean */
            float *own = NULL;
            if (kept && !(own = kept[i] = malloc((size_t)t->numel * sizeof *own))) {
                fprintf(err, "error: out of memory keeping '%s' apart from its mean across ranks\n", t->name);
                d->abort(d, 1);
            }
            if (own) memcpy(own, v, (size_t)t->numel * sizeof *own);
            d->sum_f32(d, v, t->numel, "the state all-reduce");
            for (int64_t k = 0; k < t->numel; k++) v[k] /= (float)d->size;
            api->write_tensor(model, i, v);
        }
        free(v);
    }
    free(all);
    return status;
}

void mlcrt_dist_restore_state(const mlc_model_api *api, void *model, float **kept) {
    for (int i = 0; i < api->n_tensors; i++)
        if (kept[i]) {
            api->write_tensor(model, i, kept[i]);
            free(kept[i]);
            kept[i] = NULL;
        }
}

double mlcrt_dist_evaluate(mlcrt_dist *d, const mlc_model_api *api, void *model, const mlc_dataset *ds, int batch) {
    if (!d) return mlcrt_evaluate(api, model, ds, batch);
    int64_t lo, hi;
    mlcrt_dist_slice(ds->n, d->rank, d->size, &lo, &hi);
    mlc_dataset part;
    struct mlcrt_text text; /* a token corpus's shard needs its own window table */
    mlcrt_dataset_view(ds, lo, hi, &part, &text);
    double m = mlcrt_evaluate(api, model, &part, batch);
    /* a classifier's correct count is exact; a loss is summed weighted by the shard */
    double v[2] = {m < 0 ? 1.0 : 0.0, api->classifier ? (double)llround(m * (double)part.n) : m * (double)part.n};
    if (d->sum_f64(d, v, 2, "the evaluation all-reduce")) return -1.0;
    if (v[0] > 0) return -1.0;
    return ds->n ? v[1] / (double)ds->n : 0.0;
}

int mlcrt_dist_sum_counts(mlcrt_dist *d, int64_t *v, int64_t n, const char *what) {
    double *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (!t) {
        fprintf(stderr, "rank %d: error: out of memory summing counts across ranks\n", d->rank);
        d->abort(d, 1);
    }
    for (int64_t k = 0; k < n; k++) t[k] = (double)v[k];
    int st = d->sum_f64(d, t, n, what);
    for (int64_t k = 0; k < n; k++) v[k] = (int64_t)t[k];
    free(t);
    return st;
}

void mlcrt_overlap_ready(void *ctx, int64_t done) {
    mlcrt_overlap *ov = ctx;
    while (ov->launched < ov->total) {
        int64_t end = ov->launched + MLCRT_BUCKET < ov->total ? ov->launched + MLCRT_BUCKET : ov->total;
        if (end > done) return;
        if (ov->stream) {
            ov->d->start_sum_device_f32(ov->d, ov->slab + ov->launched, end - ov->launched, ov->weight, ov->stream);
        } else {
            for (int64_t i = ov->launched; i < end; i++) ov->slab[i] *= ov->weight;
            ov->d->start_sum_f32(ov->d, ov->slab + ov->launched, end - ov->launched);
        }
        ov->launched = end;
    }
}

void mlcrt_overlap_begin(mlcrt_overlap *ov, mlcrt_dist *d, float *slab, int64_t total, float weight, int empty,
                         void *stream) {
    ov->d = d;
    ov->slab = slab;
    ov->total = total;
    ov->launched = 0;
    ov->weight = weight;
    ov->stream = stream;
    if (empty && !stream) memset(slab, 0, (size_t)total * sizeof *slab);
}

void mlcrt_overlap_end(mlcrt_overlap *ov) { mlcrt_overlap_ready(ov, ov->total); }

void mlcrt_batch_sync_ready(void *ctx, float *v, int64_t n, int moments) {
    mlcrt_batch_sync *bs = ctx;
    double *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (!t) {
        fprintf(stderr, "rank %d: error: out of memory combining batch-norm statistics across ranks\n", bs->d->rank);
        bs->d->abort(bs->d, 1);
    }
    int64_t c = moments ? n / 2 : n; /* moments: the means first, then the variances */
    for (int64_t k = 0; k < c; k++) t[k] = bs->weight * (double)v[k];
    bs->d->sum_f64(bs->d, t, c,
                   moments ? "the batch-norm statistics all-reduce" : "the batch-norm gradient all-reduce");
    if (moments) {
        for (int64_t k = 0; k < c; k++) {
            double dm = (double)v[k] - t[k];
            t[c + k] = bs->weight * ((double)v[c + k] + dm * dm);
        }
        bs->d->sum_f64(bs->d, t + c, c, "the batch-norm statistics all-reduce");
    }
    for (int64_t k = 0; k < n; k++) v[k] = (float)t[k];
    free(t);
}
