/* dist_mpi.c - the data-parallel communicator over MPI (libmlcrt_mpi; dist.h): what a
 * trainer built with `mlc build --mpi` runs. Kept out of libmlcrt so that a trainer built
 * without --mpi needs no MPI.
 *
 * Collectives are non-blocking ones polled against a deadline (--comm-timeout), so a rank
 * that dies or hangs ends the job with a message instead of leaving the others waiting:
 * Open MPI notices a rank killed outright itself, but not one that stops answering. */
#define _GNU_SOURCE /* fopencookie: the rank prefix on error lines */
#include "dist.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void give_up(mlcrt_dist *d, const char *what, const char *why) {
    fprintf(stderr, "rank %d: error: %s %s; stopping all %d ranks\n", d->rank, what, why, d->size);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1); /* MPI_Abort does not return; this is for the compiler */
}

/* Waits for req, at most d->timeout_s seconds (spinning briefly, then sleeping 50us
 * between polls: on a busy machine the other ranks need the cores). */
static int wait_bounded(mlcrt_dist *d, MPI_Request *req, const char *what) {
    double t0 = MPI_Wtime();
    for (long polls = 0;; polls++) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) give_up(d, what, "failed in MPI");
        if (done) {
            d->comm_s += MPI_Wtime() - t0;
            return 0;
        }
        if (MPI_Wtime() - t0 > d->timeout_s) {
            char why[128];
            snprintf(why, sizeof why, "timed out: no word from the other ranks for %g s (--comm-timeout)",
                     d->timeout_s);
            give_up(d, what, why);
        }
        if (polls > 200) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

/* MPI counts are ints: large arrays go in chunks, each its own all-reduce. */
#define CHUNK ((int64_t)1 << 28)

static int sum_any(mlcrt_dist *d, void *v, int64_t n, MPI_Datatype t, size_t size, const char *what) {
    for (int64_t at = 0; at < n; at += CHUNK) {
        int c = (int)(n - at < CHUNK ? n - at : CHUNK);
        MPI_Request req;
        if (MPI_Iallreduce(MPI_IN_PLACE, (char *)v + (size_t)at * size, c, t, MPI_SUM, MPI_COMM_WORLD, &req) !=
            MPI_SUCCESS)
            give_up(d, what, "failed in MPI");
        wait_bounded(d, &req, what);
    }
    return 0;
}

static int sum_f32(mlcrt_dist *d, float *v, int64_t n, const char *what) {
    return sum_any(d, v, n, MPI_FLOAT, sizeof *v, what);
}

static int sum_f64(mlcrt_dist *d, double *v, int64_t n, const char *what) {
    return sum_any(d, v, n, MPI_DOUBLE, sizeof *v, what);
}

/* The sums start_sum_f32 started and finish waits for. */
static MPI_Request *pending;
static int npending, cap_pending;

