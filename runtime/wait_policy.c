/* wait_policy.c - how a standalone trainer's OpenMP threads wait (docs/trainer.md,
 * "Threads under load").
 *
 * The team's threads meet at the end of every parallel loop, hundreds of times a step.
 * libgomp's default has the first to arrive spin about 3 ms before it sleeps: on a busy
 * machine a thread whose partner was descheduled burns its time slices spinning, and an
 * epoch took several times longer than the cores taken by others explain. Sleeping at once
 * (OMP_WAIT_POLICY=passive) costs a futex wake-up at nearly every barrier instead, which
 * on a virtual machine means waking a halted virtual CPU: on an otherwise idle machine
 * mlp's step took 1.6x and resnet's 1.1x as long as with a spin of 1,000 rounds (about
 * 10 us) before the sleep, while beside a busy process that spin made mlp's 1.4x as long
 * as sleeping at once (bench/results/load.md). So the trainer looks at the machine as it
 * starts: a bounded spin where the cores are free for its team (and its MPI ranks' on
 * the node), the passive sleep otherwise. No result depends on it. The user's
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 *
 * libgomp reads these once, in its constructor, before main: setenv in main comes too
 * late. So the trainer starts itself again, first thing in main, with the variable added
 * (same pid, same arguments). Only the trainer's main does this, not the libraries: a
 * program that links a model as an inference library keeps its own policy. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlc_model.h"

#ifdef __linux__ /* /proc/self/exe, /proc/loadavg, sched_getaffinity */
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>

extern char **environ; /* POSIX: the process's environment */

/* A whole decimal number in [1, 4096], or 0 */
static int count_of(const char *s) {
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    return s && end != s && (*end == '\0' || *end == ',') && v >= 1 && v <= 4096 ? (int)v : 0;
}

/* The OpenMP team this run will have: the last --threads N or --threads=N, else
 * OMP_NUM_THREADS's first level, else one thread per CPU this process may run on (what
 * libgomp starts with). An unreadable --threads is the trainer's to refuse: 0 here. */
static int team_size(char **argv) {
    int team = -1;
    for (int i = 1; argv[i]; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--threads")) team = count_of(argv[i + 1]);
        else if (!strncmp(argv[i], "--threads=", 10)) team = count_of(argv[i] + 10);
    }
    if (team >= 0) return team;
    const char *env = getenv("OMP_NUM_THREADS");
    if (env) return count_of(env);
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
}

/* This process's threads that are running or runnable now (state R in
 * /proc/self/task/TID/stat): the main thread, and the thread pool a BLAS library may have
 * started, still spinning, before main. */
static int own_running(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return 1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        const size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        const char *close = strrchr(buf, ')'); /* the name in parentheses may hold anything */
        n += close && close[1] == ' ' && close[2] == 'R';
    }
    closedir(dir);
    return n > 0 ? n : 1;
}

/* Runnable threads of other processes: the fewest of three readings of the running count
 * in `path` (/proc/loadavg's fourth field, "running/total"), 1 ms apart, less this
 * process's own; -1 when it cannot be read. The fewest: a compiler or shell that runs for a
 * moment is not a neighbour that stays. */
static int others_running(const char *path) {
    int fewest = INT_MAX;
    for (int k = 0; k < 3; k++) {
        FILE *f = fopen(path, "r");
        int running = -1;
        if (f) {
            if (fscanf(f, "%*s %*s %*s %d/", &running) != 1) running = -1;
            fclose(f);
        }
        if (running < 1) return -1;
        const int others = running - own_running();
        if (others < fewest) fewest = others > 0 ? others : 0;
        if (k < 2) nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    return fewest;
}

/* "GOMP_SPINCOUNT=1000" (spin about 10 us before sleeping) when the CPUs are free for the
 * team argv asks for beside what else runs now, "OMP_WAIT_POLICY=passive" (sleep at once)
 * otherwise */
static const char *policy_for(char **argv) {
    const int team = team_size(argv);
    /* ranks of one mpirun job on this node start together, perhaps not yet running */
    const int local = count_of(getenv("OMPI_COMM_WORLD_LOCAL_SIZE")), ranks = local ? local : 1;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN); /* what /proc/loadavg's count is out of */
    /* tests point it elsewhere to see both answers on any machine */
    const char *path = getenv("MLCRT_LOADAVG");
    if (!path) path = "/proc/loadavg";
    const int others = team >= 2 ? others_running(path) : -1;
    if (others >= 0 && cpus > 0 && (long)others + (long)team * ranks <= cpus) return "GOMP_SPINCOUNT=1000";
    return "OMP_WAIT_POLICY=passive";
}

void mlcrt_default_wait_policy(char **argv) {
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* under valgrind /proc/self/exe is valgrind itself, which would refuse the arguments */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;
    const char *set = policy_for(argv);
    const char *eq = strchr(set, '=');
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(eq - set), set);
    if (setenv(name, eq + 1, 0) != 0) return;
    execve("/proc/self/exe", argv, environ);
    /* exec failed (no /proc): run on with libgomp's default; drop the variable so that
     * processes this one starts see what the user set */
    unsetenv(name);
}
#else
void mlcrt_default_wait_policy(char **argv) { (void)argv; }
#endif
