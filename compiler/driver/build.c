/* build.c - `mlc build`: writes the model's sources and the trainer's main() into a
 * work directory, then runs the target's compiler (its TargetBuild: cc for C, nvcc for
 * CUDA) and links the runtime (libmlcrt, and the target's libraries: for C the kernel
 * library libmlckernels beside it; CUDA compiles its kernel library's sources, found
 * beside the runtime's headers, with the model), giving one standalone trainer binary.
 *
 * The runtime is found, in order: $MLC_RUNTIME_INCLUDE / $MLC_RUNTIME_LIB; the build
 * tree mlc was built in (so it works before `meson install`); the install prefix.
 *
 * --mpi links libmlcrt_mpi too (runtime/dist_mpi.c) and MPI, whose flags mpicc gives
 * ($MLC_MPICC, else mpicc; Open MPI's -showme), and compiles the trainer's main with
 * MLC_MPI: the trainer then runs as one rank of `mpirun -np N` (docs/distributed.md). A
 * CUDA trainer also gets templates/dist_nccl.c (MLC_MPI_CUDA) and NCCL. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"
#include "file_kind.h"

#ifndef MLC_PREFIX
#define MLC_PREFIX "/usr/local"
#endif

int header_path(const char *src_path, char *hdr_path, size_t cap) {
    /* net.c -> net.h ; anything else -> append .h */
    const char *dot = strrchr(src_path, '.'), *slash = strrchr(src_path, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - src_path) : strlen(src_path);
    if (stem + 3 > cap) return -1;
    memcpy(hdr_path, src_path, stem);
    strcpy(hdr_path + stem, ".h");
    return 0;
}

int header_beside(const char *src_path) {
    /* /dev/stdout, /dev/fd/N and /proc/self/fd/N may lead to a regular file (a shell's
     * redirection) while the directory beside them is no place for a file of mlc's */
    if (!strncmp(src_path, "/dev/", 5) || !strncmp(src_path, "/proc/", 6)) return 0;
    struct stat st;
    return stat(src_path, &st) != 0 || S_ISREG(st.st_mode);
}

