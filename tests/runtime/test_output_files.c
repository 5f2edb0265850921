/* test_output_files.c - what the trainer writes reaches its file or is an error: a log or
 * the output (result line, predictions) on a full device (/dev/full) exits 1 naming the
 * file; checkpoints saved through a symbolic link replace the link's target; temporary
 * checkpoint files of dead processes are removed and a killed save leaves none behind. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "mlcrt_error.h"
#include "synth_data.h"
#include "testutil.h"
#include "tiny_model.h"

/* Names in dir other than . and .., sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t cap) {
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    size_t k = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..") && k < cap)
            k += (size_t)snprintf(out + k, cap - k, "%s%s", k ? " " : "", names[i]->d_name);
        free(names[i]);
    }
    free(names);
}

Test(output_files, log_on_a_full_device) {
    char *d = mnist_dir();
    run_result r;
    tu_run(&r, &tiny_api, "net", (const char *[]){"--data", d, "--epochs", "2", "--quiet", "--log", "/dev/full", NULL});
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert_str_eq(r.err, "error: cannot write log '/dev/full': No space left on device\n");
    cr_assert_str_eq(r.out, ""); /* stopped after the first epoch's row, before a result */
    tu_rmrf(d);
}

/* The trainer's output stream itself on /dev/full: predict, eval and train all report it
 * (a shell's `./net predict ... > /dev/full`). */
