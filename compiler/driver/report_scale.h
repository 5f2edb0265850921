/* report_scale.h - `mlc --report --ranks N`: modelled data-parallel scaling and tensor
 * parallelism of a compiled model (report_scale.c). */
#ifndef MLC_REPORT_SCALE_H
#define MLC_REPORT_SCALE_H

#include <stdio.h>

#include "model.h"

typedef struct ScaleOptions {
    int ranks;               /* --ranks: the table runs 1, 2, 4, ... up to it */
    double link_bytes_per_s; /* --link BW,LAT */
    double link_latency_s;
    double flops_per_s; /* --flops: sustained FLOP/s of one rank */
    int tp;             /* --tp: GPUs a matmul is split over */
} ScaleOptions;

void print_scale_report(FILE *out, const ModelIR *m, const ScaleOptions *s);

/* "100Gb/s,5us" -> bytes/s and seconds; "10T" or "10TFLOP/s" -> FLOP/s. 0 on success, -1
 * when malformed, -2 when out of range: a rate (bytes or FLOP per second) from 1 to 1e24,
 * a latency of at most 1000 s. */
int parse_link(const char *s, double *bytes_per_s, double *latency_s);
int parse_rate(const char *s, double *per_s);

#endif
