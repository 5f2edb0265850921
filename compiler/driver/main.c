/* main.c - the mlc command line: parse a .mdl, run the middle end, emit a target.
 *
 *   mlc net.mdl -o net.c [--target c|cuda] [--batch N] [--mem-budget BYTES] [--dump-ir=STAGE] [--debug]
 *   mlc build net.mdl -o net [--target c|cuda] [--batch N] [--mem-budget BYTES] [--cuda-arch LIST] [--cc CC]
 *             [--mpi] [--keep] [--debug] [-v]
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ast.h"
#include "driver.h"
#include "file_kind.h"
#include "passes.h"
#include "report.h"
#include "report_scale.h"
#include "settings.def" /* MLC_MAX_BATCH */
#include "write_check.h"

static const char usage[] =
    "usage: mlc FILE.mdl [-o OUT.c|OUT.cu] [--target c|cuda] [--batch N] [--mem-budget BYTES]\n"
    "                    [--threads N] [--tf32] [--cublaslt] [--precision P] [--conv-algo A]\n"
    "                    [--dump-ir=STAGE]\n"
    "                    [--report [--ranks N [--link BW,LAT] [--flops RATE] [--tp P]]] [--debug]\n"
    "       mlc build FILE.mdl -o BINARY [--target c|cuda] [--batch N] [--mem-budget BYTES] [--threads N]\n"
    "                                    [--tf32] [--cublaslt] [--precision P] [--conv-algo A]\n"
    "                                    [--cuda-arch LIST]\n"
    "                                    [--cc CC] [--mpi]\n"
    "                                    [--keep] [--debug] [-v]\n"
    "\n"
    "  -o PATH          where to write the source (its header goes beside it, .h); never the\n"
    "                   input, and not a .h (the header's own name); a device, FIFO or path in\n"
    "                   /dev or /proc (-o /dev/null, -o /dev/stdout) gets the source alone;\n"
    "                   a regular file and its header are replaced together or not at all;\n"
    "                   through a link, its target (a loop of links is refused);\n"
    "                   build: the trainer, linked beside it and renamed over it once\n"
    "                   linked (a failed build leaves the old one)\n"
    "                   without -o, mlc checks the model and writes no source\n"
    "  --target T       c (default: C11 + OpenBLAS + OpenMP) or cuda (kernels + cuBLAS)\n"
    "  --batch N        the batch size the shapes are checked with, 1 to 1048576 (default:\n"
    "                   train.batch)\n"
    "  --mem-budget BYTES  fit the train step's arena at that batch size into BYTES (suffix\n"
    "                   K, M or G: KiB, MiB, GiB) by recomputing cheap activations in the\n"
    "                   backward; an error says how small it can get when it cannot; not\n"
    "                   with --debug (its arena reuses no buffers)\n"
    "  --threads N      the thread count --report and --mem-budget size the arena for\n"
    "                   (1 to 4096, default 1): the C target's convs take a scratch slot per\n"
    "                   thread; a trainer sizes its arena for the threads it runs with\n"
    "  --tf32           cuda: let cuBLAS use TF32 tensor cores for GEMMs and convolutions\n"
    "                   (inputs rounded to 10-bit mantissas, FP32 sums; PyTorch's default for\n"
    "                   cuDNN convolutions); without it every product is full FP32\n"
    "  --cublaslt       cuda: a matmul followed by a bias add, or a bias add and ReLU, runs as\n"
    "                   one cuBLASLt call with that epilogue instead of cuBLAS and a kernel\n"
    "                   (off by default until a GPU has timed the two; --report lists which)\n"
    "  --precision P    fp32 (the default) or bf16: the inputs and outputs of every matmul,\n"
    "                   convolution and attention rounded to bfloat16 (FP32 sums), so are\n"
    "                   their gradients; FP32 master weights, optimizer state, batch-norm\n"
    "                   statistics, softmax and loss. Both targets round the same way; the\n"
    "                   CUDA target stores the rounded tensors as bfloat16 (--report: the\n"
    "                   memory saved)\n"
    "  --conv-algo A    c: how 3x3 stride-1 convolutions run: direct, winograd (F(2x2, 3x3)\n"
    "                   for all three ops of every such layer), winograd4 (F(4x4, 3x3) for\n"
    "                   all three; the weight gradient where it runs 8 samples at a time,\n"
    "                   else F(2x2, 3x3)) or auto (the default: Winograd where it measured\n"
    "                   faster, README.md gives the rule); cuda: how every convolution runs:\n"
    "                   im2col (columns for cuBLAS GEMMs; auto, the default, until measured),\n"
    "                   implicit (GEMMs that gather their own tiles: on the tensor cores\n"
    "                   with --precision bf16 or --tf32, else FP32 FMAs; sm_80 or newer)\n"
    "                   or cudnn (cuDNN's deterministic algorithms, bias, residual and ReLU\n"
    "                   in its fused call, bf16 x, w and y under --precision bf16; links\n"
    "                   libcudnn);\n"
    "                   --report says which each uses\n"
    "  --dump-ir=STAGE  print the IR: after:PASS (after that pass, on the train step and\n"
    "                   the eval graph where it runs on both; the passes are listed below),\n"
    "                   all (after every pass), final (as emitted), lower and autodiff\n"
    "                   (= after:lower, after:autodiff), dot (one Graphviz document of\n"
    "                   the compiled graphs, fused groups as clusters; dot:train,\n"
    "                   dot:eval, dot:forward for one graph or the train step's forward\n"
    "                   part); repeat the option to combine. A pass this run skips\n"
    "                   (precision, recompute) dumps nothing, with a note on stderr\n"
    "  --report         print each tensor's bytes, lifetime and arena offset, each kernel's\n"
    "                   FLOPs and bytes moved, the totals, and (C target) each convolution's\n"
    "                   kernel variant and vector width\n"
    "  --ranks N        with --report: model data-parallel training on 1, 2, 4, ... N ranks\n"
    "                   (the compile-time batch as the global batch): compute and ring\n"
    "                   all-reduce time per step, and where scaling stops; and splitting each\n"
    "                   matmul over --tp P GPUs (default 8); N and P: 1 to 1048576.\n"
    "                   docs/distributed.md\n"
    "  --link BW,LAT    the link between ranks, e.g. 100Gb/s,5us (the default) or 25GB/s,2us\n"
    "  --flops RATE     sustained FLOP/s of one rank, e.g. 20T (default: 20T for cuda, 100G for c)\n"
    "  --cuda-arch LIST build, cuda: the GPU generations the binary runs on, e.g. sm_90 or\n"
    "                   sm_80,sm_89,sm_90 (default: the GPUs nvidia-smi finds, else\n"
    "                   sm_80,sm_89,sm_90); the newest is also embedded as PTX\n"
    "  --cc CC          build: the C compiler (default: cc; nvcc for cuda)\n"
    "  --mpi            build: a data-parallel trainer, run as `mpirun -np N ./net ...`\n"
    "                   (links libmlcrt_mpi and MPI; docs/distributed.md)\n"
    "  --keep           build: keep the generated sources beside the binary\n"
    "  --debug          c: no fusion, no buffer reuse, and a #line naming the .mdl line of\n"
    "                   every line of a node's code, so gdb steps through the network's\n"
    "                   source (build: compiled -g -O0); slower, the same results\n"
    "  -v               build: print the compiler commands\n";

