# tests/compiler/gpu/compare_steps.awk - compares two step_compare.c outputs pasted side
# by side (paste -d' ' A B | awk -v tol=T -v name=M -f compare_steps.awk) and prints each
# line on which they differ by more than a relative tol (default 2e-3), prefixed by name.
# A loss, a sum of squares and a sum of magnitudes are held to tol of their own size. A
# tensor's sum is held to tol of its sum of magnitudes instead: a sum that cancels (a
# gradient, Adam's first moment) can be 100 times smaller than its terms, and then
# differs by more than tol of itself when only the order of the additions differs.
# Exit status 1 when a line differs. Used by run_cuda_vs_c.sh and bench/gpu/run.sh.
function abs(x) { return x < 0 ? -x : x }
function off(a, b, scale) { return abs(a - b) > tol * scale + 1e-5 }
BEGIN { if (tol == "") tol = 2e-3 }
{
    n = NF / 2
    bad = 0
    if ($1 == "tensor" || $1 == "forward") { # ... SUM SUMSQ SUMABS
        s = n - 2
        if (off($s, $(s + n), abs($n) + abs($(2 * n)))) bad = 1
        for (i = s + 1; i <= n; i++) if (off($i, $(i + n), abs($i) + abs($(i + n)))) bad = 1
    } else {
        for (i = 1; i <= n; i++) if ($i ~ /^-?[0-9]/ && off($i, $(i + n), abs($i) + abs($(i + n)))) bad = 1
    }
    if (bad) {
        print name ": " $0
        fail = 1
    }
}
END { exit fail }
