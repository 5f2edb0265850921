/* test_report_scale.c - `mlc net.mdl --report --ranks N` (compiler/driver/report_scale.c)
 * through the mlc executable on samples/mlp.mdl: the gradient bytes are the parameters'
 * (16-float aligned slots); every row's all-reduce time is the ring formula
 * 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency of the --link given, its compute time
 * the forward-backward's FLOPs scaled to ceil(B / N) samples plus the update's, at --flops;
 * the step without overlap is their sum; the verdict line names the fastest row; and the
 * flags' mistakes get one exact error line each. */
#include <criterion/criterion.h>
#include <math.h>

#include "ctest_util.h"

#ifndef MLC_EXE
#error "MLC_EXE must be defined (the mlc executable built by meson)"
#endif

static char *run(char **argv, int want) {
    char *out = NULL;
    int st = ct_run(argv, &out);
    cr_assert_eq(st, want, "status %d:\n%s", st, out);
    return out;
}

Test(report_scale, rows_follow_the_model) {
    char *argv[] = {MLC_EXE,      MLC_SOURCE_ROOT "/samples/mlp.mdl",
                    "--report",   "--ranks",
                    "48",         "--link",
                    "25GB/s,2us", "--flops",
                    "50G",        NULL};
    char *out = run(argv, 0);
    const char *sec = strstr(out,
                             "== data parallelism (--ranks 48; ring all-reduce over a link of 25 GB/s and 2 us; "
                             "50 GFLOP/s per rank) ==\n");
    cr_assert_not_null(sec, "%s", out);
    double bytes, f_fb, f_upd;
    cr_assert_eq(sscanf(strstr(sec, "gradient bytes per step: "), "gradient bytes per step: %lf", &bytes), 1);
    /* mlp: 784x256 + 256, 256x128 + 128, 128x10 + 10 floats, each slot rounded up to 16 */
    cr_expect_eq(bytes, 4.0 * (200704 + 256 + 32768 + 128 + 1280 + 16), "%s", sec);
    cr_assert_eq(sscanf(strstr(sec, "train step at global batch 64: "),
                        "train step at global batch 64: forward-backward %lf GFLOP, update %lf GFLOP", &f_fb, &f_upd),
                 2);
    const char *line = strstr(sec, "efficiency\n");
    cr_assert_not_null(line);
    line += strlen("efficiency\n");
    int want_n[] = {1, 2, 4, 8, 16, 32, 48}, rows = 0, best = 0;
    double best_t = 1e30;
    for (; rows < 7; rows++) {
        int n, b;
        double comp, comm, serial, overlap;
        cr_assert_eq(sscanf(line, "%d %d %lf %lf %lf %lf", &n, &b, &comp, &comm, &serial, &overlap), 6, "%.200s", line);
        cr_expect_eq(n, want_n[rows]);
        cr_expect_eq(b, (64 + n - 1) / n);
        double ring = n > 1 ? 2.0 * (n - 1) / n * bytes / 25e9 + 2.0 * (n - 1) * 2e-6 : 0;
        double compute = (f_fb * 1e9 * b / 64 + f_upd * 1e9) / 50e9;
        cr_expect_leq(fabs(comm - 1e3 * ring), 1e-4, "%d ranks: all-reduce %.4f ms, ring %.6f ms", n, comm, 1e3 * ring);
        /* the GFLOP figures are printed to 4 digits */
        cr_expect_leq(fabs(comp - 1e3 * compute), 1e-3 * 1e3 * compute + 1e-4, "%d ranks: compute %.4f ms, want %.6f",
                      n, comp, 1e3 * compute);
        cr_expect_leq(fabs(serial - comp - comm), 1.5e-4);
        cr_expect_leq(fabs(overlap - fmax(comp, comm)), 1e-4);
        if (serial < best_t) best_t = serial, best = n;
        line = strchr(line, '\n') + 1;
    }
    char verdict[96];
    snprintf(verdict, sizeof verdict, "scaling: the step is shortest at %d ranks (", best);
    cr_expect(!strncmp(line, verdict, strlen(verdict)), "%.200s", line);
    cr_expect(strstr(line, "tensor parallelism: each matmul of the forward split over 8 GPUs"), "%s", line);
    free(out);
}

Test(report_scale, bad_flags) {
    // clang-format off
    struct {
        char *args[4];
        const char *err;
    } cases[] = {
        {{"--ranks", "4", NULL}, "mlc: error: --ranks, --link, --flops and --tp go with --report --ranks N\n"},
        {{"--report", "--ranks", "0", NULL}, "mlc: error: --ranks: expected a positive integer, found '0'\n"},
        {{"--report", "--link", "1Gbps", NULL},
         "mlc: error: --link: expected BANDWIDTH,LATENCY like 100Gb/s,5us (b/s: bits, B/s: bytes, prefixes K M G T; "
         "latency in ns, us, ms or s), found '1Gbps'\n"},
        {{"--report", "--flops", "3X", NULL}, "mlc: error: --flops: expected a rate like 20T or 100GFLOP/s, found '3X'\n"},
        /* rates no machine has made the model's times inf or 0 and its verdicts false */
        {{"--report", "--flops", "1e-300", NULL},
         "mlc: error: --flops: expected a rate like 20T or 100GFLOP/s, from 1 to 1e24 FLOP/s, found '1e-300'\n"},
        {{"--report", "--link", "1e30B/s,1us", NULL},
         "mlc: error: --link: expected BANDWIDTH,LATENCY like 100Gb/s,5us (b/s: bits, B/s: bytes, prefixes K M G T; "
         "latency in ns, us, ms or s; from 1 B/s to 1e24 B/s, a latency from 0 to 1000 s), found '1e30B/s,1us'\n"},
        {{"--report", "--link", "1GB/s,-1us", NULL},
         "mlc: error: --link: expected BANDWIDTH,LATENCY like 100Gb/s,5us (b/s: bits, B/s: bytes, prefixes K M G T; "
         "latency in ns, us, ms or s), found '1GB/s,-1us'\n"},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {MLC_EXE, MLC_SOURCE_ROOT "/samples/mlp.mdl"};
        for (int k = 0; cases[i].args[k]; k++) argv[2 + k] = cases[i].args[k];
        char *out = run(argv, 2);
        cr_expect_str_eq(out, cases[i].err);
        free(out);
    }
}

/* A latency of 0 leaves the link's start-up cost out: the all-reduce is its bytes alone. */
Test(report_scale, a_link_without_latency) {
    char *argv[] = {MLC_EXE,       MLC_SOURCE_ROOT "/samples/mlp.mdl",
                    "-o",          "/dev/null",
                    "--report",    "--ranks",
                    "2",           "--link",
                    "100Gb/s,0us", NULL};
    char *out = run(argv, 0);
    cr_assert(strstr(out, "over a link of 12.5 GB/s and 0 us"), "%s", out);
    free(out);
}