/* "lower, autodiff, ..." from the pass table, for messages. */
static void pass_list(char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int p = 0; p < PASS_COUNT && k < cap; p++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", p ? ", " : "", pass_names[p]);
}

/* The --dump-ir stages of DotGraphs, in its order. */
static const char *const dot_stages[] = {"", "dot", "dot:train", "dot:eval", "dot:forward"};

static DotGraphs dot_stage(const char *stage) {
    for (int k = DOT_BOTH; k <= DOT_FORWARD; k++)
        if (!strcmp(stage, dot_stages[k])) return (DotGraphs)k;
    return DOT_NONE;
}

/* --dump-ir=STAGE; repeated options add up (but for dot stages). Prints its own error. */
static int parse_dump(Options *o, const char *stage) {
    DumpOptions *d = &o->dump;
    char passes[256];
    pass_list(passes, sizeof passes);
    d->out = stdout;
    if (!strncmp(stage, "after:", 6)) {
        PassId p = pass_by_name(stage + 6);
        if (p == PASS_COUNT) {
            const char *near = diag_nearest(stage + 6, pass_names, PASS_COUNT);
            char hint[96] = "";
            if (near) snprintf(hint, sizeof hint, "did you mean '%s'? ", near);
            fprintf(stderr, "mlc: error: --dump-ir=%s: no pass named '%s'; %sthe passes: %s\n", stage, stage + 6, hint,
                    passes);
            return -1;
        }
        d->after |= DUMP_AFTER(p);
        o->dump_named |= DUMP_AFTER(p);
    } else if (!strcmp(stage, "lower")) {
        d->after |= DUMP_AFTER(PASS_lower);
    } else if (!strcmp(stage, "autodiff")) {
        d->after |= DUMP_AFTER(PASS_autodiff);
    } else if (!strcmp(stage, "final")) {
        d->final = 1;
    } else if (!strcmp(stage, "all")) {
        d->after |= DUMP_AFTER_ALL;
    } else if (dot_stage(stage) != DOT_NONE) {
        /* one Graphviz document per run: two would make stdout no document at all */
        if (d->dot) {
            fprintf(stderr,
                    "mlc: error: --dump-ir=%s: one dot stage per run (one Graphviz document), found %s before it\n",
                    stage, dot_stages[d->dot]);
            return -1;
        }
        d->dot = dot_stage(stage);
    } else {
        fprintf(stderr,
                "mlc: error: unknown IR stage '%s' (expected lower, autodiff, final, all, dot, dot:train, dot:eval, "
                "dot:forward or after:PASS, "
                "PASS one of: %s)\n",
                stage, passes);
        return -1;
    }
    return 0;
}

