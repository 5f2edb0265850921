/* dist.c - the parts of data-parallel training that need no MPI (dist.h): the weights'
 * checksum the ranks compare, the agreement every rank reaches before training and after
 * each epoch, and evaluation sharded over the ranks. The communicator itself is
 * dist_mpi.c's, in libmlcrt_mpi. */
#include "dist.h"
#include "text_data.h"
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over every persistent tensor's bytes and the optimizer step: ranks that agree
 * on it start (and stay) on the same weights, Adam moments and step. */
static uint64_t weights_checksum(const mlc_model_api *api, void *model, int *oom) {
    uint64_t h = 14695981039346656037ull;
    int64_t step = api->get_step(model);
    const unsigned char *sb = (const unsigned char *)&step;
    for (size_t k = 0; k < sizeof step; k++) h = (h ^ sb[k]) * 1099511628211ull;
    for (int i = 0; i < api->n_tensors; i++) {
        int64_t n = api->tensors[i].numel;
        unsigned char *buf = malloc((size_t)(n > 0 ? n : 1) * 4);
        if (!buf) {
            *oom = 1;
            return 0;
        }
        api->read_tensor(model, i, buf);
        for (int64_t k = 0; k < n * 4; k++) h = (h ^ buf[k]) * 1099511628211ull;
        free(buf);
    }
    return h;
}

int mlcrt_dist_agree(mlcrt_dist *d, int ok, const mlc_model_api *api, void *model, const char *when, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    if (!all) {
        fprintf(err, "error: out of memory comparing the weights across ranks\n");
        d->abort(d, 1);
    }
    int oom = 0, status = 0;
    uint64_t sum = ok ? weights_checksum(api, model, &oom) : 0;
    if (oom) {
        fprintf(err, "error: out of memory comparing the weights across ranks\n");
        ok = 0;
    }
    /* a failed rank sends 0, a working one 1: everyone learns who failed, then the sums */
    if (d->gather_u64(d, (uint64_t)ok, all, "the start-up agreement")) return -1;
    for (int r = 0; r < d->size; r++) {
        if (!all[r]) {
            if (d->rank == 0)
                fprintf(err, "error: rank %d failed %s (its message is above); stopping all %d ranks\n", r, when,
                        d->size);
            status = -1;
            break;
        }
    }
    if (!status && !d->gather_u64(d, sum, all, "the weights checksum")) {
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
    }
    free(all);
    return status;
}

/* FNV-1a of n bytes. */
static uint64_t fnv(const unsigned char *b, int64_t n) {
    uint64_t h = 14695981039346656037ull;
    for (int64_t k = 0; k < n; k++) h = (h ^ b[k]) * 1099511628211ull;
    return h;
}

int mlcrt_dist_sync_state(mlcrt_dist *d, const mlc_model_api *api, void *model, FILE *err) {
    uint64_t *all = calloc((size_t)d->size, sizeof *all);
    int status = 0;
    for (int i = 0; i < api->n_tensors && !status; i++) {
        const mlc_tensor_desc *t = &api->tensors[i];
        if (t->is_param || t->dtype != MLC_F32) continue;
        float *v = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *v);
        if (!v || !all) {
            fprintf(err, "error: out of memory averaging '%s' across ranks\n", t->name);
            d->abort(d, 1);
        }
        api->read_tensor(model, i, v);
        d->gather_u64(d, fnv((const unsigned char *)v, t->numel * 4), all, "the state comparison");
        int same = 1;
        for (int r = 1; r < d->size; r++) same &= all[r] == all[0];
        if (!same) { /* the ranks' own running statistics: their mean */
            d->sum_f32(d, v, t->numel, "the state all-reduce");
            for (int64_t k = 0; k < t->numel; k++) v[k] /= (float)d->size;
            api->write_tensor(model, i, v);
        }
        free(v);
    }
    free(all);
    return status;
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
        fprintf(stderr, "error: out of memory summing counts across ranks\n");
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
        fprintf(stderr, "error: out of memory combining batch-norm statistics across ranks\n");
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