Test(output_files, output_on_a_full_device) {
    char *d = mnist_dir(), *p = tu_path(d, "m.ckpt");
    run_result r;
    tu_run(&r, &tiny_api, "net", (const char *[]){"--data", d, "--quiet", "--save", p, NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *img = tu_path(d, "t10k-images-idx3-ubyte");
    // clang-format off
    const char *modes[3][8] = {{"net", "predict", p, img, NULL},
                               {"net", "eval", p, "--data", d, NULL},
                               {"net", "--data", d, "--quiet", NULL}};
    // clang-format on
    for (int m = 0; m < 3; m++) {
        FILE *full = fopen("/dev/full", "w"), *err = tmpfile();
        cr_assert(full && err);
        int argc = 0;
        while (modes[m][argc]) argc++;
        int status = mlcrt_main_io(argc, (char **)modes[m], &tiny_api, full, err);
        fclose(full);
        char text[1024];
        tu_slurp(err, text, sizeof text);
        cr_assert_eq(status, 1, "mode %d: %s", m, text);
        cr_assert_str_eq(text, "error: cannot write output to '/dev/full': No space left on device\n", "mode %d: %s", m,
                         text);
    }
    tu_rmrf(d);
}

/* A pid that ran and is gone: a child that exits at once, reaped. */
static pid_t dead_pid(void) {
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

Test(output_files, stale_temporaries_removed) {
    char *d = tu_tmpdir(), *p = tu_path(d, "k.ckpt"), name[256], listing[1024], want[1024];
    char msg[MLCRT_MSG_SIZE] = "";
    pid_t gone = dead_pid();
    snprintf(name, sizeof name, "%s.tmp.%ld", p, (long)gone);
    tu_write(name, "x", 1);
    snprintf(name, sizeof name, "%s.tmp.1", p); /* pid 1 runs: its file is left alone */
    tu_write(name, "x", 1);
    tu_write(tu_path(d, "other.ckpt.tmp.7"), "x", 1); /* another checkpoint's */
    /* checked before training, as at every save */
    cr_assert_eq(mlcrt_ckpt_check_writable(p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    list_dir(d, listing, sizeof listing);
    cr_assert_str_eq(listing, "k.ckpt.tmp.1 other.ckpt.tmp.7");
    snprintf(name, sizeof name, "%s.tmp.%ld", p, (long)gone);
    tu_write(name, "x", 1);
    void *m = tu_track(tiny_api.create(1, 1), tiny_api.destroy);
    cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    list_dir(d, listing, sizeof listing);
    snprintf(want, sizeof want, "k.ckpt k.ckpt.tmp.1 other.ckpt.tmp.7");
    cr_assert_str_eq(listing, want);
    tu_rmrf(d);
}

/* Only names the trainer writes (decimal digits of a pid, nothing else) are its temporary
 * files: a sign, a blank, a leading zero or a value past any pid (whose low 32 bits are
 * a dead pid) was read by strtol as the dead pid and the user's file deleted. */
Test(output_files, stale_temporaries_only_of_names_the_trainer_writes) {
    char *d = tu_tmpdir(), *p = tu_path(d, "k.ckpt"), name[512], listing[1024], want[1024];
    char msg[MLCRT_MSG_SIZE] = "";
    long gone = (long)dead_pid();
    const char *forms[] = {"%s.tmp. %ld", "%s.tmp.+%ld", "%s.tmp.0%ld", "%s.tmp.%ld"};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, forms[i], p, i == 3 ? gone + (1L << 32) : gone);
        tu_write(name, "keep", 4);
    }
    cr_assert_eq(mlcrt_ckpt_check_writable(p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    list_dir(d, listing, sizeof listing);
    snprintf(want, sizeof want, "k.ckpt.tmp. %ld k.ckpt.tmp.+%ld k.ckpt.tmp.0%ld k.ckpt.tmp.%ld", gone, gone, gone,
             gone + (1L << 32));
    cr_assert_str_eq(listing, want);
    tu_rmrf(d);
}

/* The names saves write now, PATH.tmp.<pid>.<n> (n: the process's count of saves), count
 * as temporary files under the same rule for both numbers; anything else beside them is
 * the user's. */
Test(output_files, stale_temporaries_with_a_count) {
    char *d = tu_tmpdir(), *p = tu_path(d, "k.ckpt"), name[512], listing[1024], want[1024];
    char msg[MLCRT_MSG_SIZE] = "";
    long gone = (long)dead_pid();
    const char *forms[] = {"%s.tmp.%ld.0",  "%s.tmp.%ld.17", "%s.tmp.%ld.",    "%s.tmp.%ld.017",
                           "%s.tmp.%ld.+1", "%s.tmp.%ld.1x", "%s.tmp.%ld.1.2", "%s.tmp.%ld.99999999999999999999"};
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, forms[i], p, gone);
        tu_write(name, "keep", 4);
    }
    snprintf(name, sizeof name, "%s.tmp.1.5", p); /* pid 1 runs: its file is left alone */
    tu_write(name, "x", 1);
    cr_assert_eq(mlcrt_ckpt_check_writable(p, msg, sizeof msg), MLCRT_OK, "%s", msg);
    list_dir(d, listing, sizeof listing);
    snprintf(want, sizeof want,
             "k.ckpt.tmp.1.5 k.ckpt.tmp.%ld. k.ckpt.tmp.%ld.+1 k.ckpt.tmp.%ld.017 k.ckpt.tmp.%ld.1.2 "
             "k.ckpt.tmp.%ld.1x k.ckpt.tmp.%ld.99999999999999999999",
             gone, gone, gone, gone, gone, gone);
    cr_assert_str_eq(listing, want);
    tu_rmrf(d);
}

/* A file-size limit (ulimit -f) makes a save fail with EFBIG and its one-line error, not
 * a silent death by SIGXFSZ (status 153); the checkpoint before it stays. */
Test(output_files, file_size_limit_is_an_error) {
    char *d = mnist_dir(), *p = tu_path(d, "f.ckpt");
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit lim = {4096, 4096};
        run_result r;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(2);
        tu_run(&r, &tiny_api, "net",
               (const char *[]){"--data", d, "--batch", "40", "--max-steps", "1", "--quiet", "--save", p, NULL});
        _exit(r.status == 1 && strstr(r.err, "cannot write checkpoint") && strstr(r.err, "File too large") ? 0 : 3);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st), "the trainer died of signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "status %d", WEXITSTATUS(st));
    tu_rmrf(d);
}

/* Saves killed at random points: the file always loads (tests/runtime/test_ckpt.c holds
 * it to one of the two states), and after the next save nothing but it is left. */
Test(output_files, killed_saves_leave_no_temporaries) {
    char *d = tu_tmpdir(), *p = tu_path(d, "k.ckpt"), listing[1024];
    char msg[MLCRT_MSG_SIZE] = "";
    void *m = tu_track(tiny_api.create(1, 1), tiny_api.destroy);
    for (int round = 0; round < 4; round++) {
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            for (;;) mlcrt_ckpt_save(&tiny_api, m, p, NULL, 0);
        struct timespec ts = {0, 15000000L + 6000000L * round};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, p, msg, sizeof msg), MLCRT_OK, "%s", msg);
        list_dir(d, listing, sizeof listing);
        cr_assert_str_eq(listing, "k.ckpt", "round %d", round);
    }
    tu_rmrf(d);
}