/* The ranges of the integer options (the usage text states them too). */
enum { MAX_THREADS = 4096, MAX_RANKS = 1 << 20 };

/* "65536", "64K", "64M", "2G" (1024-based); 0 when malformed or not positive, -1 when
 * past INT64_MAX bytes. */
static int64_t parse_bytes(const char *s) {
    if (*s < '0' || *s > '9') return 0; /* strtoll would skip blanks and take a sign */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || v <= 0 || (errno && errno != ERANGE)) return 0;
    int shift = 0;
    switch (*end) {
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    default: break;
    }
    if (*end) return 0;
    if (errno == ERANGE || v > (INT64_MAX >> shift)) return -1;
    return (int64_t)v << shift;
}

/* An integer option's value, from 1 to max, into *out; else a one-line error. Like the
 * trainer's flags: a number past the range says the range, anything else asks for a
 * positive integer. */
static int parse_count(const char *flag, const char *val, long max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    /* digits only: strtol would skip leading blanks and take a '+' */
    if (*val >= '0' && *val <= '9' && !*end && !errno && v >= 1 && v <= max) {
        *out = (int)v;
        return 0;
    }
    int digits = *val != 0, nonzero = 0;
    for (const char *p = val; *p; p++) digits &= *p >= '0' && *p <= '9', nonzero |= *p > '0' && *p <= '9';
    if (digits && nonzero)
        fprintf(stderr, "mlc: error: %s: expected an integer from 1 to %ld, found '%s'\n", flag, max, val);
    else fprintf(stderr, "mlc: error: %s: expected a positive integer, found '%s'\n", flag, val);
    return -1;
}

/* 1 (after the error) when option a was given before: the second would silently replace
 * the first (`-o a.c -o b.c` wrote only b.c). --dump-ir is not one: its stages add up. */
static int given_twice(const char *a, const char *val, const char **seen_opt, const char **seen_val, int *nseen) {
    for (int k = 0; k < *nseen; k++) {
        if (strcmp(seen_opt[k], a)) continue;
        if (val) fprintf(stderr, "mlc: error: %s given twice ('%s', then '%s'; give it once)\n", a, seen_val[k], val);
        else fprintf(stderr, "mlc: error: %s given twice (give it once)\n", a);
        return 1;
    }
    if (*nseen < 64) seen_opt[*nseen] = a, seen_val[(*nseen)++] = val;
    return 0;
}

