"""bench/compile_time.py - wall time of one command, run several times (bench/run.sh uses
it for `mlc FILE -o OUT.c`: parse to emitted source, process start and exit included).

usage: compile_time.py RUNS CMD [ARG...]
Prints: runs=N median_ms=X min_ms=Y max_ms=Z. The first run is untimed (it warms the page
cache); exits non-zero if any run fails."""
import statistics
import subprocess
import sys
import time


def main():
    runs, cmd = int(sys.argv[1]), sys.argv[2:]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    print(f"runs={runs} median_ms={1e3 * statistics.median(times):.3f} min_ms={1e3 * min(times):.3f} "
          f"max_ms={1e3 * max(times):.3f}")


if __name__ == "__main__":
    main()
