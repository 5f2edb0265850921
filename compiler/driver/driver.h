/* driver.h - what main.c and build.c share. */
#ifndef MLC_DRIVER_H
#define MLC_DRIVER_H

#include "model.h"
#include "report_scale.h"
#include "target.h"

typedef struct Options {
    const char *input;
    const char *output;
    const Target *target;
    int batch;      /* --batch, 0: the .mdl's */
    const char *cc; /* --cc, for build */
    int verbose;
    int keep;           /* build: keep the generated sources next to the binary */
    int report;         /* --report: print memory and cost per tensor and kernel */
    int64_t mem_budget; /* --mem-budget, bytes; 0: none */
    int threads;        /* --threads: what --report and --mem-budget assume; 0: 1 */
    int tf32;           /* --tf32 (cuda): cuBLAS may round GEMM inputs to TF32 */
    int cublaslt;       /* --cublaslt (cuda): GEMM bias and ReLU epilogues in cuBLASLt */
    int bf16;           /* --precision bf16: products' inputs and outputs rounded to bf16 */
    ConvAlgo conv_algo; /* --conv-algo (c): direct, winograd or auto (0) */
    const char *arch;   /* build: --cuda-arch, the GPU generations; NULL: the default */
    int mpi;            /* build: --mpi, a data-parallel trainer (libmlcrt_mpi, MPI) */
    int debug;          /* --debug (c): unfused, no buffer reuse, #line into the .mdl */
    ScaleOptions scale; /* --report --ranks N --link BW,LAT --flops RATE --tp P; ranks 0: none */
    DumpOptions dump;
    unsigned dump_named; /* the DUMP_AFTER bits of --dump-ir=after:PASS options (not =all) */
} Options;

/* Whether a source written to src_path gets its header beside it: when src_path is a
 * regular file or does not exist yet. A device, FIFO or other special file (-o /dev/null,
 * a pipe) and any path under /dev/ or /proc/ (/dev/stdout) get none: the header would
 * land in /dev (/dev/null.h) or beside a stream. */
int header_beside(const char *src_path);

/* Emits the model's source to `src_path` and its header beside it (header_path), unless
 * header_beside says there is no place for one (then the source is written into
 * src_path directly). Both go to temporary files first, renamed over the two names
 * only once both are complete: on failure the old files stay as they were.
 * 0 on success, else 1 after a one-line error. */
int write_model_sources(const ModelIR *m, const Target *t, const char *src_path, char *hdr_path, size_t cap);

/* The header beside source `src_path`: net.c -> net.h, a name without an extension gets
 * .h appended. 0, or -1 when it does not fit in cap bytes. */
int header_path(const char *src_path, char *hdr_path, size_t cap);

/* 1 when paths a and b name one file: the same text, or (both existing) the same device
 * and inode, so that a link to a file is that file. */
int same_file(const char *a, const char *b);

/* `mlc build`: emit, then compile and link a standalone trainer. Returns the exit status. */
int build_trainer(const ModelIR *m, const Options *o);

#endif