/* The options into o: 0, -1 after a one-line error, 1 after printing --help. */
static int parse_args(int argc, char **argv, Options *o, int *build) {
    int i = 1;
    const char *seen_opt[64], *seen_val[64];
    int nseen = 0;
    o->target = &target_c;
    if (i < argc && !strcmp(argv[i], "build")) *build = 1, i++;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            char passes[256];
            pass_list(passes, sizeof passes);
            printf("%s\npasses, in order (--dump-ir=after:PASS): %s\n", usage, passes);
            return 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--batch") || !strcmp(a, "--cc") ||
                   !strcmp(a, "--mem-budget") || !strcmp(a, "--threads") || !strcmp(a, "--cuda-arch") ||
                   !strcmp(a, "--ranks") || !strcmp(a, "--link") || !strcmp(a, "--flops") || !strcmp(a, "--tp") ||
                   !strcmp(a, "--conv-algo") || !strcmp(a, "--precision")) {
            if (!val) {
                fprintf(stderr, "mlc: error: %s needs a value\n", a);
                return -1;
            }
            if (given_twice(a, val, seen_opt, seen_val, &nseen)) return -1;
            i++;
            if (!strcmp(a, "-o")) o->output = val;
            if (!strcmp(a, "--cc")) o->cc = val;
            if (!strcmp(a, "--cuda-arch")) o->arch = val;
            if (!strcmp(a, "--target") && !(o->target = target_by_name(val))) {
                fprintf(stderr, "mlc: error: unknown target '%s' (expected c or cuda)\n", val);
                return -1;
            }
            if (!strcmp(a, "--batch") && parse_count(a, val, MLC_MAX_BATCH, &o->batch)) return -1;
            if (!strcmp(a, "--threads") && parse_count(a, val, MAX_THREADS, &o->threads)) return -1;
            if (!strcmp(a, "--ranks") && parse_count(a, val, MAX_RANKS, &o->scale.ranks)) return -1;
            if (!strcmp(a, "--tp") && parse_count(a, val, MAX_RANKS, &o->scale.tp)) return -1;
            int bad = !strcmp(a, "--link") ? parse_link(val, &o->scale.link_bytes_per_s, &o->scale.link_latency_s) : 0;
            if (bad) {
                fprintf(stderr,
                        "mlc: error: --link: expected BANDWIDTH,LATENCY like 100Gb/s,5us (b/s: bits, B/s: "
                        "bytes, prefixes K M G T; latency in ns, us, ms or s%s), found '%s'\n",
                        bad == -2 ? "; from 1 B/s to 1e24 B/s, a latency from 0 to 1000 s" : "", val);
                return -1;
            }
            bad = !strcmp(a, "--flops") ? parse_rate(val, &o->scale.flops_per_s) : 0;
            if (bad) {
                fprintf(stderr, "mlc: error: --flops: expected a rate like 20T or 100GFLOP/s%s, found '%s'\n",
                        bad == -2 ? ", from 1 to 1e24 FLOP/s" : "", val);
                return -1;
            }
            if (!strcmp(a, "--conv-algo")) {
                static const char *const names[] = CONV_ALGO_NAMES;
                _Static_assert(sizeof names / sizeof names[0] == CONV_ALGO_COUNT, "a name for each ConvAlgo");
                int k = 0;
                while (k < CONV_ALGO_COUNT && strcmp(val, names[k])) k++;
                if (k == CONV_ALGO_COUNT) {
                    fprintf(stderr,
                            "mlc: error: --conv-algo: expected direct, winograd, winograd4 (c), im2col, implicit, "
                            "cudnn (cuda) or auto, found '%s'\n",
                            val);
                    return -1;
                }
                o->conv_algo = (ConvAlgo)k;
            }
            if (!strcmp(a, "--precision")) {
                if (strcmp(val, "fp32") && strcmp(val, "bf16")) {
                    fprintf(stderr, "mlc: error: --precision: expected fp32 or bf16, found '%s'\n", val);
                    return -1;
                }
                o->bf16 = !strcmp(val, "bf16");
            }
            if (!strcmp(a, "--mem-budget") && (o->mem_budget = parse_bytes(val)) <= 0) {
                fprintf(stderr,
                        "mlc: error: --mem-budget: expected a positive byte count like 65536, 64K, 64M or 2G%s, "
                        "found '%s'\n",
                        o->mem_budget < 0 ? " (at most 2^63 - 1 bytes)" : "", val);
                return -1;
            }
        } else if (!strncmp(a, "--dump-ir=", 10)) {
            if (parse_dump(o, a + 10)) return -1;
        } else if ((!strcmp(a, "--report") || !strcmp(a, "--tf32") || !strcmp(a, "--cublaslt") || !strcmp(a, "--mpi") ||
                    !strcmp(a, "--debug") || !strcmp(a, "--keep") || !strcmp(a, "-v")) &&
                   given_twice(a, NULL, seen_opt, seen_val, &nseen)) {
            return -1;
        } else if (!strcmp(a, "--report")) {
            o->report = 1;
        } else if (!strcmp(a, "--tf32")) {
            o->tf32 = 1;
        } else if (!strcmp(a, "--cublaslt")) {
            o->cublaslt = 1;
        } else if (!strcmp(a, "--mpi")) {
            o->mpi = 1;
        } else if (!strcmp(a, "--debug")) {
            o->debug = 1;
        } else if (!strcmp(a, "--keep")) {
            o->keep = 1;
        } else if (!strcmp(a, "-v")) {
            o->verbose = 1;
        } else if (!strcmp(a, "--dump-ir")) {
            /* `--dump-ir final` would take "final" as the input file */
            fprintf(stderr, "mlc: error: --dump-ir takes its stage after '=': expected --dump-ir=%s\n",
                    val && val[0] != '-' ? val : "STAGE (mlc --help lists the stages)");
            return -1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mlc: error: unknown option '%s' (mlc --help lists the options)\n", a);
            return -1;
        } else if (o->input) {
            fprintf(stderr, "mlc: error: more than one input file ('%s' and '%s')\n", o->input, a);
            return -1;
        } else {
            o->input = a;
        }
    }
    if (!o->input) {
        fprintf(stderr, "mlc: error: no input file (usage: mlc FILE.mdl [options]; mlc --help lists them)\n");
        return -1;
    }
    /* every value but auto belongs to one target; the other would silently run its default */
    static const char *const algo_names[] = CONV_ALGO_NAMES;
    int c_algo =
        o->conv_algo == CONV_ALGO_DIRECT || o->conv_algo == CONV_ALGO_WINOGRAD || o->conv_algo == CONV_ALGO_WINOGRAD4;
    if (c_algo && o->target->kind != TARGET_C) {
        fprintf(stderr,
                "mlc: error: --conv-algo %s is for --target c (the CUDA target's are im2col, implicit, cudnn or "
                "auto)\n",
                algo_names[o->conv_algo]);
        return -1;
    }
    if (!c_algo && o->conv_algo != CONV_ALGO_AUTO && o->target->kind != TARGET_CUDA) {
        fprintf(stderr,
                "mlc: error: --conv-algo %s is for --target cuda (the C target's are direct, winograd, winograd4 or "
                "auto)\n",
                algo_names[o->conv_algo]);
        return -1;
    }
    if (o->tf32 && o->target->kind != TARGET_CUDA) {
        fprintf(stderr, "mlc: error: --tf32 is for --target cuda (the C target's GEMMs are FP32)\n");
        return -1;
    }
    if (o->cublaslt && o->target->kind != TARGET_CUDA) {
        fprintf(stderr,
                "mlc: error: --cublaslt is for --target cuda (the C target runs a GEMM's epilogue on each block of "
                "its output already)\n");
        return -1;
    }
    if (o->debug && o->target->kind != TARGET_C) {
        fprintf(stderr, "mlc: error: --debug is for --target c (#line directives into the .mdl)\n");
        return -1;
    }
    if (o->debug && o->mem_budget) {
        /* recomputation fits a plan that reuses buffers; --debug's keeps every value */
        fprintf(stderr, "mlc: error: --mem-budget does not apply with --debug, whose arena reuses no buffers\n");
        return -1;
    }
    if (o->arch && !o->target->build->arch_flags) {
        fprintf(stderr, "mlc: error: --cuda-arch is for --target cuda\n");
        return -1;
    }
    if (o->arch && !*build) {
        fprintf(stderr,
                "mlc: error: --cuda-arch is for mlc build (the emitted .cu builds for any GPU; give nvcc "
                "the architecture)\n");
        return -1;
    }
    if (o->arch && o->target->build->arch_check(
                       o->arch, o->conv_algo == CONV_ALGO_IMPLICIT || o->conv_algo == CONV_ALGO_CUDNN ? 80 : 0))
        return -1;
    if ((o->scale.ranks || o->scale.link_bytes_per_s > 0 || o->scale.flops_per_s > 0 || o->scale.tp) &&
        !(o->report && o->scale.ranks)) {
        fprintf(stderr, "mlc: error: --ranks, --link, --flops and --tp go with --report --ranks N\n");
        return -1;
    }
    if (!o->scale.link_bytes_per_s) o->scale.link_bytes_per_s = 100e9 / 8, o->scale.link_latency_s = 5e-6;
    if (!o->scale.flops_per_s) o->scale.flops_per_s = o->target->kind == TARGET_CUDA ? 20e12 : 100e9;
    if (!o->scale.tp) o->scale.tp = 8;
    static const struct {
        const char *flag, *why;
    } build_only[] = {{"--mpi", "it chooses what the trainer links"},
                      {"--cc", "it names the compiler mlc build runs"},
                      {"--keep", "it keeps the trainer's sources; the emitted ones stay anyway"},
                      {"-v", "it prints the compiler commands"}};
    const int given[] = {o->mpi, o->cc != NULL, o->keep, o->verbose};
    for (int k = 0; k < 4 && !*build; k++)
        if (given[k]) {
            fprintf(stderr, "mlc: error: %s is for mlc build (%s)\n", build_only[k].flag, build_only[k].why);
            return -1;
        }
    if (*build && !o->output) {
        fprintf(stderr, "mlc: error: mlc build needs -o BINARY\n");
        return -1;
    }
    return 0;
}