int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!strcmp(a, b)) return 1;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* What a signal that ends mlc (Ctrl-C, timeout's SIGTERM, a closed terminal) must not
 * leave behind: the compiler mlc build is waiting for, the temporary files being written
 * and mlc build's work directory under $TMPDIR (a kill there left them, one set a run).
 * Each is registered while it exists; the handler removes the files, then the directory. */
enum { DOOMED_MAX = 8 };
static volatile pid_t running_child;
static const char *volatile doomed[DOOMED_MAX]; /* paths; an empty one is skipped */
static volatile sig_atomic_t n_doomed;
static const char *volatile doomed_dir;

static void end_on_signal(int sig) {
    if (running_child > 0) kill(-running_child, SIGTERM); /* its group: cc and its cc1, as, ld */
    for (int i = 0; i < n_doomed; i++)
        if (doomed[i][0]) unlink(doomed[i]);
    if (doomed_dir) rmdir(doomed_dir);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Catches the signals that end mlc, from the first registration on; one ignored (nohup's
 * SIGHUP) stays ignored. With nothing registered the handler ends mlc as the default would. */
static void catch_ending_signals(void) {
    static int caught;
    if (caught++) return;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++)
        if (signal(sigs[i], end_on_signal) == SIG_IGN) signal(sigs[i], SIG_IGN);
}

/* Registers path (a buffer that outlives the registration) for removal on a signal. */
static void doom(const char *path) {
    catch_ending_signals();
    if (n_doomed == DOOMED_MAX) mlc_die("doom: more than DOOMED_MAX temporary files");
    doomed[n_doomed] = path;
    n_doomed++;
}

/* Forgets what was registered since n_doomed was `mark`. */
static void forget_doomed(int mark) { n_doomed = mark; }

/* An output written beside its name and renamed over it once complete, so that a failed
 * run (a full disk, a header that is a directory) leaves the old file whole, never a
 * truncated one. `final` is where the rename lands: a link's target, so the link stays. */
typedef struct Staged {
    const char *path; /* as the user gave it, for messages */
    char final[PATH_MAX], tmp[PATH_MAX + 32];
    FILE *fp;
} Staged;

static int staged_fail(Staged *s, int err) {
    fprintf(stderr, "mlc: error: cannot write '%s': %s\n", s->path, strerror(err));
    return 1;
}

/* Names s->final, the file a write to `path` replaces: a link's target (through a chain,
 * a relative or a dangling link), so that the rename lands there and the link stays; and
 * s->tmp beside it, registered for removal on a signal once its name is whole (a name
 * cut short could be another file's). *st and *exists: what s->final is now. 0, or 1
 * after a one-line error: a loop of links has no target (the rename would replace the
 * link itself), a directory or device would be replaced rather than written into. */
static int staged_name(Staged *s, const char *path, struct stat *st, int *exists) {
    s->path = path;
    s->fp = NULL;
    s->tmp[0] = 0;
    if (!*path) return staged_fail(s, ENOENT); /* the temporary name would be ".tmp.PID" */
    char *target = mlcrt_resolve_links(path);
    if (!target) return staged_fail(s, ENOMEM);
    int fits = strlen(target) < sizeof s->final;
    if (fits) strcpy(s->final, target);
    free(target);
    if (!fits) return staged_fail(s, ENAMETOOLONG);
    *exists = !stat(s->final, st);
    if (!*exists && errno != ENOENT) return staged_fail(s, errno); /* ELOOP, EACCES, ENOTDIR */
    if (*exists && !S_ISREG(st->st_mode)) {
        fprintf(stderr, "mlc: error: cannot write '%s': expected a regular file, found %s\n", path,
                mlcrt_file_kind_name((unsigned)st->st_mode));
        return 1;
    }
    if ((size_t)snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%ld", s->final, (long)getpid()) >= sizeof s->tmp) {
        s->tmp[0] = 0;
        return staged_fail(s, ENAMETOOLONG);
    }
    doom(s->tmp);
    return 0;
}

/* Opens s->tmp beside the final file (with an existing file's permissions); 0, or 1 after
 * a one-line error with nothing created. */
static int staged_open(Staged *s, const char *path) {
    struct stat st;
    int exists;
    if (staged_name(s, path, &st, &exists)) return 1;
    int fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC, exists ? st.st_mode & 07777 : 0666);
    if (fd < 0) {
        int e = errno;
        s->tmp[0] = 0;
        return staged_fail(s, e);
    }
    if (exists) (void)fchmod(fd, st.st_mode & 07777); /* open's mode went through the umask */
    if (!(s->fp = fdopen(fd, "w"))) {
        int e = errno;
        close(fd);
        return staged_fail(s, e);
    }
    return 0;
}

/* Closes s->fp; 0, or 1 after a one-line error (a write that failed on the way too). */
static int staged_close(Staged *s) {
    int failed = ferror(s->fp), e = errno;
    if (fclose(s->fp)) failed = 1, e = errno;
    s->fp = NULL;
    return failed ? staged_fail(s, e ? e : EIO) : 0;
}

/* Removes what is left of a staged file after a failure. */
static void staged_discard(Staged *s) {
    if (s->fp) fclose(s->fp), s->fp = NULL;
    if (s->tmp[0]) unlink(s->tmp), s->tmp[0] = 0;
}

/* The source and its header into temporary files, renamed over both names only once both
 * are complete: a failure leaves the old files as they were, a signal no temporary file. */
