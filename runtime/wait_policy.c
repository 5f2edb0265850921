/* wait_policy.c - how a standalone trainer's OpenMP threads wait (docs/trainer.md,
 * "Threads under load").
 *
 * The team's threads meet at the end of every parallel loop, hundreds of times a step.
 * libgomp's default has the first to arrive spin about 3 ms before it sleeps: on a busy
 * machine a thread whose partner was descheduled burns its time slices spinning, and an
 * epoch took several times longer than the cores taken by others explain. Passive waiting
 * (a futex sleep at once) measured best on a busy machine, also against a bounded spin of
 * 1,000 rounds (bench/results/load.md). No result depends on it. The user's
 * OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 *
 * libgomp reads these once, in its constructor, before main: setenv in main comes too
 * late. So the trainer starts itself again, first thing in main, with the variable added
 * (same pid, same arguments). Only the trainer's main does this, not the libraries: a
 * program that links a model as an inference library keeps its own policy. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlc_model.h"

extern char **environ; /* POSIX: the process's environment */

void mlcrt_default_wait_policy(char **argv) {
#ifdef __linux__ /* /proc/self/exe */
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    /* under valgrind /proc/self/exe is valgrind itself, which would refuse the arguments */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
    execve("/proc/self/exe", argv, environ);
    /* exec failed (no /proc): run on with libgomp's default; drop the variable so that
     * processes this one starts see what the user set */
    unsetenv("OMP_WAIT_POLICY");
#else
    (void)argv;
#endif
}
