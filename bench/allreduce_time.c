/* bench/allreduce_time.c - what an all-reduce of a gradient slab costs alone: the median
 * time of an in-place float-sum all-reduce of BYTES over the job's ranks, over REPS calls
 * after 3 warm-up calls, waited for as the trainer waits (runtime/dist_mpi.c:
 * MPI_Iallreduce polled with MPI_Test, sleeping 50 us between polls after the first 200). bench/dist.sh compares it with the time a data-parallel
 * trainer spends in its collectives.
 *
 * usage: mpirun -np N bench/allreduce_time BYTES [REPS]   (prints on rank 0: "allreduce_ms X") */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long n = argc > 1 ? atol(argv[1]) / 4 : 0, reps = argc > 2 ? atol(argv[2]) : 50;
    float *v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    double *t = calloc((size_t)(reps > 0 ? reps : 1), sizeof *t);
    if (n < 1 || reps < 1 || !v || !t) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np N allreduce_time BYTES [REPS]\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    for (long i = -3; i < reps; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        for (long polls = 0;; polls++) {
            int done = 0;
            MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            if (done) break;
            if (polls > 200) {
                struct timespec ts = {0, 50000};
                nanosleep(&ts, NULL);
            }
        }
        if (i >= 0) t[i] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (rank == 0) printf("allreduce_ms %.4f\n", 1e3 * t[reps / 2]);
    free(v);
    free(t);
    MPI_Finalize();
    return 0;
}