static int write_staged(const ModelIR *m, const Target *t, const char *src_path, const char *hdr_path,
                        const char *hdr_base) {
    int mark = n_doomed;
    Staged src, hdr;
    src.tmp[0] = hdr.tmp[0] = 0, src.fp = hdr.fp = NULL;
    int bad = staged_open(&src, src_path) || staged_open(&hdr, hdr_path);
    if (!bad) {
        t->emit_source(m, src.fp, hdr_base);
        emit_header(m, hdr.fp);
        bad = staged_close(&src) || staged_close(&hdr);
    }
    if (!bad && rename(hdr.tmp, hdr.final)) bad = staged_fail(&hdr, errno);
    else if (!bad) hdr.tmp[0] = 0;
    if (!bad && rename(src.tmp, src.final)) bad = staged_fail(&src, errno);
    else if (!bad) src.tmp[0] = 0;
    staged_discard(&src);
    staged_discard(&hdr);
    forget_doomed(mark);
    return bad;
}

int write_model_sources(const ModelIR *m, const Target *t, const char *src_path, char *hdr_path, size_t cap) {
    /* the memory plans hold this target's workspaces */
    if (m->target != t->kind) mlc_die("write_model_sources: the model was planned for another target");
    if (header_path(src_path, hdr_path, cap)) {
        fprintf(stderr, "mlc: error: '%.64s...': expected a path of at most %zu bytes\n", src_path, cap - 3);
        return 1;
    }
    const char *hdr_base = strrchr(hdr_path, '/') ? strrchr(hdr_path, '/') + 1 : hdr_path;
    if (header_beside(src_path)) return write_staged(m, t, src_path, hdr_path, hdr_base);

    /* a device or FIFO (-o /dev/null, /dev/stdout): written into, no header; a rename
     * would replace it */
    FILE *src = fopen(src_path, "w");
    if (!src) {
        fprintf(stderr, "mlc: error: cannot write '%s': %s\n", src_path, strerror(errno));
        return 1;
    }
    t->emit_source(m, src, hdr_base);
    if (fclose(src)) {
        fprintf(stderr, "mlc: error: cannot write '%s': %s\n", src_path, strerror(errno));
        return 1;
    }
    return 0;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* The directory of the running mlc, for finding the build tree's runtime. */
static void self_dir(char *buf, size_t cap) {
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
    char *s = strrchr(buf, '/');
    if (s) *s = 0;
}

static void find_runtime(char *inc, char *lib, size_t cap) {
    enum { N = PATH_MAX + 128 };
    const char *ei = getenv("MLC_RUNTIME_INCLUDE"), *el = getenv("MLC_RUNTIME_LIB");
    if (ei && el) {
        snprintf(inc, cap, "%s", ei);
        snprintf(lib, cap, "%s", el);
        return;
    }
    char dir[PATH_MAX], probe[N];
    self_dir(dir, sizeof dir);
    /* build tree: BUILD/compiler/mlc beside BUILD/runtime/libmlcrt.a; headers in the source
     * tree, found through the build tree's meson-info. */
    snprintf(probe, sizeof probe, "%s/../runtime/libmlcrt.a", dir);
    if (exists(probe)) {
        snprintf(lib, cap, "%s/../runtime", dir);
#ifdef MLC_SOURCE_RUNTIME
        snprintf(inc, cap, "%s", MLC_SOURCE_RUNTIME);
#else
        snprintf(inc, cap, "%s/../../runtime", dir);
#endif
        return;
    }
    snprintf(inc, cap, "%s/include/mlc", MLC_PREFIX);
    snprintf(lib, cap, "%s/lib", MLC_PREFIX);
    const char *multiarch[] = {"lib/x86_64-linux-gnu", "lib64", "lib/aarch64-linux-gnu"};
    for (int i = 0; i < 3; i++) {
        snprintf(probe, sizeof probe, "%s/%s/libmlcrt.a", MLC_PREFIX, multiarch[i]);
        if (exists(probe)) {
            snprintf(lib, cap, "%s/%s", MLC_PREFIX, multiarch[i]);
            return;
        }
    }
}

static int run(const char *const *argv, int verbose) {
    if (verbose) {
        for (int i = 0; argv[i]; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    /* the compiler in a process group of its own, which a signal ending mlc ends whole
     * (SIGTERM to the cc driver alone left its cc1 compiling on as an orphan); out of the
     * terminal's group, a Ctrl-C reaches it through mlc's handler only */
    catch_ending_signals();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setpgid(0, 0);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "mlc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* as the child does: either may run first */
    running_child = pid;
    int st, got;
    while ((got = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    running_child = 0;
    if (got < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Appends to argv the words of `mpicc -showme:WHAT` (compile: -I..., link: -L... -lmpi);
 * for nvcc only the -I, -L, -l and -D ones, which it takes as they are. The new count, or
 * -1 after a one-line error. */
static int mpi_flags(Arena *a, const char *what, int nvcc, const char **argv, int n, int max) {
    const char *mpicc = getenv("MLC_MPICC");
    char cmd[512], words[2048];
    snprintf(cmd, sizeof cmd, "%s -showme:%s 2>/dev/null", mpicc && *mpicc ? mpicc : "mpicc", what);
    FILE *p = popen(cmd, "r");
    size_t len = p ? fread(words, 1, sizeof words - 1, p) : 0;
    int st = p ? pclose(p) : -1;
    words[len] = 0;
    if (st != 0 || len == 0 || len == sizeof words - 1) {
        fprintf(stderr,
                "mlc: error: --mpi: '%s -showme:%s' gave no MPI flags: install Open MPI (Debian: "
                "openmpi-bin libopenmpi-dev) or set MLC_MPICC to its mpicc\n",
                mpicc && *mpicc ? mpicc : "mpicc", what);
        return -1;
    }
    for (char *w = strtok(words, " \t\n"); w; w = strtok(NULL, " \t\n")) {
        if (nvcc && !(w[0] == '-' && strchr("ILlD", w[1]))) continue;
        if (n == max) {
            fprintf(stderr, "mlc: error: --mpi: too many flags from mpicc -showme:%s\n", what);
            return -1;
        }
        argv[n++] = arena_strdup(a, w);
    }
    return n;
}

/* --keep writes the work files into OUT.mlc/, a folder that may hold the input: 1 after a
 * one-line error when one of `paths` (up to the first NULL) is the input file. */
static int keeps_input(const char *input, const char *const *paths) {
    for (int i = 0; paths[i]; i++)
        if (same_file(paths[i], input)) {
            fprintf(
                stderr,
                "mlc: error: --keep would overwrite the input file '%s' (as '%s'); expected the input outside '%.*s'\n",
                input, paths[i], (int)(strrchr(paths[i], '/') - paths[i]), paths[i]);
            return 1;
        }
    return 0;
}

/* The work files of a build, in its work directory, and what the compiler writes. */
typedef struct WorkFiles {
    char dir[PATH_MAX], src[PATH_MAX + 32], hdr[PATH_MAX + 32], mainc[PATH_MAX + 32], ncclc[PATH_MAX + 32];
    const char *out; /* the trainer's temporary name, or -o itself when written in place */
} WorkFiles;

static int compile_in(const ModelIR *m, const Options *o, WorkFiles *w);

/* Whether the trainer goes straight to -o: a device, FIFO or path in /dev or /proc
 * (-o /dev/null: compiled, not kept), as mlc -o writes such a path. */
static int linked_in_place(const char *path) {
    struct stat st;
    return !header_beside(path) && !(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

/* The trainer is linked into a temporary name beside -o (through a link, its target) and
 * renamed over it once the link succeeded: a failed link (a full disk) leaves the old
 * trainer whole. Creating that file first finds a path that cannot be written before
 * anything is compiled. 0, or 1 after a one-line error with nothing created. */
static int stage_binary(Staged *bin, const char *path) {
    if (linked_in_place(path)) {
        bin->path = path, bin->tmp[0] = 0;
        return 0;
    }
    struct stat st;
    int exists;
    if (staged_name(bin, path, &st, &exists)) return 1;
    int fd = open(bin->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        int e = errno;
        bin->tmp[0] = 0;
        return staged_fail(bin, e);
    }
    close(fd);
    return 0;
}

/* Renames the linked trainer over -o (status 0), else removes it; the status. */
static int place_binary(Staged *bin, int status) {
    if (!bin->tmp[0]) return status;
    if (!status && rename(bin->tmp, bin->final)) status = staged_fail(bin, errno);
    if (status) unlink(bin->tmp);
    return status;
}

/* Builds in a work directory: OUT.mlc/ under --keep, which stays, else a fresh one under
 * $TMPDIR, removed afterwards unless the compiler failed (its sources are kept for the
 * user to look at, and the message says where). */
int build_trainer(const ModelIR *m, const Options *o) {
    int mark = n_doomed;
    Staged bin;
    if (stage_binary(&bin, o->output)) {
        forget_doomed(mark);
        return 1;
    }
    WorkFiles w = {.out = bin.tmp[0] ? bin.tmp : o->output};
    int st = 1;
    if (o->keep) {
        snprintf(w.dir, sizeof w.dir, "%s.mlc", o->output);
        if (mkdir(w.dir, 0755) && errno != EEXIST)
            fprintf(stderr, "mlc: error: cannot create '%s': %s\n", w.dir, strerror(errno));
        else st = compile_in(m, o, &w) ? 1 : 0;
        st = place_binary(&bin, st);
        forget_doomed(mark); /* after the rename: a signal before it removes the temporary */
        return st;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(w.dir, sizeof w.dir, "%s/mlc-build-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(w.dir)) {
        fprintf(stderr, "mlc: error: cannot create a work directory: %s\n", strerror(errno));
        forget_doomed(mark);
        return place_binary(&bin, 1);
    }
    /* a fresh directory: a signal removes it, with what is in it */
    const char *files[] = {w.src, w.hdr, w.mainc, w.ncclc};
    for (int i = 0; i < 4; i++) doom(files[i]);
    doomed_dir = w.dir;
    st = compile_in(m, o, &w);
    doomed_dir = NULL;
    if (st != 2) { /* the compiler's failure keeps its sources */
        for (int i = 0; i < 4; i++)
            if (files[i][0]) unlink(files[i]);
        rmdir(w.dir);
    }
    st = place_binary(&bin, st ? 1 : 0);
    forget_doomed(mark); /* after the rename: a signal before it removes the temporary */
    return st;
}

/* Writes the work files and runs the compiler: 0, 1 after a one-line error before the
 * compiler ran, 2 after it failed. */
static int compile_in(const ModelIR *m, const Options *o, WorkFiles *w) {
    const Target *t = o->target;
    char *const work = w->dir, *const src = w->src, *const hdr = w->hdr, *const mainc = w->mainc,
                *const ncclc = w->ncclc;
    snprintf(src, sizeof w->src, "%s/%s%s", work, m->spec.name, t->src_ext);
    snprintf(mainc, sizeof w->mainc, "%s/trainer_main.c", work);
    /* a model named trainer_main: its source would be the main's file */
    if (!strcmp(src, mainc)) snprintf(mainc, sizeof w->mainc, "%s/mlc_trainer_main.c", work);
    /* a CUDA trainer over MPI reduces its gradients with NCCL (templates/dist_nccl.c) */
    int nvcc = t->kind == TARGET_CUDA, nccl = o->mpi && nvcc;
    if (nccl) snprintf(ncclc, sizeof w->ncclc, "%s/dist_nccl.c", work);
    if (header_path(src, hdr, sizeof w->hdr)) return 1;
    if (o->keep && keeps_input(o->input, (const char *[]){src, hdr, mainc, nccl ? ncclc : NULL, NULL})) return 1;
    if (write_model_sources(m, t, src, hdr, sizeof w->hdr)) return 1;
    FILE *f = fopen(mainc, "w");
    if (!f || fputs(tmpl_trainer_main_c, f) < 0 || fclose(f)) {
        fprintf(stderr, "mlc: error: cannot write '%s'\n", mainc);
        return 1;
    }
    if (nccl && (!(f = fopen(ncclc, "w")) || fputs(tmpl_dist_nccl_c, f) < 0 || fclose(f))) {
        fprintf(stderr, "mlc: error: cannot write '%s'\n", ncclc);
        return 1;
    }

    char inc[PATH_MAX + 256], lib[PATH_MAX + 256], incflag[PATH_MAX + 264], libflag[PATH_MAX + 264], def[256];
    find_runtime(inc, lib, sizeof inc);
    char mpilib[PATH_MAX + 300];
    snprintf(mpilib, sizeof mpilib, "%s/libmlcrt_mpi.a", lib);
    if (o->mpi && !exists(mpilib)) {
        fprintf(stderr,
                "mlc: error: --mpi: no %s: mlc's runtime was built without MPI (install Open MPI, e.g. "
                "Debian's libopenmpi-dev, and rebuild mlc)\n",
                mpilib);
        return 1;
    }
    snprintf(incflag, sizeof incflag, "-I%s", inc);
    snprintf(libflag, sizeof libflag, "-L%s", lib);
    snprintf(def, sizeof def, "-DMLC_MODEL_API=%s_api", m->spec.name);
    char cc[PATH_MAX];
    if (o->cc) snprintf(cc, sizeof cc, "%s", o->cc);
    else t->build->compiler(cc, sizeof cc);
    enum { MAX_ARGS = 96 };
    const char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = cc;
    for (int i = 0; t->build->flags[i]; i++) argv[n++] = t->build->flags[i];
    if (o->debug) argv[n++] = "-g", argv[n++] = "-O0"; /* after the target's -O3: the last one counts */
    if (t->build->arch_flags && (n = t->build->arch_flags(m->arena, o->arch, argv, n, 32)) < 0) return 1;
    argv[n++] = src;
    argv[n++] = mainc;
    for (int i = 0; t->build->kernel_srcs && t->build->kernel_srcs[i]; i++) /* the target's kernel library */
        argv[n++] = arena_printf(m->arena, "%s/%s", inc, t->build->kernel_srcs[i]);
    const char *extra_src = NULL, *extra_lib = NULL; /* what this model needs besides (cuDNN's) */
    if (t->build->model_extras) t->build->model_extras(m, &extra_src, &extra_lib);
    if (extra_src) argv[n++] = arena_printf(m->arena, "%s/%s", inc, extra_src);
    argv[n++] = incflag;
    argv[n++] = "-I/usr/include/x86_64-linux-gnu/openblas-pthread";
    argv[n++] = def;
    if (nccl) argv[n++] = ncclc;
    if (o->mpi) {
        argv[n++] = "-DMLC_MPI";
        if (nvcc) argv[n++] = "-DMLC_MPI_CUDA";
        if ((n = mpi_flags(m->arena, "compile", nvcc, argv, n, MAX_ARGS - 24)) < 0) return 1;
    }
    argv[n++] = "-o";
    argv[n++] = w->out;
    argv[n++] = libflag;
    for (int i = 0; t->build->pre_libs && t->build->pre_libs[i]; i++) argv[n++] = t->build->pre_libs[i];
    if (o->mpi) argv[n++] = "-lmlcrt_mpi";
    argv[n++] = "-lmlcrt";
    if (extra_lib) argv[n++] = extra_lib;
    for (int i = 0; t->build->libs[i]; i++) argv[n++] = t->build->libs[i];
    if (nccl) argv[n++] = "-lnccl";
    if (o->mpi && (n = mpi_flags(m->arena, "link", nvcc, argv, n, MAX_ARGS - 1)) < 0) return 1;
    argv[n] = NULL;
    int st = run(argv, o->verbose);
    if (!st) return 0;
    fprintf(stderr, "mlc: error: %s failed (exit %d) building '%s'; sources kept in %s\n", cc, st, o->output, work);
    return 2;
}