/* --save through a symbolic link writes the link's target; the link stays a link (also
 * a relative one, a chain, and one whose target does not exist yet). */
Test(output_files, save_through_symlink_writes_target) {
    char *d = tu_tmpdir(), *sub = tu_path(d, "sub"), msg[MLCRT_MSG_SIZE] = "", want[1024];
    cr_assert_eq(mkdir(sub, 0755), 0);
    char *target = tu_path(sub, "real.ckpt"), *link1 = tu_path(d, "link.ckpt"), *link2 = tu_path(d, "chain.ckpt"),
         *dangling = tu_path(d, "new.ckpt");
    void *m = tu_track(tiny_api.create(2, 1), tiny_api.destroy);
    cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, target, msg, sizeof msg), MLCRT_OK, "%s", msg);
    cr_assert_eq(symlink("sub/real.ckpt", link1), 0);
    cr_assert_eq(symlink(link1, link2), 0);
    cr_assert_eq(symlink("sub/later.ckpt", dangling), 0);
    const char *via[3] = {link1, link2, dangling};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(mlcrt_ckpt_check_writable(via[i], msg, sizeof msg), MLCRT_OK, "%s", msg);
        cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, via[i], msg, sizeof msg), MLCRT_OK, "%s", msg);
        struct stat st;
        cr_assert_eq(lstat(via[i], &st), 0);
        cr_assert(S_ISLNK(st.st_mode), "%s was replaced by a file", via[i]);
    }
    size_t n;
    tu_read(target, &n);
    cr_assert_eq(n, 31660); /* a whole checkpoint of tiny */
    tu_read(tu_path(sub, "later.ckpt"), &n);
    cr_assert_eq(n, 31660);
    void *m2 = tu_track(tiny_api.create(3, 1), tiny_api.destroy);
    cr_assert_eq(mlcrt_ckpt_load(&tiny_api, m2, link2, msg, sizeof msg), MLCRT_OK, "%s", msg);
    /* a link to a directory is refused like the directory */
    char *dirlink = tu_path(d, "dir.ckpt");
    cr_assert_eq(symlink("sub", dirlink), 0);
    cr_assert_eq(mlcrt_ckpt_check_writable(dirlink, msg, sizeof msg), MLCRT_EIO);
    snprintf(want, sizeof want, "cannot write checkpoint '%s': expected a regular file, found a directory", dirlink);
    cr_assert_str_eq(msg, want);
    /* a loop of links has no file to replace: refused, and the links stay */
    char *loop1 = tu_path(d, "loop1"), *loop2 = tu_path(d, "loop2");
    cr_assert_eq(symlink("loop2", loop1), 0);
    cr_assert_eq(symlink("loop1", loop2), 0);
    snprintf(want, sizeof want, "cannot write checkpoint '%s': Too many levels of symbolic links", loop1);
    cr_assert_eq(mlcrt_ckpt_check_writable(loop1, msg, sizeof msg), MLCRT_EIO);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(mlcrt_ckpt_save(&tiny_api, m, loop1, msg, sizeof msg), MLCRT_EIO);
    cr_assert_str_eq(msg, want);
    struct stat st;
    cr_assert(lstat(loop1, &st) == 0 && S_ISLNK(st.st_mode), "the loop was replaced by a file");
    tu_rmrf(d);
}