static int start_sum_f32(mlcrt_dist *d, float *v, int64_t n) {
    for (int64_t at = 0; at < n; at += CHUNK) {
        if (npending == cap_pending) {
            int cap = cap_pending ? 2 * cap_pending : 64;
            MPI_Request *p = realloc(pending, (size_t)cap * sizeof *p);
            if (!p) give_up(d, "the gradient all-reduce", "ran out of memory");
            pending = p, cap_pending = cap;
        }
        int c = (int)(n - at < CHUNK ? n - at : CHUNK);
        if (MPI_Iallreduce(MPI_IN_PLACE, v + at, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pending[npending++]) !=
            MPI_SUCCESS)
            give_up(d, "the gradient all-reduce", "failed in MPI");
    }
    /* Open MPI moves a non-blocking collective along only inside MPI calls: each new
     * bucket also advances the earlier ones */
    int all;
    if (MPI_Testall(npending, pending, &all, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
        give_up(d, "the gradient all-reduce", "failed in MPI");
    return 0;
}

static int finish(mlcrt_dist *d, const char *what) {
    for (int i = 0; i < npending; i++) wait_bounded(d, &pending[i], what);
    npending = 0;
    return 0;
}

static int gather_u64(mlcrt_dist *d, uint64_t v, uint64_t *all, const char *what) {
    MPI_Request req;
    if (MPI_Iallgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        give_up(d, what, "failed in MPI");
    return wait_bounded(d, &req, what);
}

/* Sizes first (every rank learns them), then each rank's bytes to rank 0 in pieces of at
 * most CHUNK, received in rank order and written as they come. */
static int gather_text(mlcrt_dist *d, const char *text, size_t n, FILE *out, const char *what) {
    uint64_t *len = calloc((size_t)d->size, sizeof *len);
    if (!len) give_up(d, what, "ran out of memory");
    gather_u64(d, (uint64_t)n, len, what);
    char *buf = NULL;
    if (d->rank == 0) {
        fwrite(text, 1, n, out);
        uint64_t most = 0;
        for (int r = 1; r < d->size; r++) most = len[r] > most ? len[r] : most;
        if (most && !(buf = malloc((size_t)(most < (uint64_t)CHUNK ? most : (uint64_t)CHUNK))))
            give_up(d, what, "ran out of memory");
    }
    for (int r = 1; r < d->size; r++) {
        for (uint64_t at = 0; at < len[r]; at += (uint64_t)CHUNK) {
            int c = (int)(len[r] - at < (uint64_t)CHUNK ? len[r] - at : (uint64_t)CHUNK);
            MPI_Request req;
            int rc = d->rank == 0   ? MPI_Irecv(buf, c, MPI_CHAR, r, 0, MPI_COMM_WORLD, &req)
                     : d->rank == r ? MPI_Isend(text + at, c, MPI_CHAR, 0, 0, MPI_COMM_WORLD, &req)
                                    : MPI_SUCCESS;
            if (rc != MPI_SUCCESS) give_up(d, what, "failed in MPI");
            if (d->rank == 0 || d->rank == r) wait_bounded(d, &req, what);
            if (d->rank == 0) fwrite(buf, 1, (size_t)c, out);
        }
    }
    free(buf);
    free(len);
    return 0;
}

static void abort_all(mlcrt_dist *d, int status) {
    fflush(NULL);
    (void)d;
    MPI_Abort(MPI_COMM_WORLD, status);
    _exit(status);
}

/* ---- the error stream: every line a rank writes starts with "rank R: " ---- */

typedef struct prefixed {
    int rank;
    size_t len;
    char line[1024];
} prefixed;

/* One write(2) per line, so lines of different ranks do not interleave mid-line. */
static void flush_line(prefixed *p) {
    char buf[1100];
    int k = snprintf(buf, sizeof buf, "rank %d: %.*s", p->rank, (int)p->len, p->line);
    if (k > (int)sizeof buf - 1) k = (int)sizeof buf - 1;
    if (write(STDERR_FILENO, buf, (size_t)k) < 0) { /* nowhere left to report it */
    }
    p->len = 0;
}

static ssize_t prefixed_write(void *cookie, const char *s, size_t n) {
    prefixed *p = cookie;
    for (size_t i = 0; i < n; i++) {
        p->line[p->len++] = s[i];
        if (s[i] == '\n' || p->len == sizeof p->line) flush_line(p);
    }
    return (ssize_t)n;
}

static int prefixed_close(void *cookie) {
    prefixed *p = cookie;
    if (p->len) flush_line(p);
    free(p);
    return 0;
}

static FILE *rank_stderr(int rank) {
    prefixed *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->rank = rank;
    cookie_io_functions_t io = {NULL, prefixed_write, NULL, prefixed_close};
    FILE *f = fopencookie(p, "w", io);
    if (!f) {
        free(p);
        return NULL;
    }
    setvbuf(f, NULL, _IONBF, 0); /* prefixed_write assembles the lines */
    return f;
}

/* libmlckernels' prefix for the lines its --check-finite checks print
 * (kernels/mlc_kernels.h). Weak: a CUDA trainer links no libmlckernels, and then there is
 * nothing to set (the address is NULL). */
void mlc_kernels_set_msg_prefix(const char *prefix) __attribute__((weak));

int mlcrt_mpi_main(int argc, char **argv, const mlc_model_api *api,
                   int (*setup_device)(mlcrt_dist *d, int local_rank, int local_size)) {
    /* the loader thread and OpenMP's never call MPI: the main thread does it all */
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    /* static: never beside a buffer on the stack, which a collective of mismatched sizes
     * could overrun (the start-up agreement compares the settings to prevent that) */
    static mlcrt_dist d = {.size = 1,
                           .timeout_s = 120.0,
                           .sum_f32 = sum_f32,
                           .sum_f64 = sum_f64,
                           .start_sum_f32 = start_sum_f32,
                           .finish = finish,
                           .gather_u64 = gather_u64,
                           .gather_text = gather_text,
                           .abort = abort_all};
    MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d.size);
    FILE *err = rank_stderr(d.rank);
    FILE *out = d.rank == 0 ? stdout : fopen("/dev/null", "w");
    /* a bad command line's message, held until the start-up agreement (dist.h) */
    char *held = NULL;
    size_t held_len = 0;
    d.cli_err = open_memstream(&held, &held_len);
    static char prefix[32];
    snprintf(prefix, sizeof prefix, "rank %d: ", d.rank);
    if (mlc_kernels_set_msg_prefix) mlc_kernels_set_msg_prefix(prefix);
    int status;
    if (!err || !out || !d.cli_err) {
        fprintf(stderr, "rank %d: error: cannot open its output streams\n", d.rank);
        abort_all(&d, 1);
    }
    if (setup_device) {
        MPI_Comm node;
        int local = 0, local_size = 1;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
            MPI_Comm_rank(node, &local);
            MPI_Comm_size(node, &local_size);
            MPI_Comm_free(&node);
        }
        if (setup_device(&d, local, local_size)) abort_all(&d, 1);
    }
    status = mlcrt_main_dist(argc, argv, api, &d, out, err);
    fclose(d.cli_err);
    d.cli_err = NULL;
    /* a rank that stopped before the start-up agreement (its command line, its data)
     * takes part in it as failed, so that the others stop instead of waiting for it */
    if (status != 0 && !d.joined_start) mlcrt_dist_join_failed(&d, held, err);
    else if (held && *held) fputs(held, err);
    free(held);
    /* a sum started and never finished reads a buffer the trainer has freed by now:
     * MPI_Finalize would send from freed memory (a crash, or garbage to the others) */
    if (npending) {
        fprintf(err, "error: internal: %d gradient sums never finished; stopping all %d ranks\n", npending, d.size);
        abort_all(&d, 1);
    }
    fclose(err);
    free(pending);
    if (out != stdout) fclose(out);
    fflush(stdout);
    MPI_Finalize();
    return status;
}