/* Everything after setjmp lives here, so no local changes between setjmp and longjmp. */
static int compile(const Options *o, int build, const SrcFile *src, Arena *arena) {
    jmp_buf on_error;
    if (!DIAG_TRY(on_error)) return 1;
    Program *prog = parse_program(arena, src);
    CompileOptions co = {.batch = o->batch,
                         .mem_budget = o->mem_budget,
                         .target = o->target->kind,
                         .threads = o->threads,
                         .tf32 = o->tf32,
                         .cublaslt = o->cublaslt,
                         .bf16 = o->bf16,
                         .debug = o->debug,
                         .conv_algo = o->conv_algo};
    ModelIR *m = compile_model_opts(arena, prog, &co, &o->dump);
    if (o->report) print_report(stdout, m);
    if (o->report && o->scale.ranks) print_scale_report(stdout, m, &o->scale);
    if (build) return build_trainer(m, o);
    if (o->output) {
        char hdr[PATH_MAX + 8];
        return write_model_sources(m, o->target, o->output, hdr, sizeof hdr);
    }
    return 0;
}

/* The largest source mlc reads: far beyond any real network description, small enough that
 * reading it cannot exhaust memory. */
#define MAX_SOURCE_BYTES (16 << 20)

static SrcFile *cannot_read(const char *path, const char *why) {
    fprintf(stderr, "%s: error: cannot read: %s\n", path, why);
    return NULL;
}

