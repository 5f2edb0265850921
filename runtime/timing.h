/* timing.h - monotonic wall-clock time for the trainer's per-epoch timings. */
#ifndef MLCRT_TIMING_H
#define MLCRT_TIMING_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC); only differences mean
 * anything. */
double mlcrt_now(void);

#endif
