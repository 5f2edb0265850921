/* loader.c - the prefetching batch loader (see loader.h): one pthread, one job slot,
 * a mutex and a condition variable. */
#include "loader.h"

#include <pthread.h>
#include <stdlib.h>

struct mlcrt_loader {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, quit;
    /* the job */
    const mlc_dataset *ds;
    const int64_t *perm;
    int64_t start;
    int n;
    void *bx;
    int32_t *by;
    const mlcrt_augment *aug;
    uint64_t seed, epoch;
};

static void *loader_main(void *arg) {
    mlcrt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->pending && !l->quit) pthread_cond_wait(&l->cv, &l->mu);
        if (!l->pending && l->quit) break;
        pthread_mutex_unlock(&l->mu);
        mlcrt_batch_gather_aug(l->ds, l->perm, l->start, l->n, l->bx, l->by, l->aug, l->seed, l->epoch);
        pthread_mutex_lock(&l->mu);
        l->pending = 0;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

mlcrt_loader *mlcrt_loader_start(void) {
    mlcrt_loader *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return NULL;
    }
    if (pthread_cond_init(&l->cv, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

void mlcrt_loader_post(mlcrt_loader *l, const mlc_dataset *ds, const int64_t *perm, int64_t start, int n, void *bx,
                       int32_t *by, const mlcrt_augment *aug, uint64_t seed, uint64_t epoch) {
    pthread_mutex_lock(&l->mu);
    while (l->pending) pthread_cond_wait(&l->cv, &l->mu);
    l->ds = ds;
    l->perm = perm;
    l->start = start;
    l->n = n;
    l->bx = bx;
    l->by = by;
    l->aug = aug;
    l->seed = seed;
    l->epoch = epoch;
    l->pending = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void mlcrt_loader_wait(mlcrt_loader *l) {
    pthread_mutex_lock(&l->mu);
    while (l->pending) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void mlcrt_loader_stop(mlcrt_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    while (l->pending) pthread_cond_wait(&l->cv, &l->mu);
    l->quit = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