static SrcFile *too_large(const char *path, const char *more, long long bytes) {
    fprintf(stderr, "%s: error: the source is %s%lld bytes; expected at most %d (16 MiB)\n", path, more, bytes,
            MAX_SOURCE_BYTES);
    return NULL;
}

/* The source, read whole: a regular file of at most MAX_SOURCE_BYTES. Checked with stat
 * before it is opened (opening a FIFO waits for a writer; /dev/zero never ends) and
 * bounded while it is read (a file may grow; /proc files say they hold 0 bytes). NULL
 * after a one-line error. */
static SrcFile *read_source(const char *path) {
    struct stat st;
    if (stat(path, &st)) return cannot_read(path, strerror(errno));
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: error: expected a regular file (a .mdl source), found %s\n", path,
                mlcrt_file_kind_name((unsigned)st.st_mode));
        return NULL;
    }
    if (st.st_size > MAX_SOURCE_BYTES) return too_large(path, "", (long long)st.st_size);
    FILE *fp = fopen(path, "rb");
    if (!fp) return cannot_read(path, strerror(errno));
    char *text = malloc(MAX_SOURCE_BYTES + 2); /* its pages are touched only as far as the file goes */
    size_t len = text ? fread(text, 1, MAX_SOURCE_BYTES + 1, fp) : 0;
    int err = ferror(fp) ? errno : 0;
    fclose(fp);
    SrcFile *f = text && !err && len <= MAX_SOURCE_BYTES ? calloc(1, sizeof *f) : NULL;
    char *name = f ? strdup(path) : NULL;
    if (name) {
        text[len] = 0;
        *f = (SrcFile){.name = name, .text = text, .len = len};
        return f;
    }
    free(text);
    free(f);
    if (err) return cannot_read(path, strerror(err));
    if (len > MAX_SOURCE_BYTES) return too_large(path, "more than ", MAX_SOURCE_BYTES);
    return cannot_read(path, "out of memory");
}

/* Whether `#include "name"` names the file: a header name has no escapes, so it cannot
 * hold a '"', and a backslash or a control byte in one is the compiler's to read as it likes. */
static int includable(const char *name) {
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p == '"' || *p == '\\' || *p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

/* Refuses, before anything is written, an output that would destroy a file this run needs:
 * -o naming the input (also through a link), the header beside the source being the
 * source itself (-o net.h) or the input, and a header name the source cannot #include. */
static int check_outputs(const Options *o, int build) {
    if (!o->output) return 0;
    if (same_file(o->output, o->input)) {
        fprintf(stderr, "mlc: error: -o '%s' is the input file '%s'; give the output another name\n", o->output,
                o->input);
        return -1;
    }
    if (build || !header_beside(o->output)) return 0; /* build_trainer checks its work files */
    char hdr[PATH_MAX + 8];
    if (header_path(o->output, hdr, sizeof hdr)) {
        fprintf(stderr, "mlc: error: -o '%.64s...': expected a path of at most %d bytes\n", o->output, PATH_MAX + 5);
        return -1;
    }
    const char *base = strrchr(hdr, '/') ? strrchr(hdr, '/') + 1 : hdr;
    if (same_file(hdr, o->output)) {
        fprintf(stderr,
                "mlc: error: -o '%s': the header (the source's name with .h) would overwrite the source; expected "
                "a name like '%.*s%s'\n",
                o->output, (int)(strlen(hdr) - 2), hdr, o->target->src_ext);
    } else if (same_file(hdr, o->input)) {
        fprintf(stderr, "mlc: error: -o '%s': its header '%s' would overwrite the input file '%s'\n", o->output, hdr,
                o->input);
    } else if (!includable(base)) {
        fprintf(stderr,
                "mlc: error: -o '%s': the source #includes its header '%s' by name, which cannot hold '\"', '\\' "
                "or control characters\n",
                o->output, base);
    } else {
        return 0;
    }
    return -1;
}

/* --dump-ir=after:PASS for a pass this configuration skips prints nothing: say why, so an
 * empty dump is not taken for a broken one. */
static void note_skipped_dumps(const Options *o) {
    if ((o->dump_named & DUMP_AFTER(PASS_precision)) && !o->bf16)
        fprintf(stderr,
                "mlc: note: --dump-ir=after:precision: the precision pass runs only with --precision bf16; "
                "nothing to dump\n");
    if ((o->dump_named & DUMP_AFTER(PASS_recompute)) && !o->mem_budget)
        fprintf(stderr,
                "mlc: note: --dump-ir=after:recompute: the recompute pass runs only with --mem-budget; nothing to "
                "dump\n");
}

/* The run, its exit status. */
static int run_mlc(int argc, char **argv) {
    Options o = {0};
    int build = 0;
    int parsed = parse_args(argc, argv, &o, &build);
    if (parsed) return parsed < 0 ? 2 : 0; /* 1: --help, printed */
    note_skipped_dumps(&o);

    SrcFile *src = read_source(o.input);
    if (!src) return 1;
    if (check_outputs(&o, build)) {
        srcfile_free(src);
        return 2;
    }
    Arena arena = {0};
    int status = compile(&o, build, src, &arena);
    diag_jmp = NULL;
    arena_free(&arena);
    srcfile_free(src);
    return status;
}

/* What mlc printed (--report, --dump-ir, --help) must have reached stdout: a full disk,
 * /dev/full or a closed stdout is exit 1 with one line, not exit 0 with an empty file. */
static int stdout_status(int status) {
    char msg[4400];
    if (!mlcrt_written(stdout, "output to", NULL, 1, msg, sizeof msg)) return status;
    fprintf(stderr, "mlc: error: %s\n", msg);
    return status ? status : 1;
}

int main(int argc, char **argv) {
    /* a write past `ulimit -f` fails with EFBIG, reported as any failed write with the
     * temporary files removed; SIGXFSZ's default killed mlc without a word and left them */
    signal(SIGXFSZ, SIG_IGN);
    return stdout_status(run_mlc(argc, argv));
}
